"""The merge rule (ccv.service.merge.plan_merge): per name, what the lifecycle would have made
had both customers' versions been stored for one customer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

from ccv.domain.enums import ItemKind
from ccv.service.merge import plan_merge


class Row(NamedTuple):
    id: str
    customer: str
    name: str
    status: str
    collected_at: datetime


def at(day: int) -> datetime:
    return datetime(2026, 3, day, tzinfo=UTC)


def superseded(rows: list[Row]) -> list[tuple[str, str]]:
    return [(c.id, c.superseded_by_id) for c in plan_merge(rows, ItemKind.FIELD)]


def test_the_newest_active_version_wins_whichever_side_it_is_on() -> None:
    rows = [Row("a", "S", "n", "active", at(2)), Row("b", "T", "n", "active", at(1))]
    assert superseded(rows) == [("b", "a")]
    rows = [Row("a", "S", "n", "active", at(1)), Row("b", "T", "n", "active", at(2))]
    assert superseded(rows) == [("a", "b")]


def test_a_tie_on_collected_at_goes_to_the_larger_id() -> None:
    rows = [Row("a", "S", "n", "active", at(1)), Row("b", "T", "n", "active", at(1))]
    assert superseded(rows) == [("a", "b")]


def test_a_newer_expired_value_still_ends_the_older_one() -> None:
    # Stored for one customer, the older value would have been superseded by the newer one,
    # which has since expired: the merged customer has no current value.
    rows = [Row("a", "S", "n", "active", at(1)), Row("b", "T", "n", "expired", at(2))]
    assert superseded(rows) == [("a", "b")]


def test_orphaned_versions_never_win_and_newer_ones_stay_orphaned() -> None:
    rows = [
        Row("a", "S", "n", "active", at(2)),
        Row("b", "T", "n", "orphaned", at(3)),
        Row("c", "T", "n", "orphaned", at(1)),
    ]
    assert superseded(rows) == [("c", "a")]


def test_history_and_the_winners_own_side_are_left_alone() -> None:
    rows = [
        Row("a", "S", "n", "superseded", at(1)),
        Row("b", "S", "n", "active", at(2)),
        Row("c", "T", "n", "superseded", at(3)),
        Row("d", "T", "n", "active", at(4)),
        Row("e", "T", "m", "active", at(1)),  # only one side has m: nothing changes
    ]
    assert superseded(rows) == [("b", "d")]
