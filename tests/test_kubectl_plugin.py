"""``kubectl pgdeck``: the plugin's entry point, and kubectl's flags reaching the catalog,
against the fake Kubernetes API (two contexts, two namespaces) and moto."""

from __future__ import annotations

import importlib
import json
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sandbox import kube as ko
from services.config import KubernetesConfig
from tests.conftest import seed, write_config
from tests.fakekube import FakeKube, write_kubeconfig
from tui.cli import parse
from tui.cli.browse import console
from tui.cli.kubectl import main
from tui.cli.parser import build_parser

NOW = datetime.now(UTC).replace(minute=0, second=5, microsecond=0)
ROOT = Path(__file__).resolve().parent.parent
UID_SHOP = "0d000000-0000-4000-8000-0000000000a1"
UID_BOOKS = "0d000000-0000-4000-8000-0000000000a2"


@pytest.fixture
def other_kube() -> Iterator[FakeKube]:
    """A second API server: the context ``b``."""
    with FakeKube() as server:
        yield server


@pytest.fixture
def world(
    tmp_path: Path, kube: Any, other_kube: FakeKube, bucket: str, s3_endpoint: str
) -> dict[str, Path]:
    """Context ``a``: acid-main in shop and in books; context ``b``: acid-other in shop. The
    config reads both contexts; ``kc-b`` is a kubeconfig of ``b`` alone."""
    created = NOW - timedelta(days=3)
    shop = ko.postgresql("acid-main", "shop", uid=UID_SHOP, created=created)
    books = ko.postgresql("acid-main", "books", uid=UID_BOOKS, created=created)
    kube.add(shop, books)
    other_kube.add(ko.postgresql("acid-other", "shop", created=created))
    t0 = int((NOW - timedelta(hours=2)).timestamp())
    seed(bucket, {f"spilo/acid-main/{UID_SHOP}/logical_backups/{t0}.sql.gz": 2048})
    both = write_kubeconfig(tmp_path / "kc", {"a": kube, "b": other_kube})
    only_b = write_kubeconfig(tmp_path / "kc-b", {"b": other_kube})
    config = write_config(
        tmp_path / "config.yaml",
        {
            "kubernetes": {"kubeconfig": str(both), "contexts": ["a", "b"]},
            "storage": [{"url": f"s3://{bucket}/spilo", "endpoint_url": s3_endpoint}],
            "cache": str(tmp_path / "cache"),
        },
    )
    return {"config": config, "kc": both, "kc-b": only_b}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv), clock=lambda: NOW)
    out, err = capsys.readouterr()
    return code, out, err


def clusters(capsys: pytest.CaptureFixture[str], config: Path, *flags: str) -> set[tuple[str, str]]:
    code, out, err = run(capsys, "--config", str(config), *flags, "clusters", "--json")
    assert code == 0, err
    # what Kubernetes answered: a cluster of a context not read is still in storage (with
    # no namespace), as the plain pgdeck shows it
    return {(r["name"], r["namespace"]) for r in json.loads(out) if r["namespace"]}


def test_the_entry_point_is_declared_and_callable() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, name = scripts["kubectl-pgdeck"].partition(":")
    assert getattr(importlib.import_module(module), name) is main
    assert callable(main)


def test_help_exits_0_and_names_kubectls_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: kubectl pgdeck")
    for flag in ("--context CTX", "--namespace NS", "--all-namespaces", "--kubeconfig PATH"):
        assert flag in out


