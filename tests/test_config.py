from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from services.config import (
    CatalogConfig,
    Check,
    Config,
    KubernetesConfig,
    StorageLocation,
    Target,
    load_config,
    parse_config,
)
from services.config_reader import Reader
from services.errors import ConfigError
from tui.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_example_config_is_valid_and_complete(tmp_path: Path) -> None:
    text = (ROOT / "config.example.yaml").read_text()
    # The example names a manifests directory that will not exist here.
    text = text.replace("manifests: null", "manifests: null")
    cfg = parse_config(text, ROOT / "config.example.yaml")
    assert cfg.storage and cfg.storage[0].url.startswith("s3://")
    assert cfg.catalog.workers >= 1
    assert cfg.restore_tests.rto_for("acid-main") < cfg.restore_tests.rto_minutes


@pytest.mark.parametrize(
    ("value", "size"),
    [("8GiB", 8 << 30), ("512 MB", 512 << 20), ("1.5K", 1536), (1000, 1000), ("0B", 0)],
)
def test_the_spool_limit_is_bytes_or_a_size_with_its_unit(
    tmp_path: Path, value: object, size: int
) -> None:
    cfg = parse_config(f"restore:\n  spool_limit: {value}\n", tmp_path / "c.yaml")
    assert cfg.restore.spool_limit == size
    assert cfg.restore.jobs == 1 and cfg.restore.spool_dir is None


