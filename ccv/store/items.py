"""Queries on fields, assets and profiles. Every function is scoped to one tenant."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import (
    JSON,
    Connection,
    Row,
    Table,
    Text,
    any_,
    bindparam,
    cast,
    exists,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import sqlite

from ccv.domain.enums import ItemKind, Status
from ccv.domain.lifecycle import Version
from ccv.store import copytext, outbox
from ccv.store.tables import (
    UTCDateTime,
    assets,
    audit_events,
    field_definitions,
    fields,
    identities,
    profiles,
)

if TYPE_CHECKING:
    from ccv.store.outbox import Owed

CHUNK = 500
TABLES: dict[ItemKind, Table] = {ItemKind.FIELD: fields, ItemKind.ASSET: assets}


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def in_chunks(conn: Connection, column: Any, values: Iterable[str]) -> Iterator[Any]:
    """`column IN values` as clauses over chunks: a bounded list of parameters on SQLite; on
    PostgreSQL one JSON text parameter per large chunk, unpacked by the server into the array
    of `= ANY(ARRAY(...))` (an index scan). Serialising the list is one orjson call, where an
    array parameter costs psycopg a Python loop over every element."""
    if conn.dialect.name == "postgresql":
        for part in chunks(list(set(values)), 100_000):
            payload = bindparam(None, orjson.dumps(list(part)).decode(), type_=Text())
            elements = select(func.json_array_elements_text(cast(payload, JSON)))
            yield column == any_(func.ARRAY(elements.scalar_subquery()))
    else:
        for part in chunks(sorted(set(values)), CHUNK):
            yield column.in_(part)


def _readable(kind: ItemKind) -> Any:
    """SELECT of an item table; fields carry `is_pii`, true when any agent's definition says so,
    read in the same statement so masking never works from a stale schema. The definitions are
    those of the statement's `tenant` parameter: on Citus a subquery that names its tenant is
    routed with the rest of the statement."""
    table = TABLES[kind]
    if kind is not ItemKind.FIELD:
        return select(table)
    pii = (
        exists()
        .where(
            field_definitions.c.tenant == bindparam("tenant"),
            field_definitions.c.name == table.c.name,
            field_definitions.c.is_pii.is_(True),
        )
        .label("is_pii")
    )
    return select(table, pii)


def _current_statement(kind: ItemKind) -> Any:
    table = TABLES[kind]
    return (
        _readable(kind)
        .where(
            table.c.tenant == bindparam("tenant"),
            table.c.customer == bindparam("customer"),
            table.c.status == Status.ACTIVE.value,
            or_(table.c.expires_at.is_(None), table.c.expires_at > bindparam("now")),
        )
        .order_by(table.c.name)
    )


def _history_statement(kind: ItemKind) -> Any:
    table = TABLES[kind]
    return (
        _readable(kind)
        .where(table.c.tenant == bindparam("tenant"), table.c.customer == bindparam("customer"))
        .order_by(table.c.name, table.c.collected_at.desc(), table.c.id.desc())
    )


# Built once: the hot read path then costs SQLAlchemy a cache lookup, not a statement build.
_CURRENT = {kind: _current_statement(kind) for kind in ItemKind}
_HISTORY = {kind: _history_statement(kind) for kind in ItemKind}


def current_items(
    conn: Connection, kind: ItemKind, tenant: str, customer: str, now: datetime
) -> list[Row[Any]]:
    """Active versions not expired at `now` (TTL enforced on read)."""
    params = {"tenant": tenant, "customer": customer, "now": now}
    return list(conn.execute(_CURRENT[kind], params))


def all_versions(conn: Connection, kind: ItemKind, tenant: str, customer: str) -> list[Row[Any]]:
    """Every stored version of the customer's items, newest first per name."""
    return list(conn.execute(_HISTORY[kind], {"tenant": tenant, "customer": customer}))


def holds_anything(tenant: str, customer: str) -> Any:
    """SQL: the customer holds a version of any status or a channel identity."""
    has_field = exists().where(fields.c.tenant == tenant, fields.c.customer == customer)
    has_asset = exists().where(assets.c.tenant == tenant, assets.c.customer == customer)
    has_identity = exists().where(identities.c.tenant == tenant, identities.c.customer == customer)
    return or_(has_field, has_asset, has_identity)


