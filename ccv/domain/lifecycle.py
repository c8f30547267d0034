"""Lifecycle rules of SPEC §2 as plain functions: supersession order, TTL, precedence, cycles."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from ccv.domain.enums import Status

# Deep enough for any real chain, shallow enough for recursive renderers.
MAX_LINEAGE_DEPTH = 500


def version_key(collected_at: datetime, item_id: str) -> tuple[datetime, str]:
    """Newer means later `collected_at`; on a tie the larger id wins."""
    return (collected_at, item_id)


def is_expired(expires_at: datetime | None, at: datetime) -> bool:
    """An item is expired at TIME when `expires_at <= TIME`."""
    return expires_at is not None and expires_at <= at


def effective_status(*, superseded: bool, expired: bool, orphaned: bool) -> Status:
    """Precedence when several apply: superseded > expired > orphaned."""
    if superseded:
        return Status.SUPERSEDED
    if expired:
        return Status.EXPIRED
    if orphaned:
        return Status.ORPHANED
    return Status.ACTIVE


def status_at(status: Status, expires_at: datetime | None, at: datetime) -> Status:
    """The status a read reports: TTL applies before the sweep has written it (rule 3)."""
    if status in (Status.ACTIVE, Status.ORPHANED) and is_expired(expires_at, at):
        return effective_status(superseded=False, expired=True, orphaned=True)
    return status


@dataclass(frozen=True)
class Version:
    id: str
    collected_at: datetime
    status: Status

    @property
    def key(self) -> tuple[datetime, str]:
        return version_key(self.collected_at, self.id)


@dataclass
class SupersessionPlan:
    """What storing `incoming` versions of one (customer, name) does.

    `incoming` maps each new id to (status, superseded_by_id); `displaced` maps existing ids that
    become superseded to the id that supersedes them.
    """

    incoming: dict[str, tuple[Status, str | None]]
    displaced: dict[str, str]


def plan_supersession(existing: Sequence[Version], incoming: Sequence[Version]) -> SupersessionPlan:
    """Decide statuses for new versions of one field (or asset) name of one customer.

    `existing` holds every stored version that is not superseded, plus the newest stored version
    of any status. Among the versions that are not orphaned, the newest of all wins: if it is
    incoming it becomes active and every older non-superseded stored version is displaced; every
    other incoming version goes straight into history, superseded by the next newer version.
    An incoming version marked `orphaned` (dangling lineage) displaces nothing: it is stored
    orphaned, or superseded when a newer version exists (precedence superseded > orphaned).
    """
    plan = SupersessionPlan(incoming={}, displaced={})
    candidates = [v for v in incoming if v.status is not Status.ORPHANED]
    dangling = [v for v in incoming if v.status is Status.ORPHANED]
    heads = [v for v in existing if v.status is not Status.ORPHANED]
    head = max(heads, key=lambda v: v.key) if heads else None
    ordered = sorted([*candidates, *([head] if head is not None else [])], key=lambda v: v.key)
    for version in dangling:
        newer = next((v for v in ordered if v.key > version.key), None)
        plan.incoming[version.id] = (
            (Status.SUPERSEDED, newer.id) if newer is not None else (Status.ORPHANED, None)
        )
    if not candidates:
        return plan
    winner = ordered[-1]
    incoming_ids = {v.id for v in candidates}
    for newer, older in zip(ordered[1:], ordered[:-1], strict=True):
        if older.id in incoming_ids:
            plan.incoming[older.id] = (Status.SUPERSEDED, newer.id)
    if winner.id in incoming_ids:
        plan.incoming[winner.id] = (Status.ACTIVE, None)
        for version in existing:
            if version.status is not Status.SUPERSEDED and version.key < winner.key:
                plan.displaced[version.id] = winner.id
    return plan


def pick_as_of(
    versions: Iterable[Version], expires: Mapping[str, datetime | None], at: datetime
) -> Version | None:
    """The version served at TIME: the latest `collected_at <= TIME`, absent if it had expired.

    Orphaned versions are never served, now or in the past.
    """
    best: Version | None = None
    for version in versions:
        if version.status is Status.ORPHANED or version.collected_at > at:
            continue
        if best is None or version.key > best.key:
            best = version
    if best is None or is_expired(expires.get(best.id), at):
        return None
    return best


def find_cycle_members(edges: Mapping[str, str | None]) -> set[str]:
    """Ids that lie on a lineage cycle (a self-reference included), given id -> source id."""
    on_cycle: set[str] = set()
    state: dict[str, int] = {}  # 1 = on the current walk, 2 = done
    for start in edges:
        if start in state:
            continue
        path: list[str] = []
        node: str | None = start
        while node is not None and node in edges and node not in state:
            state[node] = 1
            path.append(node)
            node = edges[node]
            if len(path) > MAX_LINEAGE_DEPTH * 1000:
                break
        if node is not None and state.get(node) == 1:
            on_cycle.update(path[path.index(node) :])
        for visited in path:
            state[visited] = 2
    return on_cycle
