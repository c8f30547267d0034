"""Queries on channel identities and on merged customers' aliases; every one tenant-scoped.

An alias is the profile row of a merged customer: `merged_into` names the customer it was
merged into, always the final one (a merge repoints the aliases of its source), so following
an alias is one lookup; `resolve` still follows a chain a concurrent merge may have made.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, bindparam, or_, select, text, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from ccv.domain.timeutil import ensure_utc
from ccv.store.items import MAX_ALIAS_HOPS, chunks, holds_anything
from ccv.store.tables import identities, profiles

Key = tuple[str, str]  # (channel, channel_user_id)
MAX_CHAIN = MAX_ALIAS_HOPS  # a chain a concurrent merge left: followed this far at most


class IdentityRow(NamedTuple):
    """A stored identity, in the table's column order."""

    tenant: str
    channel: str
    channel_user_id: str
    customer: str
    verified: bool
    linked_at: datetime
    source: str


_COLUMNS = ", ".join(IdentityRow._fields)
# The two statements every agent message and every profile read runs: on PostgreSQL they go
# through psycopg itself (SQLAlchemy's statement and row handling cost more than the query).
_PG_GET = (
    f"SELECT {_COLUMNS} FROM identities WHERE tenant = %s AND channel = %s AND channel_user_id = %s"
)
# A customer's identities are sorted here, not by the statement, and SQLite is told which index
# to use: with statistics taken while the table was near empty (or none for it, beside other
# tables'), SQLite scanned the table, or walked the tenant's whole primary key to skip a sort.
_PG_OF_CUSTOMER = f"SELECT {_COLUMNS} FROM identities WHERE tenant = %s AND customer = %s"
_GET = select(identities).where(
    identities.c.tenant == bindparam("tenant"),
    identities.c.channel == bindparam("channel"),
    identities.c.channel_user_id == bindparam("channel_user_id"),
)
_OF_CUSTOMER = text(
    f"SELECT {_COLUMNS} FROM identities INDEXED BY ix_identities_customer"
    " WHERE tenant = :tenant AND customer = :customer"
).columns(*(identities.c[name] for name in IdentityRow._fields))


def _row(values: Sequence[Any]) -> IdentityRow:
    row = IdentityRow(*values)
    return row._replace(linked_at=ensure_utc(row.linked_at))


def _driver_rows(conn: Connection, sql: str, params: tuple[str, ...]) -> list[IdentityRow]:
    driver = conn.connection.driver_connection
    assert driver is not None
    try:
        with driver.cursor() as cursor:
            cursor.execute(sql, params)
            return [_row(values) for values in cursor.fetchall()]
    except Exception as exc:
        import psycopg

        if not isinstance(exc, psycopg.Error):
            raise
        from sqlalchemy.exc import DBAPIError

        raise DBAPIError(sql, None, exc) from exc


def get(conn: Connection, tenant: str, channel: str, channel_user_id: str) -> IdentityRow | None:
    if conn.dialect.name == "postgresql":
        found = _driver_rows(conn, _PG_GET, (tenant, channel, channel_user_id))
        return found[0] if found else None
    params = {"tenant": tenant, "channel": channel, "channel_user_id": channel_user_id}
    row = conn.execute(_GET, params).first()
    return None if row is None else _row(tuple(row))


def find(conn: Connection, tenant: str, keys: Iterable[Key]) -> dict[Key, IdentityRow]:
    found: dict[Key, IdentityRow] = {}
    for part in chunks(sorted(set(keys))):
        query = select(identities).where(
            identities.c.tenant == tenant,
            tuple_(identities.c.channel, identities.c.channel_user_id).in_(list(part)),
        )
        for values in conn.execute(query):
            row = _row(tuple(values))
            found[(row.channel, row.channel_user_id)] = row
    return found


def of_customer(conn: Connection, tenant: str, customer: str) -> list[IdentityRow]:
    """The customer's identities by channel and id."""
    if conn.dialect.name == "postgresql":
        found = _driver_rows(conn, _PG_OF_CUSTOMER, (tenant, customer))
    else:
        params = {"tenant": tenant, "customer": customer}
        found = [_row(tuple(row)) for row in conn.execute(_OF_CUSTOMER, params)]
    return sorted(found, key=_by_channel)


def _by_channel(row: IdentityRow) -> tuple[str, str]:
    return row.channel, row.channel_user_id


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
    alias = (
        select(profiles.c.merged_into)
        .where(profiles.c.tenant == tenant, profiles.c.customer == customer)
        .scalar_subquery()
    )
    row = conn.execute(select(holds_anything(tenant, customer), alias)).one()
    return bool(row[0]), None if row[1] is None else str(row[1])