def customer_exists(conn: Connection, tenant: str, customer: str) -> bool:
    return bool(conn.execute(select(holds_anything(tenant, customer))).scalar())


def vault_source(table: Table) -> Any:
    """The item's source is a vault item: sources of type session, tool or external live
    outside the vault and end a lineage chain, whatever their id looks like."""
    return or_(
        table.c.source_item_type.is_(None),
        table.c.source_item_type.in_(("profile_field", "profile_asset")),
    )


def derived_field_ids(
    conn: Connection, tenant: str, asset_ids: Sequence[str]
) -> dict[str, list[str]]:
    """Fields whose direct source is each asset (an asset's `analysis_field_ids`)."""
    found: dict[str, list[str]] = defaultdict(list)
    for clause in in_chunks(conn, fields.c.source_item_id, asset_ids):
        query = (
            select(fields.c.source_item_id, fields.c.id)
            .where(fields.c.tenant == tenant, clause, vault_source(fields))
            .order_by(fields.c.collected_at, fields.c.id)
        )
        for source_id, field_id in conn.execute(query):
            found[source_id].append(field_id)
    return found


def find_items(
    conn: Connection, tenant: str, ids: Iterable[str]
) -> dict[str, tuple[ItemKind, str, str]]:
    """id -> (kind, content hash, status) for the ids that exist in the tenant's vault."""
    wanted = list(ids)
    found: dict[str, tuple[ItemKind, str, str]] = {}
    if not wanted:
        return found
    for kind, table in TABLES.items():
        for clause in in_chunks(conn, table.c.id, wanted):
            query = select(table.c.id, table.c.content_hash, table.c.status).where(
                table.c.tenant == tenant, clause
            )
            for item_id, content_hash, status in conn.execute(query):
                found[item_id] = (kind, content_hash, status)
    return found


