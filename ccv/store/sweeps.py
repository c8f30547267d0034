"""Set-based sweeps: expiry and orphan detection, one statement per batch."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    exists,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import OperationalError

from ccv.domain.enums import ItemKind, Status
from ccv.errors import BackendError
from ccv.store.items import TABLES
from ccv.store.tables import UTCDateTime, assets, audit_events, fields, profiles

_SWEEPABLE = (Status.ACTIVE.value, Status.ORPHANED.value)
# How long a sweep batch waits for another run's batch of the same job and tenant. A batch is a
# short transaction: waiting this long means that run is stuck, and the caller should retry.
LOCK_TIMEOUT_SECONDS = 60.0


def lock_job(conn: Connection, job: str, tenant: str, timeout_s: float | None = None) -> None:
    """Serialise the batches of one sweep job (`expire`, `orphans`) on one tenant.

    Taken at the start of every applied batch's transaction and released by its commit, so
    concurrent runs (scheduled flows, workers, the CLI's --apply) take turns batch by batch and
    never select the same items; no lock outlives a transaction, none leaks through a pooled
    connection or a transaction-pooling proxy. SQLite write transactions are exclusive already.
    """
    if conn.dialect.name != "postgresql":
        return
    timeout_s = LOCK_TIMEOUT_SECONDS if timeout_s is None else timeout_s
    # Local to the transaction: bounds this wait (and the batch's own statements, which skip
    # locked rows rather than wait for them).
    conn.execute(
        text("SELECT set_config('lock_timeout', :timeout, true)"),
        {"timeout": f"{max(1, round(timeout_s * 1000))}ms"},
    )
    try:
        conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"ccv:{job}:{tenant}"},
        )
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) != "55P03":  # lock_not_available
            raise
        raise BackendError(
            f"another {job} run has held the lock of tenant {tenant!r} for over "
            f"{timeout_s:g} s; try again later"
        ) from exc


def tenants(conn: Connection) -> list[str]:
    """Every tenant with a profile: only the scheduled sweeps look across tenants."""
    return list(conn.scalars(select(profiles.c.tenant).distinct().order_by(profiles.c.tenant)))


def _expiring(kind: ItemKind, tenant: Any, now: Any) -> Any:
    table = TABLES[kind]
    return and_(
        table.c.tenant == tenant,
        # Inline literals, not parameters: the planner must see the partial expiry index's own
        # predicate to use it, also in a generic (prepared) plan.
        table.c.status.in_([literal_column(f"'{status}'") for status in _SWEEPABLE]),
        table.c.expires_at.is_not(None),
        table.c.expires_at <= now,
    )


def _listed(table: Any) -> Any:
    """The columns every sweep reports, in the order `SweepItem` is built from."""
    return select(
        table.c.id,
        table.c.customer,
        table.c.name,
        table.c.status,
        table.c.expires_at,
        table.c.source_item_id,
    )


def expiring(
    conn: Connection, kind: ItemKind, tenant: str, now: datetime, limit: int | None = None
) -> list[Any]:
    """Items past expires_at: the first `limit` by expiry (straight off the expiry index),
    listed in the SPEC order (collected_at, then id)."""
    params: dict[str, Any] = {"tenant": tenant, "now": now}
    if limit is not None:
        params["limit"] = limit
    rows = sorted(
        conn.execute(_expiring_statement(kind, limit is not None), params),
        key=lambda row: (row.collected_at, row.id),
    )
    return [tuple(row)[:-1] for row in rows]


def count_expiring_kinds(conn: Connection, tenant: str, now: datetime) -> dict[ItemKind, int]:
    """How many fields and assets are past expires_at, in one statement."""
    row = conn.execute(_count_kinds_statement(), {"tenant": tenant, "now": now}).one()
    return {kind: int(value) for kind, value in zip(ItemKind, row, strict=True)}


def expiry_preview(
    conn: Connection, tenant: str, now: datetime, limit: int | None
) -> tuple[dict[ItemKind, int], dict[ItemKind, list[Any]]]:
    """A dry run's work: how many fields and assets are past expires_at, and the first `limit`
    of each by expiry (rows as `expiring` returns them; None: all).

    On PostgreSQL one prepared statement and one round trip, read straight off the driver: the
    counts are index-only scans of the partial expiry index, and the whole dry run costs a few
    milliseconds, so a second round trip and the ORM's row processing were most of it.
    """
    if conn.dialect.name != "postgresql" or limit is None:
        counts = count_expiring_kinds(conn, tenant, now)
        pages = {
            kind: expiring(conn, kind, tenant, now, limit=limit) if counts[kind] else []
            for kind in ItemKind
        }
        return counts, pages
    driver = conn.connection.driver_connection
    assert driver is not None
    counts = dict.fromkeys(ItemKind, 0)
    rows_of: dict[ItemKind, list[Any]] = {kind: [] for kind in ItemKind}
    with driver.cursor() as cursor:
        cursor.execute(_PG_PREVIEW, {"tenant": tenant, "now": now, "limit": limit})
        for kind, count, *row in cursor:
            item_kind = ItemKind(kind)
            if count is not None:
                counts[item_kind] = count
            else:
                row[4] = row[4].astimezone(UTC)  # expires_at, whatever the session's time zone
                rows_of[item_kind].append(row)
    for rows in rows_of.values():
        rows.sort(key=lambda row: (row[6], row[0]))  # SPEC order: collected_at, then id
    return counts, {kind: [tuple(row[:6]) for row in rows] for kind, rows in rows_of.items()}


_PREVIEW_WHERE = """
    tenant = %(tenant)s AND status IN ('active', 'orphaned')
    AND expires_at IS NOT NULL AND expires_at <= %(now)s"""
_PREVIEW_PAGE = """
    (SELECT '{kind}', NULL::bigint, id, customer, name, status, expires_at, source_item_id,
            collected_at
     FROM {table} WHERE {where} ORDER BY expires_at, id LIMIT %(limit)s)"""
_PG_PREVIEW = " UNION ALL ".join(
    [
        f"(SELECT '{kind.value}', count(*), NULL, NULL, NULL, NULL, NULL::timestamptz, NULL, "
        f"NULL::timestamptz FROM {TABLES[kind].name} WHERE {_PREVIEW_WHERE})"
        for kind in ItemKind
    ]
    + [
        _PREVIEW_PAGE.format(kind=kind.value, table=TABLES[kind].name, where=_PREVIEW_WHERE)
        for kind in ItemKind
    ]
)


# The dry run's statements are built once, with parameters: a dry run is a handful of
# milliseconds on the server, and building the SELECTs again each time cost as much. The same
# SQL text each time also lets psycopg prepare them on a long-lived connection.
def _params_expiring(kind: ItemKind) -> Any:
    return _expiring(kind, bindparam("tenant"), bindparam("now", type_=UTCDateTime()))


@cache
def _expiring_statement(kind: ItemKind, limited: bool) -> Any:
    table = TABLES[kind]
    query = (
        _listed(table)
        .add_columns(table.c.collected_at)
        .where(_params_expiring(kind))
        .order_by(table.c.expires_at, table.c.id)
    )
    return query.limit(bindparam("limit")) if limited else query


@cache
def _count_kinds_statement() -> Any:
    from sqlalchemy import func

    return select(
        *(
            select(func.count())
            .select_from(TABLES[kind])
            .where(_params_expiring(kind))
            .scalar_subquery()
            for kind in ItemKind
        )
    )


_PG_EXPIRE = """
WITH batch AS (
    SELECT tenant, id, status FROM {table}
    WHERE tenant = :tenant AND status IN ('active', 'orphaned')
      AND expires_at IS NOT NULL AND expires_at <= :now
    ORDER BY expires_at, id
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
), changed AS (
    UPDATE {table} AS t SET status = 'expired', updated_at = :now
    FROM batch b WHERE t.tenant = :tenant AND t.id = b.id
    RETURNING t.id, t.customer, t.name, t.expires_at, t.source_item_id, b.status AS old_status
), logged AS (
    INSERT INTO audit_events
        (tenant, customer, item_id, item_kind, item_name, event, from_status, to_status,
         actor, at, details)
    SELECT :tenant, customer, id, :kind, name, 'status_change', old_status, 'expired',
           :actor, :now, CAST(:details AS JSONB)
    FROM changed
)
SELECT id, customer, name, old_status AS status, expires_at, source_item_id FROM changed
"""


def expire_batch(
    conn: Connection, kind: ItemKind, tenant: str, now: datetime, limit: int, actor: str
) -> list[Any]:
    """Expire up to `limit` items in one go (audit events included); returns what changed.

    On PostgreSQL rows locked by a concurrent sweep are skipped, so two runs never transition
    the same item twice.
    """
    table = TABLES[kind]
    if conn.dialect.name == "postgresql":
        params = {
            "tenant": tenant,
            "now": now,
            "limit": limit,
            "kind": kind.value,
            "actor": actor,
            "details": '{"reason": "expires_at"}',
        }
        typed = text(_PG_EXPIRE.format(table=table.name)).columns(expires_at=UTCDateTime())
        return list(conn.execute(typed, params))
    rows = list(
        conn.execute(
            _listed(table)
            .where(_expiring(kind, tenant, now))
            .order_by(table.c.expires_at, table.c.id)
            .limit(limit)
        )
    )
    if rows:
        _log(conn, kind, tenant, rows, Status.EXPIRED, now, actor, {"reason": "expires_at"})
        conn.execute(
            update(table)
            .where(table.c.tenant == tenant, table.c.id.in_([row.id for row in rows]))
            .values(status=Status.EXPIRED.value, updated_at=now)
        )
    return rows


def _log(
    conn: Connection,
    kind: ItemKind,
    tenant: str,
    rows: list[Any],
    to_status: Status,
    now: datetime,
    actor: str,
    details: dict[str, Any],
) -> None:
    conn.execute(
        audit_events.insert(),
        [
            {
                "tenant": tenant,
                "customer": row.customer,
                "item_id": row.id,
                "item_kind": kind.value,
                "item_name": row.name,
                "event": "status_change",
                "from_status": row.status,
                "to_status": to_status.value,
                "actor": actor,
                "at": now,
                "details": details,
            }
            for row in rows
        ],
    )


def _dangling(kind: ItemKind, tenant: str) -> Any:
    table = TABLES[kind]
    # Aliases: an unaliased `fields` inside EXISTS would correlate to the outer row itself.
    source_field = fields.alias("source_field")
    source_asset = assets.alias("source_asset")
    return and_(
        table.c.tenant == tenant,
        table.c.status == Status.ACTIVE.value,
        table.c.source_item_id.is_not(None),
        or_(
            table.c.source_item_type.is_(None),
            table.c.source_item_type.in_(("profile_field", "profile_asset")),
        ),
        ~exists().where(
            source_field.c.tenant == tenant, source_field.c.id == table.c.source_item_id
        ),
        ~exists().where(
            source_asset.c.tenant == tenant, source_asset.c.id == table.c.source_item_id
        ),
    )


def orphan_candidates(
    conn: Connection, kind: ItemKind, tenant: str, limit: int | None = None
) -> list[Any]:
    table = TABLES[kind]
    query = _listed(table).where(_dangling(kind, tenant)).order_by(table.c.collected_at, table.c.id)
    if limit is not None:
        query = query.limit(limit)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
    return list(conn.execute(query))


def mark_orphaned(
    conn: Connection,
    kind: ItemKind,
    tenant: str,
    rows: list[Any],
    now: datetime,
    actor: str,
    reason: str = "source missing",
) -> None:
    if not rows:
        return
    table = TABLES[kind]
    _log(conn, kind, tenant, rows, Status.ORPHANED, now, actor, {"reason": reason})
    conn.execute(
        update(table)
        .where(
            table.c.tenant == tenant,
            table.c.id.in_([row.id for row in rows]),
            table.c.status == Status.ACTIVE.value,
        )
        .values(status=Status.ORPHANED.value, updated_at=now)
    )
