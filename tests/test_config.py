from __future__ import annotations

from pathlib import Path

import pytest

from services.config import load_config, parse_config
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