def test_without_flags_the_configs_contexts_are_read(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert clusters(capsys, world["config"]) == {
        ("acid-main", "shop"),
        ("acid-main", "books"),
        ("acid-other", "shop"),
    }


def test_context_reads_that_context_only(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert clusters(capsys, world["config"], "--context", "b") == {("acid-other", "shop")}
    assert clusters(capsys, world["config"], "--context=a") == {
        ("acid-main", "shop"),
        ("acid-main", "books"),
    }


@pytest.mark.parametrize("flags", [("-n", "books"), ("--namespace=books",), ("-nbooks",)])
def test_namespace_reads_that_namespace_only(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str], flags: tuple[str, ...]
) -> None:
    assert clusters(capsys, world["config"], "--context", "a", *flags) == {("acid-main", "books")}


def test_all_namespaces_overrides_the_configs_namespaces(
    world: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    bucket: str,
    s3_endpoint: str,
) -> None:
    config = write_config(
        tmp_path / "shop-only.yaml",
        {
            "kubernetes": {"kubeconfig": str(world["kc"]), "namespaces": ["shop"]},
            "storage": [{"url": f"s3://{bucket}/spilo", "endpoint_url": s3_endpoint}],
            "cache": str(tmp_path / "cache2"),
        },
    )
    assert clusters(capsys, config) == {("acid-main", "shop")}
    assert clusters(capsys, config, "-A") == {("acid-main", "shop"), ("acid-main", "books")}


def test_kubeconfig_replaces_the_configs_kubeconfig(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # kc-b's current context is b; the config's contexts (a, b) still apply, and a is not
    # in kc-b, so the context is chosen too, as kubectl users do
    flags = ("--kubeconfig", str(world["kc-b"]), "--context", "b")
    assert clusters(capsys, world["config"], *flags) == {("acid-other", "shop")}


def test_namespace_before_a_command_settles_an_ambiguous_name(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(world["config"])
    code, _, err = run(capsys, "--config", config, "--context", "a", "backups", "acid-main")
    assert code == 2 and "ambiguous" in err
    code, out, err = run(
        capsys, "--config", config, "--context", "a", "-n", "shop", "backups", "acid-main", "--json"
    )
    assert code == 0, err
    assert [b["size"] for b in json.loads(out)] == [2048]


def test_an_unknown_context_is_one_line(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys, "--config", str(world["config"]), "--context", "nope", "clusters", "--json"
    )
    assert code == 1 and [r["status"] for r in json.loads(out)] == ["storage-only"]
    assert err.count("\n") == 1 and "kubernetes context 'nope'" in err, err


@pytest.mark.parametrize(
    "argv",
    [["-n", "Not_A_Namespace"], ["-n", "shop", "-A"], ["--context"], ["--json"]],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1].startswith("pgdeck: error: ")


def test_the_console_gets_the_overridden_config(world: dict[str, Path]) -> None:
    args = parse(
        build_parser(kubectl=True),
        ["--config", str(world["config"]), "--context", "b", "-n", "shop"],
    )
    assert args.command is None  # no command: the console
    args.clock = lambda: NOW
    app = console(args)
    assert app.catalog.config.kubernetes == KubernetesConfig(
        kubeconfig=world["kc"], contexts=("b",), namespaces=("shop",)
    )


def test_a_context_or_kubeconfig_means_the_live_api(tmp_path: Path) -> None:
    from services.config import KubernetesOverride

    manifests = KubernetesConfig(enabled=False, manifests=tmp_path, namespaces=("shop",))
    live = KubernetesOverride(context="prod").apply(manifests)
    assert live == KubernetesConfig(contexts=("prod",), namespaces=("shop",))
    # a namespace alone narrows what the file names, manifests included
    narrowed = KubernetesOverride(namespace="books").apply(manifests)
    assert narrowed == KubernetesConfig(enabled=False, manifests=tmp_path, namespaces=("books",))


def test_the_demo_refuses_kubectls_flags_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # refused before the sandbox is built: the sandbox is its own Kubernetes
    code, out, err = run(capsys, "--context", "prod", "demo", "--print")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "do not apply to the demo sandbox" in err


def test_a_report_names_the_plugins_command_line() -> None:
    args = parse(build_parser(kubectl=True), ["-n", "shop", "restore-test", "acid-main"])
    assert (args.prog, args.argv) == ("kubectl pgdeck", ["-n", "shop", "restore-test", "acid-main"])
    assert parse(build_parser(), ["clusters"]).prog == "pgdeck"