def rows_by_id(
    conn: Connection, kind: ItemKind, tenant: str, ids: Sequence[str]
) -> dict[str, Row[Any]]:
    table = TABLES[kind]
    found: dict[str, Row[Any]] = {}
    for clause in in_chunks(conn, table.c.id, ids):
        for row in conn.execute(select(table).where(table.c.tenant == tenant, clause)):
            found[row.id] = row
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
    wanted = list(ids)
    pairs: list[tuple[str, str]] = []
    if not wanted:
        return pairs
    for table in TABLES.values():
        for clause in in_chunks(conn, table.c.source_item_id, wanted):
            query = select(table.c.id, table.c.source_item_id).where(
                table.c.tenant == tenant, clause, vault_source(table)
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
            for clause in in_chunks(conn, table.c.id, wanted):
                query = select(table.c.id, table.c.source_item_id).where(
                    table.c.tenant == tenant, clause
                )
                for item_id, source_id in conn.execute(query):
                    edges[item_id] = source_id
                    if source_id is not None:
                        frontier.add(source_id)
    return edges


@dataclass
class LockedProfiles:
    """What locking a batch of profiles learnt on the way.

    `fingerprint`: the tenant's definitions fingerprint (see `ccv.store.definitions`), from the
    same round trip. `created`: the customers whose profile rows this statement created, so
    nothing was stored for them before (every stored item has its profile row). Both are
    None on SQLite.
    """

    fingerprint: tuple[int, Any] | None = None
    created: set[str] | None = None
    # Merged customers among those locked -> the customer each was merged into (whose row is
    # locked too): a write naming an alias acts on that customer (SPEC §10).
    aliases: dict[str, str] = field(default_factory=dict)

    def customer(self, name: str) -> str:
        """The customer a write naming `name` acts on."""
        return self.aliases.get(name, name)


def upsert_and_lock_profiles(
    conn: Connection, tenant: str, customers: Iterable[str], now: datetime
) -> LockedProfiles:
    """Make sure each profile row exists and hold its row lock until the transaction ends.

    `INSERT ... ON CONFLICT DO UPDATE` takes the row lock in the same statement, in sorted order
    (no deadlocks between batches), so concurrent writers of one customer serialise on
    PostgreSQL and the supersession decision never races. SQLite write transactions are
    already exclusive. A merged customer's row names the customer it was merged into (read
    in the same statement on PostgreSQL): that one is locked as well, and `aliases` says so.
    """
    locked = _upsert_and_lock(conn, tenant, customers, now)
    pending = dict(locked.aliases)
    for _ in range(MAX_ALIAS_HOPS):
        if not pending:
            break
        targets = _upsert_and_lock(conn, tenant, set(pending.values()), now)
        # A target merged meanwhile (a concurrent merge committed before we locked it).
        pending = {
            alias: targets.aliases[target]
            for alias, target in pending.items()
            if target in targets.aliases
        }
        locked.aliases.update(pending)
    return locked


MAX_ALIAS_HOPS = 8


def _upsert_and_lock(
    conn: Connection, tenant: str, customers: Iterable[str], now: datetime
) -> LockedProfiles:
    ordered = sorted(set(customers))
    if conn.dialect.name == "postgresql":
        # One statement with an array parameter: no huge VALUES list to compile.
        locked = LockedProfiles(created=set())
        for part in chunks(ordered, 20000):
            row = conn.execute(
                _PG_UPSERT_PROFILES, {"tenant": tenant, "customers": list(part), "now": now}
            ).one()
            locked.fingerprint = (int(row[0]), row[1])
            assert locked.created is not None
            locked.created.update(row[2] or ())
            locked.aliases.update(row[3] or {})
        return locked
    for part in chunks(ordered, 1000):
        rows = [
            {"tenant": tenant, "customer": c, "created_at": now, "updated_at": now} for c in part
        ]
        statement = sqlite.insert(profiles).values(rows)
        statement = statement.on_conflict_do_update(
            index_elements=[profiles.c.tenant, profiles.c.customer],
            set_={"updated_at": statement.excluded.updated_at},
        )
        conn.execute(statement)
    locked = LockedProfiles()
    for clause in in_chunks(conn, profiles.c.customer, ordered):
        query = select(profiles.c.customer, profiles.c.merged_into).where(
            profiles.c.tenant == tenant, clause, profiles.c.merged_into.is_not(None)
        )
        locked.aliases.update((alias, target) for alias, target in conn.execute(query))
    return locked


# `xmax = 0` marks a row this statement inserted (a row it updated carries our transaction id).
_PG_UPSERT_PROFILES = text(
    """
    WITH locked AS (
        INSERT INTO profiles (tenant, customer, created_at, updated_at)
        SELECT :tenant, customer, :now, :now
        FROM unnest(CAST(:customers AS VARCHAR[])) AS customer
        ORDER BY customer
        ON CONFLICT (tenant, customer) DO UPDATE SET updated_at = EXCLUDED.updated_at
        RETURNING customer, xmax = 0 AS created, merged_into
    )
    SELECT count(*), max(updated_at),
           (SELECT json_agg(customer) FROM locked WHERE created) AS created,
           (SELECT json_object_agg(customer, merged_into) FROM locked
            WHERE merged_into IS NOT NULL) AS aliases
    FROM field_definitions
    WHERE tenant = :tenant
    """
).columns(max=UTCDateTime())


def version_heads(
    conn: Connection, kind: ItemKind, tenant: str, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], list[Version]]:
    """Per (customer, name): every stored version not superseded, plus the newest of any status.

    A plain range scan of the profile index; the reduction happens here, which keeps the
    statement cheap to plan and the same for one key or thousands.
    """
    table = TABLES[kind]
    wanted = set(keys)
    result: dict[tuple[str, str], list[Version]] = defaultdict(list)
    if not wanted:
        return result
    names = sorted({name for _, name in wanted})
    newest: dict[tuple[str, str], Version] = {}
    for clause in in_chunks(conn, table.c.customer, (customer for customer, _ in wanted)):
        query = select(
            table.c.customer, table.c.name, table.c.id, table.c.collected_at, table.c.status
        ).where(table.c.tenant == tenant, clause, table.c.name.in_(names))
        for customer, name, item_id, collected_at, status in conn.execute(query):
            key = (customer, name)
            if key not in wanted:
                continue
            version = Version(item_id, collected_at, Status(status))
            if version.status is not Status.SUPERSEDED:
                result[key].append(version)
            best = newest.get(key)
            if best is None or version.key > best.key:
                newest[key] = version
    for key, version in newest.items():
        if version.status is Status.SUPERSEDED:
            result[key].append(version)
    return result


