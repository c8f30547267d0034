"""Lineage walks as recursive CTEs over fields and assets, one query each way."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, text

from ccv.domain.lifecycle import MAX_LINEAGE_DEPTH
from ccv.store.tables import UTCDateTime

# Fields and assets share one id space per tenant (import refuses an id used by the other kind).
_ITEMS = """
    SELECT tenant, id, 'field' AS kind, name, status, customer, source_item_id, source_item_type,
           expires_at, collected_at
    FROM fields
    UNION ALL
    SELECT tenant, id, 'asset' AS kind, name, status, customer, source_item_id, source_item_type,
           expires_at, collected_at
    FROM assets
"""

_CHAIN = text(
    f"""
    WITH RECURSIVE chain(id, depth) AS (
        SELECT CAST(:item_id AS VARCHAR(256)), 0
        UNION ALL
        SELECT i.source_item_id, c.depth + 1
        FROM chain c JOIN ({_ITEMS}) i ON i.tenant = :tenant AND i.id = c.id
        WHERE i.source_item_id IS NOT NULL AND c.depth < :max_depth
          AND (i.source_item_type IS NULL
               OR i.source_item_type IN ('profile_field', 'profile_asset'))
    )
    SELECT c.depth, c.id, i.kind, i.name, i.status, i.customer, i.source_item_id,
           i.source_item_type, i.expires_at
    FROM chain c LEFT JOIN ({_ITEMS}) i ON i.tenant = :tenant AND i.id = c.id
    ORDER BY c.depth
    """
).columns(expires_at=UTCDateTime())

_DEPENDENTS = text(
    f"""
    WITH RECURSIVE deps(id, parent, depth) AS (
        SELECT i.id, i.source_item_id, 1
        FROM ({_ITEMS}) i
        WHERE i.tenant = :tenant AND i.source_item_id = :item_id
        UNION ALL
        SELECT i.id, i.source_item_id, d.depth + 1
        FROM deps d JOIN ({_ITEMS}) i ON i.tenant = :tenant AND i.source_item_id = d.id
        WHERE d.depth < :max_depth
    )
    SELECT d.depth, d.id, d.parent, i.kind, i.name, i.status, i.customer, i.source_item_id,
           i.source_item_type, i.expires_at
    FROM deps d
    JOIN ({_ITEMS}) i ON i.tenant = :tenant AND i.id = d.id
    ORDER BY d.depth, i.collected_at, d.id
    """
).columns(expires_at=UTCDateTime())


def chain(conn: Connection, tenant: str, item_id: str) -> list[Row[Any]]:
    """The item (depth 0) and its sources up to the root; a missing id has kind NULL."""
    params = {"tenant": tenant, "item_id": item_id, "max_depth": MAX_LINEAGE_DEPTH}
    return list(conn.execute(_CHAIN, params))


def dependents(conn: Connection, tenant: str, item_id: str) -> list[Row[Any]]:
    """Every item derived from `item_id`, directly or not, with its parent id."""
    params = {"tenant": tenant, "item_id": item_id, "max_depth": MAX_LINEAGE_DEPTH}
    return list(conn.execute(_DEPENDENTS, params))
