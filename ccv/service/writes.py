"""The one write path for new item versions: supersession, statuses and audit in one go.

Import and the library's `save_field` both end here, inside the caller's transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from ccv.domain.enums import ItemKind, Status
from ccv.domain.lifecycle import Version, plan_supersession
from ccv.domain.records import History
from ccv.domain.timeutil import utcnow
from ccv.store import items as store

if TYPE_CHECKING:
    from ccv.store.outbox import Owed


@dataclass
class NewItem:
    kind: ItemKind
    id: str
    customer: str
    name: str
    collected_at: datetime
    orphaned: bool
    row: dict[str, Any]
    # A record that says it is history (`profile export` writes the state of every version): it
    # is stored with that status as given and takes no part in supersession.
    history: History | None = None


@dataclass
class StoreOutcome:
    inserted: int = 0
    superseded: int = 0
    statuses: dict[str, Status] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    owed_recorded: bool = False  # the planned cache invalidations are in the outbox already


def audit_row(
    tenant: str,
    customer: str | None,
    item_id: str | None,
    kind: ItemKind | str | None,
    name: str | None,
    event: str,
    actor: str,
    at: datetime,
    from_status: str | None = None,
    to_status: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "tenant": tenant,
        "customer": customer,
        "item_id": item_id,
        "item_kind": str(kind) if kind is not None else None,
        "item_name": name,
        "event": event,
        "from_status": from_status,
        "to_status": to_status,
        "actor": actor,
        "at": at,
        "details": details or {},
    }


def audit_reveal(
    conn: Connection,
    tenant: str,
    customer: str,
    fields: Sequence[str],
    actor: str,
    details: dict[str, Any],
) -> None:
    """A PII reveal is an audit event naming the fields revealed, never their values."""
    store.insert_audit(
        conn,
        [
            audit_row(
                tenant,
                customer,
                None,
                None,
                None,
                "reveal_pii",
                actor,
                utcnow(),
                details={"fields": list(fields), **details},
            )
        ],
    )


def store_items(
    conn: Connection,
    tenant: str,
    new: Sequence[NewItem],
    now: datetime,
    actor: str,
    *,
    locked: bool = False,
    owed: Owed | None = None,
) -> StoreOutcome:
    """Insert new versions, superseding older ones per (customer, name) by `collected_at`.

    `locked` says the caller already holds the customers' profile locks in this transaction.
    `owed`: the write's planned cache invalidations; on PostgreSQL's one-version path they are
    recorded in the same round trip (`outcome.owed_recorded`), else the caller records them.
    """
    outcome = StoreOutcome()
    if not new:
        return outcome
    if not locked:
        store.upsert_and_lock_profiles(conn, tenant, {item.customer for item in new}, now)
    for kind in (ItemKind.FIELD, ItemKind.ASSET):
        batch = [item for item in new if item.kind is kind and item.history is None]
        kept = [item for item in new if item.kind is kind and item.history is not None]
        rows: list[dict[str, Any]] = [_as_given(item, outcome) for item in kept]
        if not batch:
            if rows:
                store.insert_items(conn, kind, rows)
                outcome.inserted += len(rows)
                outcome.rows.extend(rows)
            continue
        if (
            len(batch) == 1
            and not kept
            and not batch[0].orphaned
            and conn.dialect.name == "postgresql"
        ):
            # One new version (the library's save_field): the database decides supersession
            # under the profile lock, with the same rule as plan_supersession, in one round trip.
            item = batch[0]
            status, displaced_count = store.insert_one(
                conn, kind, tenant, item.row, now, actor, owed
            )
            outcome.owed_recorded = owed is not None
            outcome.statuses[item.id] = status
            outcome.superseded += displaced_count + (status is Status.SUPERSEDED)
            outcome.inserted += 1
            outcome.rows.append(item.row)
            continue
        groups: dict[tuple[str, str], list[NewItem]] = defaultdict(list)
        for item in batch:
            groups[(item.customer, item.name)].append(item)
        heads = store.version_heads(conn, kind, tenant, groups.keys())
        displaced: dict[str, str] = {}
        displaced_from: dict[str, tuple[Status, str, str]] = {}
        for key, group in groups.items():
            existing = heads.get(key)
            if not existing and len(group) == 1:
                # The common case of a bulk load: a first version. It is what it arrives as.
                item = group[0]
                status = Status.ORPHANED if item.orphaned else Status.ACTIVE
                outcome.statuses[item.id] = status
                item.row["status"] = status.value
                item.row["superseded_by_id"] = None
                item.row["superseded_at"] = None
                rows.append(item.row)
                continue
            existing = existing or []
            plan = plan_supersession(
                existing,
                [
                    Version(
                        item.id,
                        item.collected_at,
                        Status.ORPHANED if item.orphaned else Status.ACTIVE,
                    )
                    for item in group
                ],
            )
            by_id = {v.id: v for v in existing}
            for old_id, new_id in plan.displaced.items():
                displaced[old_id] = new_id
                displaced_from[old_id] = (by_id[old_id].status, key[0], key[1])
            for item in group:
                status, superseded_by = plan.incoming[item.id]
                outcome.statuses[item.id] = status
                if status is Status.SUPERSEDED:
                    outcome.superseded += 1
                item.row["status"] = status.value
                item.row["superseded_by_id"] = superseded_by
                item.row["superseded_at"] = now if superseded_by else None
                rows.append(item.row)
        # Displace first: the partial unique index allows one active version at a time.
        if conn.dialect.name == "postgresql":
            moves = {
                old_id: (displaced[old_id], status)
                for old_id, (status, _, _) in displaced_from.items()
            }
            store.supersede_and_insert(conn, kind, tenant, moves, rows, now, actor)
            outcome.superseded += len(displaced)
            outcome.inserted += len(rows)
            outcome.rows.extend(rows)
            continue
        if displaced:
            store.set_status(
                conn,
                kind,
                tenant,
                dict.fromkeys(displaced, Status.SUPERSEDED),
                now,
                superseded_by=displaced,
            )
            store.insert_audit(
                conn,
                [
                    audit_row(
                        tenant,
                        customer,
                        old_id,
                        kind,
                        name,
                        "status_change",
                        actor,
                        now,
                        from_status=old_status.value,
                        to_status=Status.SUPERSEDED.value,
                        details={"superseded_by_id": displaced[old_id]},
                    )
                    for old_id, (old_status, customer, name) in displaced_from.items()
                ],
            )
        outcome.superseded += len(displaced)
        store.insert_items(conn, kind, rows)
        outcome.inserted += len(rows)
        outcome.rows.extend(rows)
    return outcome


def _as_given(item: NewItem, outcome: StoreOutcome) -> dict[str, Any]:
    history = item.history
    assert history is not None
    outcome.statuses[item.id] = history.status
    item.row["status"] = history.status.value
    item.row["superseded_by_id"] = history.superseded_by_id
    item.row["superseded_at"] = history.superseded_at
    return item.row
