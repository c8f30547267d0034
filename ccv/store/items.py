"""Queries on fields, assets and profiles. Every function is scoped to one tenant."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    Table,
    bindparam,
    exists,
    func,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from ccv.domain.enums import ItemKind, Status
from ccv.domain.lifecycle import Version
from ccv.store.tables import assets, audit_events, fields, profiles

CHUNK = 500
TABLES: dict[ItemKind, Table] = {ItemKind.FIELD: fields, ItemKind.ASSET: assets}


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def current_items(
    conn: Connection, kind: ItemKind, tenant: str, customer: str, now: datetime
) -> list[Row[Any]]:
    """Active versions not expired at `now` (TTL enforced on read)."""
    table = TABLES[kind]
    query = (
        select(table)
        .where(
            table.c.tenant == tenant,
            table.c.customer == customer,
            table.c.status == Status.ACTIVE.value,
            or_(table.c.expires_at.is_(None), table.c.expires_at > now),
        )
        .order_by(table.c.name)
    )
    return list(conn.execute(query))


def all_versions(conn: Connection, kind: ItemKind, tenant: str, customer: str) -> list[Row[Any]]:
    """Every stored version of the customer's items, newest first per name."""
    table = TABLES[kind]
    query = (
        select(table)
        .where(table.c.tenant == tenant, table.c.customer == customer)
        .order_by(table.c.name, table.c.collected_at.desc(), table.c.id.desc())
    )
    return list(conn.execute(query))


def customer_exists(conn: Connection, tenant: str, customer: str) -> bool:
    has_field = exists().where(fields.c.tenant == tenant, fields.c.customer == customer)
    has_asset = exists().where(assets.c.tenant == tenant, assets.c.customer == customer)
    return bool(conn.execute(select(or_(has_field, has_asset))).scalar())


def derived_field_ids(
    conn: Connection, tenant: str, asset_ids: Sequence[str]
) -> dict[str, list[str]]:
    """Fields whose direct source is each asset (an asset's `analysis_field_ids`)."""
    found: dict[str, list[str]] = defaultdict(list)
    for part in chunks(list(asset_ids)):
        query = (
            select(fields.c.source_item_id, fields.c.id)
            .where(fields.c.tenant == tenant, fields.c.source_item_id.in_(part))
            .order_by(fields.c.collected_at, fields.c.id)
        )
        for source_id, field_id in conn.execute(query):
            found[source_id].append(field_id)
    return found


def find_items(
    conn: Connection, tenant: str, ids: Iterable[str]
) -> dict[str, tuple[ItemKind, str, str]]:
    """id -> (kind, content hash, status) for the ids that exist in the tenant's vault."""
    wanted = sorted(set(ids))
    found: dict[str, tuple[ItemKind, str, str]] = {}
    for kind, table in TABLES.items():
        for part in chunks(wanted):
            query = select(table.c.id, table.c.content_hash, table.c.status).where(
                table.c.tenant == tenant, table.c.id.in_(part)
            )
            for item_id, content_hash, status in conn.execute(query):
                found[item_id] = (kind, content_hash, status)
    return found


def get_item(conn: Connection, tenant: str, item_id: str) -> tuple[ItemKind, Row[Any]] | None:
    for kind, table in TABLES.items():
        row = conn.execute(
            select(table).where(table.c.tenant == tenant, table.c.id == item_id)
        ).first()
        if row is not None:
            return kind, row
    return None


def items_pointing_at(conn: Connection, tenant: str, ids: Iterable[str]) -> list[tuple[str, str]]:
    """(id, source_item_id) of stored items whose source is one of `ids`."""
    wanted = sorted(set(ids))
    pairs: list[tuple[str, str]] = []
    for table in TABLES.values():
        for part in chunks(wanted):
            query = select(table.c.id, table.c.source_item_id).where(
                table.c.tenant == tenant, table.c.source_item_id.in_(part)
            )
            pairs.extend((row[0], row[1]) for row in conn.execute(query))
    return pairs


def source_edges(conn: Connection, tenant: str, ids: Iterable[str]) -> dict[str, str | None]:
    """id -> source_item_id for stored items, following sources upwards (bounded)."""
    edges: dict[str, str | None] = {}
    frontier = set(ids)
    for _ in range(1000):
        frontier -= edges.keys()
        if not frontier:
            break
        wanted = sorted(frontier)
        frontier = set()
        for table in TABLES.values():
            for part in chunks(wanted):
                query = select(table.c.id, table.c.source_item_id).where(
                    table.c.tenant == tenant, table.c.id.in_(part)
                )
                for item_id, source_id in conn.execute(query):
                    edges[item_id] = source_id
                    if source_id is not None:
                        frontier.add(source_id)
    return edges