_PG_SUPERSEDE = """
WITH moves AS (
    SELECT * FROM unnest(
        CAST(:old_ids AS VARCHAR[]), CAST(:new_ids AS VARCHAR[]), CAST(:old_statuses AS VARCHAR[])
    ) AS m(old_id, new_id, old_status)
), changed AS (
    UPDATE {table} AS t
    SET status = 'superseded', superseded_by_id = m.new_id, superseded_at = :now,
        updated_at = :now
    FROM moves m
    WHERE t.tenant = :tenant AND t.id = m.old_id
    RETURNING t.id, t.customer, t.name, m.new_id, m.old_status
)
INSERT INTO audit_events
    (tenant, customer, item_id, item_kind, item_name, event, from_status, to_status, actor, at,
     details)
SELECT :tenant, customer, id, :kind, name, 'status_change', old_status, 'superseded', :actor,
       :now, jsonb_build_object('superseded_by_id', new_id)
FROM changed
"""


def supersede_logged(
    conn: Connection,
    kind: ItemKind,
    tenant: str,
    moves: Mapping[str, tuple[str, Status]],
    now: datetime,
    actor: str,
) -> None:
    """PostgreSQL: supersede `old id -> (new id, old status)` and audit it in one statement."""
    old_ids = list(moves)
    conn.execute(
        text(_PG_SUPERSEDE.format(table=TABLES[kind].name)),
        {
            "old_ids": old_ids,
            "new_ids": [moves[i][0] for i in old_ids],
            "old_statuses": [moves[i][1].value for i in old_ids],
            "tenant": tenant,
            "kind": kind.value,
            "actor": actor,
            "now": now,
        },
    )


def supersede_and_insert(
    conn: Connection,
    kind: ItemKind,
    tenant: str,
    moves: Mapping[str, tuple[str, Status]],
    rows: Sequence[dict[str, Any]],
    now: datetime,
    actor: str,
) -> None:
    """PostgreSQL: displace the old versions (audited) and insert the new ones, in that order.

    A few rows go in one pipelined round trip; a bulk load takes COPY.
    """
    if len(rows) >= COPY_THRESHOLD:
        if moves:
            supersede_logged(conn, kind, tenant, moves, now, actor)
        insert_items(conn, kind, rows)
        return
    import psycopg
    from psycopg.types.json import Jsonb

    table = TABLES[kind]
    columns = [c.name for c in table.columns]
    json_columns = {c.name for c in table.columns if c.type._type_affinity is JSON}
    insert = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join(['%s'] * len(columns))})"
    )
    driver = conn.connection.driver_connection
    assert driver is not None
    try:
        with driver.pipeline(), driver.cursor() as cursor:
            if moves:
                old_ids = list(moves)
                cursor.execute(
                    _PG_SUPERSEDE_PSYCOPG.format(table=table.name),
                    {
                        "old_ids": old_ids,
                        "new_ids": [moves[i][0] for i in old_ids],
                        "old_statuses": [moves[i][1].value for i in old_ids],
                        "tenant": tenant,
                        "kind": kind.value,
                        "actor": actor,
                        "now": now,
                    },
                )
            cursor.executemany(
                insert,
                [
                    [
                        Jsonb(row[name])
                        if name in json_columns and row.get(name) is not None
                        else row.get(name)
                        for name in columns
                    ]
                    for row in rows
                ],
            )
    except psycopg.Error as exc:
        from sqlalchemy.exc import DBAPIError

        raise DBAPIError(insert, None, exc) from exc


