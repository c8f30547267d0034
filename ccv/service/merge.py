"""Merging two customers (SPEC §10): one person known under two ids becomes one customer.

In one transaction, every field and asset version and every identity of SOURCE moves to
TARGET; ids and lineage stay as they are. Per (kind, name) the outcome is what the lifecycle
would have made had every version been stored for one customer: the newest non-orphaned,
non-superseded version of both sides wins, and the other side's versions that are not
superseded yet and are older than it become superseded by it. SOURCE becomes an alias of
TARGET (so do SOURCE's own aliases); every moved version gets a `merge` audit event, every
version it supersedes a `status_change`, and both customers' cached entries are invalidated
through the outbox of the same transaction. A dry run does the same work and rolls it back.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select, update

from ccv import observe
from ccv.domain.enums import ItemKind, Status
from ccv.domain.lifecycle import version_key
from ccv.domain.models import MergeChange, MergeResult
from ccv.domain.timeutil import utcnow
from ccv.errors import UsageError
from ccv.service.profiles import not_found
from ccv.service.writes import audit_row
from ccv.store import identities, outbox
from ccv.store import items as store
from ccv.store.database import Database
from ccv.store.items import TABLES

if TYPE_CHECKING:
    from ccv.domain.records import ParsedAlias
    from ccv.service.importing import Incoming
    from ccv.store.cache import RedisCache


def _versions(conn: Connection, kind: ItemKind, tenant: str, customers: Sequence[str]) -> list[Any]:
    table = TABLES[kind]
    query = (
        select(table.c.id, table.c.customer, table.c.name, table.c.status, table.c.collected_at)
        .where(table.c.tenant == tenant, table.c.customer.in_(list(customers)))
        .order_by(table.c.name, table.c.collected_at, table.c.id)
    )
    return list(conn.execute(query))


def plan_merge(rows: Sequence[Any], kind: ItemKind) -> list[MergeChange]:
    """The versions a merge supersedes, per name (see the module's rule)."""
    by_name: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        by_name[row.name].append(row)
    changes: list[MergeChange] = []
    for name, versions in sorted(by_name.items()):
        heads = [
            row
            for row in versions
            if row.status not in (Status.SUPERSEDED.value, Status.ORPHANED.value)
        ]
        if not heads:
            continue
        winner = max(heads, key=lambda row: version_key(row.collected_at, row.id))
        winning_key = version_key(winner.collected_at, winner.id)
        for row in versions:
            if (
                row.customer != winner.customer
                and row.status != Status.SUPERSEDED.value
                and version_key(row.collected_at, row.id) < winning_key
            ):
                changes.append(
                    MergeChange(
                        kind=kind,
                        name=name,
                        id=row.id,
                        customer=row.customer,
                        from_status=Status(row.status),
                        superseded_by_id=winner.id,
                    )
                )
    return changes


def merge_customers(
    db: Database,
    tenant: str,
    source: str,
    target: str,
    *,
    apply: bool = False,
    actor: str = "library",
    cache: RedisCache | None = None,
) -> MergeResult:
    """Merge SOURCE into TARGET (dry run unless `apply`). Both names follow aliases; merging a
    customer into itself is a UsageError, an unknown customer NotFoundError."""
    if source == target:
        raise UsageError(f"cannot merge customer {source} into itself")
    now = utcnow()
    transaction = db.write() if apply else db.rollback_only()
    with transaction as conn:
        locked = store.upsert_and_lock_profiles(conn, tenant, [source, target], now)
        s, t = locked.customer(source), locked.customer(target)
        if s == t:
            raise UsageError(f"customer {source} is already merged into {t}")
        for asked, name in ((source, s), (target, t)):
            if not store.customer_exists(conn, tenant, name):
                raise not_found(tenant, asked)
        result, owed = _merge(conn, tenant, s, t, now, actor, apply)
    if apply:
        observe.transitions("item", "active", Status.SUPERSEDED.value, len(result.superseded))
        observe.event(
            "merge",
            tenant,
            source=s,
            target=t,
            fields=result.fields,
            assets=result.assets,
            identities=result.identities,
            superseded=len(result.superseded),
        )
        if cache is not None and owed is not None:
            cache.deliver(owed)
    return result


def _merge(
    conn: Connection, tenant: str, s: str, t: str, now: datetime, actor: str, apply: bool
) -> tuple[MergeResult, outbox.Owed | None]:
    moved: dict[ItemKind, list[Any]] = {}
    changes: list[MergeChange] = []
    names: set[str] = set()
    for kind in ItemKind:
        rows = _versions(conn, kind, tenant, [s, t])
        moved[kind] = [row for row in rows if row.customer == s]
        names.update(row.name for row in moved[kind])
        changes.extend(plan_merge(rows, kind))
    events: list[dict[str, Any]] = []
    after = {change.id: Status.SUPERSEDED for change in changes}
    for kind in ItemKind:
        kind_changes = [c for c in changes if c.kind is kind]
        # First the losers go to history (the partial unique index allows one active version
        # per name and customer), then the versions move.
        store.set_status(
            conn,
            kind,
            tenant,
            {c.id: Status.SUPERSEDED for c in kind_changes},
            now,
            superseded_by={c.id: c.superseded_by_id for c in kind_changes},
        )
        events.extend(
            audit_row(
                tenant,
                t,
                c.id,
                kind,
                c.name,
                "status_change",
                actor,
                now,
                from_status=c.from_status.value,
                to_status=Status.SUPERSEDED.value,
                details={"superseded_by_id": c.superseded_by_id, "reason": "merge"},
            )
            for c in kind_changes
        )
        table = TABLES[kind]
        conn.execute(
            update(table)
            .where(table.c.tenant == tenant, table.c.customer == s)
            .values(customer=t, updated_at=now)
        )
        events.extend(
            audit_row(
                tenant,
                t,
                row.id,
                kind,
                row.name,
                "merge",
                actor,
                now,
                from_status=row.status,
                to_status=after.get(row.id, Status(row.status)).value,
                details={"merged_from": s},
            )
            for row in moved[kind]
        )
    moved_identities = identities.move_all(conn, tenant, s, t)
    aliases = identities.make_alias(conn, tenant, s, t, now)
    events.append(
        audit_row(
            tenant,
            s,
            None,
            None,
            None,
            "merge",
            actor,
            now,
            details={
                "merged_into": t,
                "fields": len(moved[ItemKind.FIELD]),
                "assets": len(moved[ItemKind.ASSET]),
                "identities": moved_identities,
            },
        )
    )
    store.insert_audit(conn, events)
    owed = outbox.record(conn, tenant, customers={s, t, *aliases}, now=now) if apply else None
    result = MergeResult(
        tenant=tenant,
        source=s,
        target=t,
        applied=apply,
        fields=len(moved[ItemKind.FIELD]),
        assets=len(moved[ItemKind.ASSET]),
        identities=moved_identities,
        names=sorted(names),
        superseded=changes,
        aliases=aliases,
    )
    return result, owed


def import_aliases(
    conn: Connection,
    tenant: str,
    aliases: Sequence[tuple[Incoming, ParsedAlias]],
    now: datetime,
    actor: str,
    reject: Callable[[Incoming, str], None],
) -> tuple[int, int]:
    """Store the alias records of one tenant's batch (customers locked by the caller), as
    `profile export` writes them; returns (made, unchanged). An alias names the end of its
    chain; a customer that holds anything cannot become one (that is what `profile merge` is
    for), nor can one that is already an alias of another customer."""
    made = unchanged = 0
    events: list[dict[str, Any]] = []
    for incoming, alias in aliases:
        target = identities.resolve(conn, tenant, alias.merged_into)
        current = identities.merged_into(conn, tenant, alias.customer)
        if target == alias.customer:
            reject(incoming, f"customer {alias.customer} would become an alias of itself")
        elif current is not None:
            if current == target:
                unchanged += 1
            else:
                reject(
                    incoming,
                    f"customer {alias.customer} is an alias of customer {current} (conflict)",
                )
        elif store.customer_exists(conn, tenant, alias.customer):
            reject(
                incoming,
                f"customer {alias.customer} holds versions or identities: "
                "merge it with `ccv profile merge`",
            )
        else:
            identities.make_alias(conn, tenant, alias.customer, target, alias.merged_at or now)
            made += 1
            events.append(
                audit_row(
                    tenant,
                    alias.customer,
                    None,
                    None,
                    None,
                    "merge",
                    actor,
                    now,
                    details={"merged_into": target, "imported": True},
                )
            )
    store.insert_audit(conn, events)
    return made, unchanged
