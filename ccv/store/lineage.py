"""Lineage walks as recursive CTEs over fields and assets, one query each way.

Each step carries the columns the trace shows, so nothing is joined again afterwards.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, text

from ccv.domain.lifecycle import MAX_LINEAGE_DEPTH
from ccv.store.tables import UTCDateTime

_COLUMNS = "id, name, status, customer, source_item_id, source_item_type, expires_at, collected_at"

# Reads report a version past expires_at as expired before the sweep does (lifecycle.status_at).
_STATUS_NOW = """CASE WHEN status IN ('active', 'orphaned') AND expires_at IS NOT NULL
                   AND expires_at <= :now THEN 'expired' ELSE status END"""

# Up: one primary-key probe per step in each table; fields and assets share one id space per
# tenant (import refuses an id used by the other kind).
_CHAIN = text(
    f"""
    WITH RECURSIVE chain(depth, kind, {_COLUMNS}) AS (
        SELECT 0, 'field', {_COLUMNS} FROM fields WHERE tenant = :tenant AND id = :item_id
        UNION ALL
        SELECT 0, 'asset', {_COLUMNS} FROM assets WHERE tenant = :tenant AND id = :item_id
        UNION ALL
        SELECT c.depth + 1,
               CASE WHEN f.id IS NOT NULL THEN 'field' ELSE 'asset' END,
               COALESCE(f.id, a.id), COALESCE(f.name, a.name), COALESCE(f.status, a.status),
               COALESCE(f.customer, a.customer),
               CASE WHEN f.id IS NOT NULL THEN f.source_item_id ELSE a.source_item_id END,
               CASE WHEN f.id IS NOT NULL THEN f.source_item_type ELSE a.source_item_type END,
               CASE WHEN f.id IS NOT NULL THEN f.expires_at ELSE a.expires_at END,
               COALESCE(f.collected_at, a.collected_at)
        FROM chain c
        LEFT JOIN fields f ON f.tenant = :tenant AND f.id = c.source_item_id
        LEFT JOIN assets a ON a.tenant = :tenant AND a.id = c.source_item_id
        WHERE c.depth < :max_depth
          AND (f.id IS NOT NULL OR a.id IS NOT NULL)
          AND (c.source_item_type IS NULL
               OR c.source_item_type IN ('profile_field', 'profile_asset'))
    )
    SELECT depth, kind, id, name, {_STATUS_NOW} AS status, customer, source_item_id,
           source_item_type
    FROM chain ORDER BY depth
    """
).bindparams(bindparam("now", type_=UTCDateTime()))

# SQLite 3.34+ takes a recursive step of several SELECTs, each checked against the row before
# it probes its table: a field-typed source probes fields only, an asset-typed one assets.
_STEP = f"""
        SELECT c.depth + 1, '{{kind}}', {", ".join("t." + c for c in _COLUMNS.split(", "))}
        FROM chain c JOIN {{table}} t ON t.tenant = :tenant AND t.id = c.source_item_id
        WHERE c.depth < :max_depth
          AND (c.source_item_type IS NULL OR c.source_item_type = '{{source_type}}')"""
_CHAIN_SQLITE = text(
    f"""
    WITH RECURSIVE chain(depth, kind, {_COLUMNS}) AS (
        SELECT 0, 'field', {_COLUMNS} FROM fields WHERE tenant = :tenant AND id = :item_id
        UNION ALL
        SELECT 0, 'asset', {_COLUMNS} FROM assets WHERE tenant = :tenant AND id = :item_id
        UNION ALL
        {_STEP.format(kind="field", table="fields", source_type="profile_field")}
        UNION ALL
        {_STEP.format(kind="asset", table="assets", source_type="profile_asset")}
    )
    SELECT depth, kind, id, name, {_STATUS_NOW} AS status, customer, source_item_id,
           source_item_type
    FROM chain ORDER BY depth
    """
).bindparams(bindparam("now", type_=UTCDateTime()))


def chain_statement(dialect: str) -> Any:
    """The walk up for a dialect: SQLite's own form where its version takes it."""
    import sqlite3

    if dialect == "sqlite" and sqlite3.sqlite_version_info >= (3, 34):
        return _CHAIN_SQLITE
    return _CHAIN


# Only vault sources link items: session, tool and external ids end a chain.
_VAULT_SOURCE = (
    "(i.source_item_type IS NULL OR i.source_item_type IN ('profile_field', 'profile_asset'))"
)

_ITEMS = f"""
    SELECT tenant, 'field' AS kind, {_COLUMNS} FROM fields
    UNION ALL
    SELECT tenant, 'asset' AS kind, {_COLUMNS} FROM assets
"""

# Down: an item's dependents by the lineage index (tenant, source_item_id).
_DEPENDENTS = text(
    f"""
    WITH RECURSIVE deps(depth, parent, kind, {_COLUMNS}) AS (
        SELECT 1, i.source_item_id, i.kind, i.id, i.name, i.status, i.customer,
               i.source_item_id, i.source_item_type, i.expires_at, i.collected_at
        FROM ({_ITEMS}) i
        WHERE i.tenant = :tenant AND i.source_item_id = :item_id AND {_VAULT_SOURCE}
        UNION ALL
        SELECT d.depth + 1, i.source_item_id, i.kind, i.id, i.name, i.status, i.customer,
               i.source_item_id, i.source_item_type, i.expires_at, i.collected_at
        FROM deps d JOIN ({_ITEMS}) i ON i.tenant = :tenant AND i.source_item_id = d.id
            AND {_VAULT_SOURCE}
        WHERE d.depth < :max_depth
    )
    SELECT depth, parent, kind, id, name, {_STATUS_NOW} AS status, customer, source_item_id,
           source_item_type
    FROM deps ORDER BY depth, collected_at, id
    """
).bindparams(bindparam("now", type_=UTCDateTime()))


def chain(conn: Connection, tenant: str, item_id: str, now: datetime) -> list[Row[Any]]:
    """The item (depth 0) and the stored items it derives from, up to the root."""
    params = {"tenant": tenant, "item_id": item_id, "max_depth": MAX_LINEAGE_DEPTH, "now": now}
    return list(conn.execute(chain_statement(conn.dialect.name), params))


def dependents(conn: Connection, tenant: str, item_id: str, now: datetime) -> list[Row[Any]]:
    """Every item derived from `item_id`, directly or not, with its parent id."""
    params = {"tenant": tenant, "item_id": item_id, "max_depth": MAX_LINEAGE_DEPTH, "now": now}
    return list(conn.execute(_DEPENDENTS, params))