def test_paths_resolve_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    cfg = parse_config("kubernetes:\n  manifests: m\narchive: arch\n", tmp_path / "c.yaml")
    assert cfg.kubernetes.manifests == tmp_path / "m"
    assert cfg.archive == tmp_path / "arch"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("kubernetes:\n  kubeconfg: x\n", "kubernetes.kubeconfg: unknown key"),
        ("storage:\n  - url: s3://bucket/spilo\n    regoin: x\n", "storage[0].regoin: unknown key"),
        ("storage:\n  - url: http://bucket/x\n", "storage[0].url"),
        ("storage: s3://bucket\n", "storage: expected a list"),
        ("kubernetes:\n  namespaces: default\n", "kubernetes.namespaces: expected a list"),
        ("kubernetes:\n  contexts: [1]\n", "kubernetes.contexts[0]: expected a string"),
        ("catalog:\n  workers: many\n", "catalog.workers: expected a number"),
        ("catalog:\n  workers: 0\n", "catalog.workers: must be at least"),
        ("archive: [1, 2]\n", "archive: expected a string"),
        ("- just\n- a list\n", "top level: expected a mapping"),
        ("storage:\n  - url: s3://b/x\n", "has no bucket"),
        ("restore:\n  jobs: 0\n", "restore.jobs: must be at least 1"),
        ("restore:\n  jobs: 65\n", "restore.jobs: must be at most 64"),
        ("restore:\n  spool_limit: lots\n", "restore.spool_limit: expected a size in bytes"),
        ("restore:\n  spool_limit: -1\n", "restore.spool_limit: expected a size in bytes"),
        ("restore:\n  spool_dir: /nonexistent-pgdeck\n", "restore.spool_dir: /nonexistent"),
    ],
)
def test_bad_config_names_the_file_and_key_path(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_config(str(path))
    assert str(path) in str(exc.value)
    assert where in str(exc.value)


def test_malformed_yaml_says_where(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("storage:\n  - url: [unclosed\n")
    with pytest.raises(ConfigError, match=r"not valid YAML at line \d+"):
        load_config(str(path))


def test_cli_bad_config_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("storage:\n  - url: s3://bucket/spilo\n    endpoint: http://x\n")
    assert main(["--config", str(path), "clusters"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "storage[0].endpoint: unknown key" in err[0]
    assert "Traceback" not in err[0]


def test_config_option_after_the_subcommand_works_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("nope: 1\n")
    assert main(["clusters", "--config", str(path)]) == 2
    assert "nope: unknown key" in capsys.readouterr().err


def test_lookup_order_env_then_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    xdg = tmp_path / "xdg"
    (xdg / "pgdeck").mkdir(parents=True)
    (xdg / "pgdeck" / "config.yaml").write_text("archive: /from/xdg\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    assert load_config().archive == Path("/from/xdg")
    env_file = tmp_path / "env.yaml"
    env_file.write_text("archive: /from/env\n")
    monkeypatch.setenv("PGDECK_CONFIG", str(env_file))
    assert load_config().archive == Path("/from/env")
    explicit = tmp_path / "explicit.yaml"
    explicit.write_text("archive: /from/flag\n")
    assert load_config(str(explicit)).archive == Path("/from/flag")


def test_missing_explicit_config_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found") as exc:
        load_config(str(tmp_path / "nope.yaml"))
    assert exc.value.exit_code == 2


@pytest.mark.parametrize(
    ("text", "where"),
    [
        # each kind of field, given a value of another kind
        ("catalog:\n  workers: true\n", "catalog.workers: expected a number, got a boolean"),
        ("review:\n  since_days: '7'\n", "review.since_days: expected a number, got a string"),
        ("review:\n  size_low_ratio: -0.5\n", "review.size_low_ratio: must be at least 0"),
        ("catalog:\n  workers: .nan\n", "catalog.workers: expected a finite number, got nan"),
        ("review:\n  size_low_ratio: .inf\n", "review.size_low_ratio: expected a finite number"),
        ("review:\n  near_empty_bytes: -0.5\n", "review.near_empty_bytes: must be at least 0"),
        (
            "kubernetes:\n  enabled: 'no'\n",
            "kubernetes.enabled: expected true or false, got a string",
        ),
        ("review:\n  expect_sse: [AES256]\n", "review.expect_sse: expected a string, got a list"),
        ("cache: 7\n", "cache: expected a string, got a number"),
        (
            "kubernetes:\n  kubeconfig: {a: 1}\n",
            "kubernetes.kubeconfig: expected a string, got a mapping",
        ),
        ("catalog: 3\n", "catalog: expected a mapping, got a number"),
        ("kubernetes: true\n", "kubernetes: expected a mapping, got a boolean"),
        ("targets: [a]\n", "targets: expected a mapping of names to targets, got a list"),
        ("targets:\n  a: null\n", "targets.a: expected a mapping, got nothing"),
        (
            "targets:\n  a:\n    dsn: x\n    production: 1\n",
            "targets.a.production: expected true or false, got a number",
        ),
        (
            "targets:\n  a:\n    dsn: x\n    name: b\n",
            "targets.a.name: unknown key (known: dsn, production)",
        ),
        ("validation: [x]\n", "validation: expected a mapping, got a list"),
        ("validation:\n  checks: x\n", "validation.checks: expected a list, got a string"),
        ("storage:\n  - s3://bucket/spilo\n", "storage[0]: expected a mapping, got a string"),
        # null is the default, except where a number or a boolean must be written
        ("catalog:\n  workers: null\n", "catalog.workers: expected a number, got nothing"),
        (
            "kubernetes:\n  enabled: null\n",
            "kubernetes.enabled: expected true or false, got nothing",
        ),
        # required strings: absent, null or empty
        ("targets:\n  a:\n    production: true\n", "targets.a.dsn: expected a string, got nothing"),
        ("storage:\n  - url: null\n", "storage[0].url: expected a string, got nothing"),
        (
            "validation:\n  checks:\n    - {name: '', database: d, sql: s}\n",
            "validation.checks[0].name: expected a string, got a string",
        ),
        (
            "kubernetes:\n  namespaces: ['']\n",
            "kubernetes.namespaces[0]: expected a string, got a string",
        ),
        # the rules a field's metadata adds to its type
        ("storage:\n  - {url: s3://bucket/x, addressing_style: dns}\n", "expected path or virtual"),
        (
            "storage:\n  - {url: s3://bucket/x, endpoint_url: minio:9000}\n",
            "an http:// or https://",
        ),
        ("storage:\n  - url: file://host/x\n", "file URLs take an absolute path"),
        (
            "kubernetes:\n  manifests: /nowhere\n",
            "kubernetes.manifests: /nowhere is not a directory",
        ),
        ("review:\n  size_window: 2\n", "review.size_window: must be at least 3"),
        ("archive:\n  url: file:///srv/a\n  region: eu\n", "archive.region: applies to s3://"),
        ("archive:\n  url: s3://bucket/a\n  regoin: eu\n", "archive.regoin: unknown key"),
        ("archive: ''\n", "archive: expected a string, got a string"),
        ("archive: s3://b\n", "archive: 's3://b' has no bucket"),
        (
            "1: x\n",
            "c.yaml: 1: unknown key (known: archive, cache, catalog, kubernetes, restore, restore_tests, "
            "review, staging, storage, targets, validation)",
        ),
    ],
)
def test_each_kind_of_key_names_what_is_wrong_where(tmp_path: Path, text: str, where: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config(text, tmp_path / "c.yaml")
    assert str(exc.value).startswith(f"{tmp_path / 'c.yaml'}: ")
    assert where in str(exc.value)
    assert str(exc.value).endswith("; see config.example.yaml")
    assert exc.value.exit_code == 2


def test_absent_or_null_keys_take_the_defaults(tmp_path: Path) -> None:
    defaults = Config(path=tmp_path / "c.yaml")
    nulls = "".join(
        f"{key}: null\n"
        for key in ("kubernetes", "storage", "archive", "cache", "catalog", "targets")
    )
    assert parse_config(nulls + "validation: null\nreview: null\n", defaults.path) == defaults
    assert parse_config("", tmp_path / "c.yaml") == defaults
    cfg = parse_config(
        "kubernetes: {kubeconfig: null}\nstorage:\n  - {url: s3://bucket/x, region: null}\n"
        "validation: {checks: null}\nreview: {expect_sse: null}\n",
        tmp_path / "c.yaml",
    )
    assert cfg.kubernetes.kubeconfig is None and cfg.storage[0].region is None
    assert cfg.checks == () and cfg.review.expect_sse is None


def test_values_are_read_into_their_types(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGDECK_TEST_DIR", "/srv")
    cfg = parse_config(
        "kubernetes: false\n"
        "storage:\n  - {url: 's3://bucket/spilo/', addressing_style: path}\n"
        "  - url: file:///srv/copy/\n"
        "archive: $PGDECK_TEST_DIR/archive\n"
        "cache: ~/pgdeck-cache\n"
        "catalog: {workers: 4, full_refresh_hours: 1}\n"
        "targets:\n  staging: {dsn: 'postgresql://app:s3cret@db/app', production: true}\n"
        "validation:\n  checks:\n    - {name: n, database: d, sql: SELECT 1}\n",
        tmp_path / "c.yaml",
    )
    assert cfg.kubernetes == KubernetesConfig(enabled=False)
    assert cfg.storage == (
        StorageLocation(url="s3://bucket/spilo", addressing_style="path"),
        StorageLocation(url="file:///srv/copy"),
    )
    assert cfg.archive == Path("/srv/archive")
    assert cfg.cache == Path("~/pgdeck-cache").expanduser()
    assert cfg.catalog == CatalogConfig(workers=4, full_refresh_hours=1.0)
    assert isinstance(cfg.catalog.full_refresh_hours, float)
    assert cfg.targets == (
        Target(name="staging", dsn="postgresql://app:s3cret@db/app", production=True),
    )
    assert cfg.checks == (Check(name="n", database="d", sql="SELECT 1"),)
    assert "s3cret" not in repr(cfg) and "s3cret" not in repr(cfg.targets[0])


def test_an_archive_is_a_path_or_an_s3_location(tmp_path: Path) -> None:
    def archive(text: str) -> object:
        return parse_config(text, tmp_path / "c.yaml").archive

    assert archive("archive: file:///srv/a/\n") == Path("/srv/a")
    assert archive("archive:\n  url: file:///srv/a\n  region: null\n") == Path("/srv/a")
    assert archive("archive: s3://bucket/a/\n") == StorageLocation(url="s3://bucket/a")
    assert archive("archive:\n  url: s3://bucket/a\n  region: eu\n") == StorageLocation(
        url="s3://bucket/a", region="eu"
    )


def test_the_reader_reads_any_dataclass_and_refuses_what_it_cannot(tmp_path: Path) -> None:
    @dataclass(frozen=True, slots=True)
    class Section:
        retries: int = field(default=4, metadata={"at_least": 1})
        names: tuple[str, ...] = ()

    reader = Reader(tmp_path / "c.yaml")
    assert reader.section(Section, {"retries": 2}, "x") == Section(retries=2)
    with pytest.raises(ConfigError, match=r"x\.retries: must be at least 1"):
        reader.section(Section, {"retries": 0}, "x")

    @dataclass(frozen=True, slots=True)
    class Misspelt:
        retries: int = field(default=4, metadata={"at_lest": 1})

    with pytest.raises(TypeError, match="unknown metadata"):
        reader.section(Misspelt, {}, "x")

    @dataclass(frozen=True, slots=True)
    class Unreadable:
        either: int | str = 1

    with pytest.raises(TypeError, match="no reader"):
        reader.section(Unreadable, {"either": 2}, "x")


def test_staging_and_restore_tests_have_defaults_and_overrides(tmp_path: Path) -> None:
    cfg = parse_config("", tmp_path / "c.yaml")
    assert cfg.staging.address == "{cluster}.{namespace}.svc.cluster.local:5432"
    assert (cfg.staging.max_parallel, cfg.restore_tests.rto_minutes) == (4, 60.0)
    text = (
        "staging:\n  namespace: stg\n  team: qa\n  address: '{cluster}.db:6432'\n"
        "  volume_headroom: 3\nrestore_tests:\n  rto_minutes: 45\n"
        "  clusters:\n    acid-main:\n      rto_minutes: 10\n"
    )
    cfg = parse_config(text, tmp_path / "c.yaml")
    assert (cfg.staging.namespace, cfg.staging.team, cfg.staging.volume_headroom) == (
        "stg",
        "qa",
        3.0,
    )
    assert cfg.restore_tests.rto_for("acid-main") == 10
    assert cfg.restore_tests.rto_for("acid-other") == 45


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("staging:\n  address: '{host}:5432'\n", "staging.address: unknown placeholder {host}"),
        ("staging:\n  address: '{cluster}'\n", "staging.address: '{cluster}': expected host:port"),
        ("staging:\n  address: '{cluster'\n", "staging.address: '{cluster' is not a template"),
        ("staging:\n  max_parallel: 0\n", "staging.max_parallel: must be at least 1"),
        ("staging:\n  volume_headroom: 0.5\n", "staging.volume_headroom: must be at least 1"),
        ("restore_tests:\n  clusters:\n    a: {}\n", "restore_tests.clusters.a.rto_minutes"),
        ("restore_tests:\n  rto: 5\n", "restore_tests.rto: unknown key"),
    ],
)
def test_bad_staging_config_names_the_key(tmp_path: Path, text: str, where: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config(text, tmp_path / "c.yaml")
    assert where in str(exc.value)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("staging:\n  team: Acid\n", "staging.team: 'Acid': expected a short DNS label"),
        ("staging:\n  team: 1acid\n", "staging.team"),
        ("staging:\n  team: " + "a" * 21 + "\n", "staging.team"),
        ("staging:\n  namespace: Staging\n", "staging.namespace: 'Staging' is not a Kubernetes"),
    ],
)
def test_staging_names_must_be_kubernetes_names(tmp_path: Path, text: str, where: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config(text, tmp_path / "c.yaml")
    assert where in str(exc.value)