_PG_ONE_DISPLACE = """
WITH newer AS (
    SELECT 1 FROM {table}
    WHERE tenant = %(tenant)s AND customer = %(customer)s AND name = %(name)s
      AND status <> 'orphaned' AND (collected_at, id) > (%(collected_at)s, %(id)s)
    LIMIT 1
), changed AS (
    UPDATE {table} AS t
    SET status = 'superseded', superseded_by_id = %(id)s, superseded_at = %(now)s,
        updated_at = %(now)s
    FROM (
        SELECT id, status FROM {table}
        WHERE tenant = %(tenant)s AND customer = %(customer)s AND name = %(name)s
          AND status IN ('active', 'expired', 'orphaned')
          AND (collected_at, id) < (%(collected_at)s, %(id)s)
    ) AS old
    -- The customer and name again on `t`: without statistics (a new table before its first
    -- ANALYZE) the planner may drive the join from `t`, and then reads only these versions
    -- instead of every row of the tenant for each one of them.
    WHERE t.tenant = %(tenant)s AND t.customer = %(customer)s AND t.name = %(name)s
      AND t.id = old.id AND NOT EXISTS (SELECT 1 FROM newer)
    RETURNING t.id, t.customer, t.name, old.status AS old_status
), logged AS (
    INSERT INTO audit_events
        (tenant, customer, item_id, item_kind, item_name, event, from_status, to_status, actor,
         at, details)
    SELECT %(tenant)s, customer, id, %(kind)s, name, 'status_change', old_status, 'superseded',
           %(actor)s, %(now)s, jsonb_build_object('superseded_by_id', %(id)s::text)
    FROM changed
)
SELECT count(*) FROM changed
"""

# The new version is active unless a stored, non-orphaned version is newer; then it goes
# straight to history, superseded by the newest (as plan_supersession decides).
_PG_ONE_INSERT = """
INSERT INTO {table} ({columns})
SELECT {values},
       CASE WHEN head.id IS NULL THEN 'active' ELSE 'superseded' END,
       head.id,
       CASE WHEN head.id IS NULL THEN NULL ELSE %(now)s::timestamptz END
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (
    SELECT id FROM {table}
    WHERE tenant = %(tenant)s AND customer = %(customer)s AND name = %(name)s
      AND status <> 'orphaned' AND (collected_at, id) > (%(collected_at)s, %(id)s)
    ORDER BY collected_at DESC, id DESC
    LIMIT 1
) AS head ON true
RETURNING status, superseded_by_id, superseded_at
"""


def insert_one(
    conn: Connection,
    kind: ItemKind,
    tenant: str,
    row: dict[str, Any],
    now: datetime,
    actor: str,
    owed: Owed | None = None,
) -> tuple[Status, int]:
    """PostgreSQL: store one new version, deciding supersession in SQL (the caller holds the
    customer's profile lock). Returns its status and how many stored versions it displaced;
    `row` gets the status columns filled in. `owed`: the write's cache invalidations, recorded
    in the outbox in the same round trip."""
    import psycopg
    from psycopg.types.json import Jsonb

    table = TABLES[kind]
    lifecycle = ("status", "superseded_by_id", "superseded_at")
    columns = [c.name for c in table.columns if c.name not in lifecycle]
    json_columns = {c.name for c in table.columns if c.type._type_affinity is JSON}
    params: dict[str, Any] = {
        f"v_{name}": Jsonb(row[name])
        if name in json_columns and row.get(name) is not None
        else row.get(name)
        for name in columns
    }
    params.update(
        tenant=tenant,
        customer=row["customer"],
        name=row["name"],
        collected_at=row["collected_at"],
        id=row["id"],
        now=now,
        kind=kind.value,
        actor=actor,
    )
    insert = _PG_ONE_INSERT.format(
        table=table.name,
        columns=", ".join([*columns, *lifecycle]),
        values=", ".join(f"%(v_{name})s" for name in columns),
    )
    driver = conn.connection.driver_connection
    assert driver is not None
    try:
        with driver.cursor() as displace, driver.cursor() as cursor, driver.cursor() as note:
            with driver.pipeline():
                displace.execute(_PG_ONE_DISPLACE.format(table=table.name), params)
                cursor.execute(insert, params)
                if owed is not None:
                    note.execute(outbox.PG_RECORD_PSYCOPG, outbox.pg_params(owed, now))
            displaced = displace.fetchone()
            stored = cursor.fetchone()
    except psycopg.Error as exc:
        from sqlalchemy.exc import DBAPIError

        raise DBAPIError(insert, None, exc) from exc
    assert displaced is not None and stored is not None
    status, superseded_by, superseded_at = stored
    row.update(status=status, superseded_by_id=superseded_by, superseded_at=superseded_at)
    return Status(status), int(displaced[0])