def upsert_and_lock_profiles(
    conn: Connection, tenant: str, customers: Iterable[str], now: datetime
) -> None:
    """Make sure each profile row exists and hold its row lock until the transaction ends.

    `INSERT ... ON CONFLICT DO UPDATE` takes the row lock in the same statement, in sorted order
    (no deadlocks between batches), so concurrent writers of one customer serialise on
    PostgreSQL and the supersession decision never races. SQLite write transactions are
    already exclusive.
    """
    ordered = sorted(set(customers))
    module: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    for part in chunks(ordered, 1000):
        rows = [
            {"tenant": tenant, "customer": c, "created_at": now, "updated_at": now} for c in part
        ]
        statement = module.insert(profiles).values(rows)
        statement = statement.on_conflict_do_update(
            index_elements=[profiles.c.tenant, profiles.c.customer],
            set_={"updated_at": statement.excluded.updated_at},
        )
        conn.execute(statement)


def version_heads(
    conn: Connection, kind: ItemKind, tenant: str, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], list[Version]]:
    """Per (customer, name): every stored version not superseded, plus the newest of any status."""
    table = TABLES[kind]
    wanted = sorted(set(keys))
    result: dict[tuple[str, str], list[Version]] = defaultdict(list)
    if not wanted:
        return result
    rank = (
        func.row_number()
        .over(
            partition_by=(table.c.customer, table.c.name),
            order_by=(table.c.collected_at.desc(), table.c.id.desc()),
        )
        .label("rank")
    )
    for part in chunks(wanted):
        inner = (
            select(table.c.customer, table.c.name, table.c.id, table.c.collected_at, table.c.status)
            .add_columns(rank)
            .where(
                table.c.tenant == tenant,
                tuple_(table.c.customer, table.c.name).in_(list(part)),
            )
            .subquery()
        )
        query = select(inner).where(
            or_(inner.c.rank == 1, inner.c.status != Status.SUPERSEDED.value)
        )
        for row in conn.execute(query):
            result[(row.customer, row.name)].append(
                Version(row.id, row.collected_at, Status(row.status))
            )
    return result


def status_of(
    conn: Connection, kind: ItemKind, tenant: str, ids: Sequence[str]
) -> dict[str, Row[Any]]:
    table = TABLES[kind]
    found: dict[str, Any] = {}
    for part in chunks(list(ids)):
        query = select(table.c.id, table.c.customer, table.c.name, table.c.status).where(
            table.c.tenant == tenant, table.c.id.in_(part)
        )
        for row in conn.execute(query):
            found[row.id] = row
    return found


def set_status(
    conn: Connection,
    kind: ItemKind,
    tenant: str,
    changes: Mapping[str, Status],
    now: datetime,
    superseded_by: Mapping[str, str] | None = None,
) -> None:
    """Apply status transitions (superseded ones record by whom and when)."""
    if not changes:
        return
    table = TABLES[kind]
    rows = []
    for item_id, status in changes.items():
        by = (superseded_by or {}).get(item_id)
        rows.append(
            {
                "k_tenant": tenant,
                "k_id": item_id,
                "status": status.value,
                "superseded_by_id": by,
                "superseded_at": now if status is Status.SUPERSEDED else None,
                "updated_at": now,
            }
        )
    statement = (
        update(table)
        .where(table.c.tenant == bindparam("k_tenant"), table.c.id == bindparam("k_id"))
        .values(
            status=bindparam("status"),
            superseded_by_id=bindparam("superseded_by_id"),
            superseded_at=bindparam("superseded_at"),
            updated_at=bindparam("updated_at"),
        )
    )
    conn.execute(statement, rows)


def insert_items(conn: Connection, kind: ItemKind, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(TABLES[kind].insert(), list(rows))


def insert_audit(conn: Connection, events: Sequence[dict[str, Any]]) -> None:
    """Audit rows: item ids, names, statuses and actors only; never a value."""
    if events:
        conn.execute(audit_events.insert(), list(events))


def direct_dependents(
    conn: Connection, tenant: str, item_ids: Sequence[str], status: Status | None = None
) -> list[tuple[ItemKind, Any]]:
    """Items whose source is one of `item_ids` (optionally only those with `status`)."""
    found: list[tuple[ItemKind, Any]] = []
    for kind, table in TABLES.items():
        for part in chunks(list(item_ids)):
            query = select(
                table.c.id,
                table.c.customer,
                table.c.name,
                table.c.status,
                table.c.source_item_id,
            ).where(table.c.tenant == tenant, table.c.source_item_id.in_(part))
            if status is not None:
                query = query.where(table.c.status == status.value)
            found.extend((kind, row) for row in conn.execute(query.order_by(table.c.id)))
    return found


def delete_items(conn: Connection, kind: ItemKind, tenant: str, ids: Sequence[str]) -> None:
    table = TABLES[kind]
    for part in chunks(list(ids)):
        conn.execute(table.delete().where(table.c.tenant == tenant, table.c.id.in_(part)))


def customer_items(conn: Connection, kind: ItemKind, tenant: str, customer: str) -> list[Row[Any]]:
    table = TABLES[kind]
    query = select(table.c.id, table.c.customer, table.c.name, table.c.status).where(
        table.c.tenant == tenant, table.c.customer == customer
    )
    return list(conn.execute(query))


def delete_profile(conn: Connection, tenant: str, customer: str) -> None:
    conn.execute(
        profiles.delete().where(profiles.c.tenant == tenant, profiles.c.customer == customer)
    )
