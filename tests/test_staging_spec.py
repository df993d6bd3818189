"""A staging cluster's name, volume and manifest, within the operator's rules."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from services.config import StagingConfig
from services.errors import UsageError
from services.staging_spec import (
    GIB,
    MANAGED_BY,
    NAME_MAX,
    RUN_ID_LABEL,
    SOURCE_LABEL,
    checked_version,
    manifest,
    new_run_id,
    staging_name,
    volume_gib,
)

DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
RUN = "20261120t120000-a1b2c3"


def test_the_name_says_what_it_is() -> None:
    name = staging_name("pgdeck", "acid-main", RUN, "prod/shop")
    assert re.fullmatch(r"pgdeck-restore-test-acid-main-[0-9a-f]{4}-a1b2c3", name), name


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("acid_main", "prod/shop"), ("acid.main", "prod/shop")),  # reduced alike
        (("payments-ledger-reconciliation-eu", ""), ("payments-ledger-reconciliation-us", "")),
        (("acid-main", "prod/shop"), ("acid-main", "prod/billing")),  # one name, two namespaces
    ],
)
def test_sources_that_reduce_to_one_text_get_two_names(
    a: tuple[str, str], b: tuple[str, str]
) -> None:
    first = staging_name("pgdeck", a[0], RUN, a[1])
    second = staging_name("pgdeck", b[0], RUN, b[1])
    assert first != second
    assert len(first) <= NAME_MAX and len(second) <= NAME_MAX


@pytest.mark.parametrize(
    "source",
    [
        "acid-" + "very-long-cluster-name-" * 4,
        "Acid_Main.DB",
        "---weird---",
        "a" * 63,
        "ünïcode",
        "x-" * 20 + "y",
    ],
)
def test_odd_and_long_sources_still_give_a_valid_name(source: str) -> None:
    for team in ("pgdeck", "t", "a" * 20):
        name = staging_name(team, source, RUN)
        assert len(name) <= NAME_MAX
        assert DNS_1035.match(name), name
        assert name.startswith(f"{team}-")
        assert name.endswith("-a1b2c3")


def test_two_runs_of_one_source_have_two_names() -> None:
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    a, b = new_run_id(now), new_run_id(now)
    assert staging_name("pgdeck", "acid-main", a) != staging_name("pgdeck", "acid-main", b)


def test_volume_is_the_dump_times_the_headroom_rounded_up_and_never_under_the_minimum() -> None:
    cfg = StagingConfig(volume_headroom=8.0, min_volume_gib=2)
    assert volume_gib(1000, cfg) == 2
    assert volume_gib(GIB, cfg) == 8
    assert volume_gib(GIB + 1, cfg) == 9


def test_the_manifest_is_a_one_instance_cluster_without_logical_backups() -> None:
    cfg = StagingConfig(namespace="stg", team="qa", volume_headroom=3.0)
    m = manifest(
        cfg,
        name="qa-restore-test-acid-main-a1b2c3",
        version="15",
        dump_size=2 * GIB,
        run_id=RUN,
        source="acid-main",
        source_namespace="shop",
    )
    assert (m["apiVersion"], m["kind"]) == ("acid.zalan.do/v1", "postgresql")
    assert m["metadata"]["namespace"] == "stg"
    labels = m["metadata"]["labels"]
    assert labels[MANAGED_BY] == "pgdeck"
    assert (labels[RUN_ID_LABEL], labels[SOURCE_LABEL]) == (RUN, "acid-main")
    assert m["spec"] == {
        "teamId": "qa",
        "numberOfInstances": 1,
        "postgresql": {"version": "15"},
        "volume": {"size": "6Gi"},
        "enableLogicalBackup": False,
    }


@pytest.mark.parametrize("version", [None, "15; rm", "", "fifteen"])
def test_a_source_version_that_is_no_version_is_refused(version: str | None) -> None:
    with pytest.raises(UsageError, match="acid-main"):
        checked_version(version, "acid-main")
