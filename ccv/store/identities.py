"""Queries on channel identities and on merged customers' aliases; every one tenant-scoped.

An alias is the profile row of a merged customer: `merged_into` names the customer it was
merged into, always the final one (a merge repoints the aliases of its source), so following
an alias is one lookup; `resolve` still follows a chain a concurrent merge may have made.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, exists, func, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from ccv.store.items import chunks, in_chunks
from ccv.store.tables import assets, fields, identities, profiles

Key = tuple[str, str]  # (channel, channel_user_id)
MAX_CHAIN = 32


def get(conn: Connection, tenant: str, channel: str, channel_user_id: str) -> Row[Any] | None:
    query = select(identities).where(
        identities.c.tenant == tenant,
        identities.c.channel == channel,
        identities.c.channel_user_id == channel_user_id,
    )
    return conn.execute(query).first()


def find(conn: Connection, tenant: str, keys: Iterable[Key]) -> dict[Key, Row[Any]]:
    found: dict[Key, Row[Any]] = {}
    for part in chunks(sorted(set(keys))):
        query = select(identities).where(
            identities.c.tenant == tenant,
            tuple_(identities.c.channel, identities.c.channel_user_id).in_(list(part)),
        )
        for row in conn.execute(query):
            found[(row.channel, row.channel_user_id)] = row
    return found


def of_customer(conn: Connection, tenant: str, customer: str) -> list[Row[Any]]:
    query = (
        select(identities)
        .where(identities.c.tenant == tenant, identities.c.customer == customer)
        .order_by(identities.c.channel, identities.c.channel_user_id)
    )
    return list(conn.execute(query))


def insert_new(conn: Connection, rows: Sequence[dict[str, Any]]) -> set[Key]:
    """Insert identities that are not taken yet; returns the keys this statement inserted (a
    key inserted meanwhile by another writer is left to it, not an error)."""
    inserted: set[Key] = set()
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    for part in chunks(list(rows)):
        statement = (
            dialect.insert(identities)
            .values(list(part))
            .on_conflict_do_nothing(
                index_elements=[
                    identities.c.tenant,
                    identities.c.channel,
                    identities.c.channel_user_id,
                ]
            )
            .returning(identities.c.channel, identities.c.channel_user_id)
        )
        inserted.update((channel, uid) for channel, uid in conn.execute(statement))
    return inserted


def set_customer(
    conn: Connection,
    tenant: str,
    channel: str,
    channel_user_id: str,
    values: dict[str, Any],
) -> None:
    conn.execute(
        update(identities)
        .where(
            identities.c.tenant == tenant,
            identities.c.channel == channel,
            identities.c.channel_user_id == channel_user_id,
        )
        .values(**values)
    )


def delete_one(conn: Connection, tenant: str, channel: str, channel_user_id: str) -> None:
    conn.execute(
        identities.delete().where(
            identities.c.tenant == tenant,
            identities.c.channel == channel,
            identities.c.channel_user_id == channel_user_id,
        )
    )


def delete_of_customer(conn: Connection, tenant: str, customer: str) -> int:
    result = conn.execute(
        identities.delete().where(identities.c.tenant == tenant, identities.c.customer == customer)
    )
    return int(result.rowcount or 0)


def move_all(conn: Connection, tenant: str, source: str, target: str) -> int:
    result = conn.execute(
        update(identities)
        .where(identities.c.tenant == tenant, identities.c.customer == source)
        .values(customer=target)
    )
    return int(result.rowcount or 0)


# --- aliases ---------------------------------------------------------------------------------


def aliases_of(conn: Connection, tenant: str, customers: Iterable[str]) -> dict[str, str]:
    """alias -> the customer it was merged into, for those of `customers` that are aliases."""
    found: dict[str, str] = {}
    for clause in in_chunks(conn, profiles.c.customer, customers):
        query = select(profiles.c.customer, profiles.c.merged_into).where(
            profiles.c.tenant == tenant, clause, profiles.c.merged_into.is_not(None)
        )
        found.update((alias, target) for alias, target in conn.execute(query))
    return found


def merged_into(conn: Connection, tenant: str, customer: str) -> str | None:
    query = select(profiles.c.merged_into).where(
        profiles.c.tenant == tenant, profiles.c.customer == customer
    )
    target = conn.execute(query).scalar()
    return None if target is None else str(target)


def resolve(conn: Connection, tenant: str, customer: str) -> str:
    """The customer `customer` stands for: itself, or the end of its alias chain."""
    current = customer
    for _ in range(MAX_CHAIN):
        target = merged_into(conn, tenant, current)
        if target is None or target == current:
            return current
        current = target
    return current


def pointing_at(conn: Connection, tenant: str, customer: str) -> list[str]:
    """The aliases of `customer` (the customers merged into it)."""
    query = (
        select(profiles.c.customer)
        .where(profiles.c.tenant == tenant, profiles.c.merged_into == customer)
        .order_by(profiles.c.customer)
    )
    return [str(alias) for alias in conn.scalars(query)]


def make_alias(conn: Connection, tenant: str, source: str, target: str, now: datetime) -> list[str]:
    """`source` becomes an alias of `target`, and so do the aliases of `source` (returned):
    every alias names the final customer."""
    repointed = pointing_at(conn, tenant, source)
    conn.execute(
        update(profiles)
        .where(
            profiles.c.tenant == tenant,
            or_(profiles.c.customer == source, profiles.c.merged_into == source),
        )
        .values(merged_into=target, merged_at=now, updated_at=now)
    )
    return repointed


def delete_aliases_of(conn: Connection, tenant: str, customer: str) -> list[str]:
    aliases = pointing_at(conn, tenant, customer)
    if aliases:
        conn.execute(
            profiles.delete().where(profiles.c.tenant == tenant, profiles.c.merged_into == customer)
        )
    return aliases


def presence(conn: Connection, tenant: str, customer: str) -> tuple[bool, str | None]:
    """(whether the customer holds any version or identity, the customer it was merged into)."""
    has_field = exists().where(fields.c.tenant == tenant, fields.c.customer == customer)
    has_asset = exists().where(assets.c.tenant == tenant, assets.c.customer == customer)
    has_identity = exists().where(identities.c.tenant == tenant, identities.c.customer == customer)
    alias = (
        select(profiles.c.merged_into)
        .where(profiles.c.tenant == tenant, profiles.c.customer == customer)
        .scalar_subquery()
    )
    row = conn.execute(select(or_(has_field, has_asset, has_identity), alias)).one()
    return bool(row[0]), None if row[1] is None else str(row[1])


def count_by_tenant(conn: Connection, tenants: Sequence[str] | None) -> dict[str, int]:
    query = select(identities.c.tenant, func.count()).group_by(identities.c.tenant)
    if tenants is not None:
        query = query.where(identities.c.tenant.in_(list(tenants)))
    return {str(tenant): int(count) for tenant, count in conn.execute(query)}