_PG_SUPERSEDE_PSYCOPG = (
    _PG_SUPERSEDE.replace(":old_ids", "%(old_ids)s")
    .replace(":new_ids", "%(new_ids)s")
    .replace(":old_statuses", "%(old_statuses)s")
    .replace(":tenant", "%(tenant)s")
    .replace(":kind", "%(kind)s")
    .replace(":actor", "%(actor)s")
    .replace(":now", "%(now)s")
)


def status_of(
    conn: Connection, kind: ItemKind, tenant: str, ids: Sequence[str]
) -> dict[str, Row[Any]]:
    table = TABLES[kind]
    found: dict[str, Any] = {}
    for clause in in_chunks(conn, table.c.id, ids):
        query = select(table.c.id, table.c.customer, table.c.name, table.c.status).where(
            table.c.tenant == tenant, clause
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


COPY_THRESHOLD = 500


def insert_items(conn: Connection, kind: ItemKind, rows: Sequence[dict[str, Any]]) -> None:
    """Insert new versions; large batches on PostgreSQL go through COPY in the same transaction."""
    if not rows:
        return
    table = TABLES[kind]
    if conn.dialect.name != "postgresql" or len(rows) < COPY_THRESHOLD:
        conn.execute(table.insert(), list(rows))
        return
    copytext.copy_rows(conn, table, rows)


def copy_lines(
    conn: Connection, kind: ItemKind, columns: Sequence[str], lines: Iterable[str]
) -> int:
    """PostgreSQL: COPY text lines as they come (an iterator may still be producing them)."""
    return copytext.copy_lines(conn, TABLES[kind], columns, lines)


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
            ).where(
                table.c.tenant == tenant,
                table.c.source_item_id.in_(part),
                vault_source(table),
            )
            if status is not None:
                query = query.where(table.c.status == status.value)
            found.extend((kind, row) for row in conn.execute(query.order_by(table.c.id)))
    return found


def delete_items(conn: Connection, kind: ItemKind, tenant: str, ids: Sequence[str]) -> None:
    table = TABLES[kind]
    for clause in in_chunks(conn, table.c.id, ids):
        conn.execute(table.delete().where(table.c.tenant == tenant, clause))


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


def source_asset_owners(
    conn: Connection, tenant: str, *, customer: str | None = None, ids: Sequence[str] = ()
) -> set[str]:
    """Customers owning the assets that the given fields (a customer's, or by id) derive from:
    an asset's `analysis_field_ids` lists fields of any customer, so writing or removing such a
    field changes what the asset's owner reads."""
    if customer is None and not ids:
        return set()
    source = assets.alias("source")
    query = (
        select(source.c.customer)
        .distinct()
        .select_from(
            fields.join(
                source,
                (source.c.tenant == fields.c.tenant) & (source.c.id == fields.c.source_item_id),
            )
        )
        .where(fields.c.tenant == tenant)
    )
    if customer is not None:
        return set(conn.scalars(query.where(fields.c.customer == customer)))
    owners: set[str] = set()
    for clause in in_chunks(conn, fields.c.id, ids):
        owners.update(conn.scalars(query.where(clause)))
    return owners


def asset_owners(conn: Connection, tenant: str, ids: Iterable[str]) -> set[str]:
    """Customers owning the assets with these ids."""
    owners: set[str] = set()
    for clause in in_chunks(conn, assets.c.id, ids):
        owners.update(
            conn.scalars(
                select(assets.c.customer).distinct().where(assets.c.tenant == tenant, clause)
            )
        )
    return owners


MAX_CANDIDATES = 10


def ids_with_prefix(conn: Connection, tenant: str, prefix: str) -> list[tuple[str, ItemKind, str]]:
    """(id, kind, name) of the tenant's items whose id starts with `prefix`: at most
    MAX_CANDIDATES + 1, so a caller can tell one from several (`LIKE 'prefix%'` is correct under
    any collation; under C it is a range scan of the primary key)."""
    found: list[tuple[str, ItemKind, str]] = []
    pattern = prefix.replace("%", "").replace("_", "") + "%"
    for kind, table in TABLES.items():
        query = (
            select(table.c.id, table.c.name)
            .where(table.c.tenant == tenant, table.c.id.like(pattern))
            .order_by(table.c.id)
            .limit(MAX_CANDIDATES + 1)
        )
        found.extend((row.id, kind, row.name) for row in conn.execute(query))
    return sorted(found)[: MAX_CANDIDATES + 1]
