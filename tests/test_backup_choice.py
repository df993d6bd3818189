"""``--backup latest | random:30d | BACKUP``: parsing, and the pick among real ``Backup`` values."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from services.backup_choice import LATEST, NAMED, RANDOM, choose, parse_choice
from services.errors import UsageError
from services.models import Backup

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def backup(hours_ago: float, cluster: str = "acid-main") -> Backup:
    t = NOW - timedelta(hours=hours_ago)
    key = f"spilo/{cluster}/uid-1/logical_backups/{int(t.timestamp())}.sql.gz"
    return Backup(
        url=f"s3://bkp/{key}",
        location="s3://bkp/spilo",
        key=key,
        cluster=cluster,
        uid="uid-1",
        time=t,
        size=1000,
    )


def test_choices_parse_into_values() -> None:
    assert parse_choice("latest").kind == LATEST
    r = parse_choice("random:30d")
    assert (r.kind, r.window, str(r)) == (RANDOM, timedelta(days=30), "random:30d")
    assert parse_choice("random:36h").window == timedelta(hours=36)
    assert str(parse_choice("random:36h")) == "random:36h"
    n = parse_choice("s3://bkp/spilo/x/1.sql.gz")
    assert (n.kind, n.name) == (NAMED, "s3://bkp/spilo/x/1.sql.gz")


@pytest.mark.parametrize("text", ["", "random", "random:", "random:0d", "random:30", "random:3w"])
def test_a_malformed_choice_is_one_line(text: str) -> None:
    with pytest.raises(UsageError) as exc:
        parse_choice(text)
    assert "\n" not in str(exc.value)
    assert "random:30d" in str(exc.value)


def test_latest_is_the_newest_never_a_future_dated_one() -> None:
    backups = [backup(30), backup(2), backup(-48), backup(10)]
    chosen = choose(parse_choice("latest"), backups, NOW, cluster="acid-main")
    assert chosen.backup == backups[1]
    assert chosen.seed is None


def test_latest_of_nothing_fails_clearly() -> None:
    with pytest.raises(UsageError, match="acid-main: no backup in storage"):
        choose(parse_choice("latest"), [backup(-48)], NOW, cluster="acid-main")


def test_random_is_reproducible_with_a_seed_and_stays_in_the_window() -> None:
    inside = [backup(h) for h in range(1, 24 * 30, 12)]
    outside = [backup(24 * 31), backup(24 * 90), backup(-30)]
    choice = parse_choice("random:30d")
    first = choose(choice, inside + outside, NOW, cluster="acid-main", seed=7)
    again = choose(choice, list(reversed(outside + inside)), NOW, cluster="acid-main", seed=7)
    assert first == again
    assert first.backup in inside
    assert (first.seed, first.among) == (7, len(inside))


def test_random_spreads_over_the_whole_window() -> None:
    inside = [backup(h) for h in (1, 100, 300, 700)]
    choice = parse_choice("random:30d")
    picks = Counter(
        choose(choice, inside, NOW, cluster="acid-main", seed=s).backup.key for s in range(400)
    )
    assert set(picks) == {b.key for b in inside}
    assert min(picks.values()) > 50  # uniform: about 100 each


def test_random_without_a_seed_draws_one_and_records_it() -> None:
    inside = [backup(h) for h in (1, 5, 9)]
    choice = parse_choice("random:1d")
    chosen = choose(choice, inside, NOW, cluster="acid-main")
    assert chosen.seed is not None
    assert choose(choice, inside, NOW, cluster="acid-main", seed=chosen.seed) == chosen


def test_an_empty_window_fails_with_one_clear_line() -> None:
    with pytest.raises(UsageError) as exc:
        choose(parse_choice("random:2d"), [backup(24 * 5), backup(-5)], NOW, cluster="acid-main")
    assert str(exc.value) == (
        "acid-main: no backup within the last 2d; widen the window or use --backup latest"
    )


def test_a_named_backup_is_found_by_url_or_key() -> None:
    backups = [backup(1), backup(50)]
    assert choose(parse_choice(backups[1].url), backups, NOW, cluster="c").backup == backups[1]
    assert choose(parse_choice(backups[1].key), backups, NOW, cluster="c").backup == backups[1]
    with pytest.raises(UsageError, match="c: no backup named 'nope'"):
        choose(parse_choice("nope"), backups, NOW, cluster="c")
