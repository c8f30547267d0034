"""The cache invalidation outbox: what committed writes still owe the Redis read cache.

A write records, in its own transaction, whose cached reads it changes (`record`). After the
commit the writer delivers that to Redis and deletes the rows it recorded (`Outbox.clear`); a
writer that cannot reach Redis, has none configured, or dies before it delivers leaves them, and
the next reader delivers them before it serves from Redis (`Outbox.owed`). Rows are merged, one
per tenant and customer (or tenant-wide scope), so the table stays bounded by the customers
written since the last delivery.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection, bindparam, delete, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import DBAPIError

from ccv.domain.timeutil import utcnow
from ccv.errors import BackendError
from ccv.store.engine import backend_error, describe_url
from ccv.store.tables import cache_outbox

if TYPE_CHECKING:
    from ccv.store.database import Database

CUSTOMER, EPOCH, REQUIREMENTS = "c", "e", "q"
# A write touching more customers than this records the tenant's epoch instead (one row, and
# one INCR to deliver): an import of a whole tenant does not write a row per customer.
MAX_CUSTOMER_ROWS = 5000
_CHUNK = 500


@dataclass
class Owed:
    """Invalidations of one tenant: what one write recorded, or what readers found owed."""

    tenant: str
    customers: set[str] = field(default_factory=set)
    epoch: bool = False
    requirements: bool = False
    tokens: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.customers or self.epoch or self.requirements)


_RECORD_SQL = """
    INSERT INTO cache_outbox (tenant, scope, customer, token, recorded_at)
    SELECT :tenant, scope, customer, :token, :now
    FROM unnest(CAST(:scopes AS VARCHAR[]), CAST(:customers AS VARCHAR[])) AS u(scope, customer)
    ORDER BY scope, customer
    ON CONFLICT (tenant, scope, customer)
    DO UPDATE SET token = EXCLUDED.token, recorded_at = EXCLUDED.recorded_at
"""
_PG_RECORD = text(_RECORD_SQL)
# The same for psycopg itself: `ccv.store.items.insert_one` sends it in its pipeline, after the
# new version's statements (the outbox row is always a write's last lock: no deadlocks).
PG_RECORD_PSYCOPG = (
    _RECORD_SQL.replace(":tenant", "%(tenant)s")
    .replace(":token", "%(token)s")
    .replace(":now", "%(now)s")
    .replace(":scopes", "%(scopes)s")
    .replace(":customers", "%(customers)s")
)


def plan(
    tenant: str,
    *,
    customers: Iterable[str] = (),
    epoch: bool = False,
    requirements: bool = False,
) -> Owed | None:
    """What a write will record (no I/O): None when it invalidates nothing. More customers than
    MAX_CUSTOMER_ROWS become the tenant's epoch."""
    wanted = set(customers)
    if len(wanted) > MAX_CUSTOMER_ROWS:
        epoch = True
    owed = Owed(tenant, set() if epoch else wanted, epoch, requirements, {uuid.uuid4().hex})
    return owed if owed else None


def token_of(owed: Owed) -> str:
    """The token of a planned write (one per write)."""
    (token,) = owed.tokens
    return token


def pg_params(owed: Owed, now: datetime) -> dict[str, object]:
    """The parameters of the PostgreSQL upsert (`_PG_RECORD`, `PG_RECORD_PSYCOPG`)."""
    keys = _keys(owed)
    return {
        "tenant": owed.tenant,
        "token": token_of(owed),
        "now": now,
        "scopes": [scope for scope, _ in keys],
        "customers": [customer for _, customer in keys],
    }


def _keys(owed: Owed) -> list[tuple[str, str]]:
    keys = [(CUSTOMER, customer) for customer in sorted(owed.customers)]
    on = ((EPOCH, owed.epoch), (REQUIREMENTS, owed.requirements))
    return keys + [(scope, "") for scope, wanted in on if wanted]


def write(conn: Connection, owed: Owed | None, now: datetime | None = None) -> Owed | None:
    """Record a planned write's rows inside the caller's transaction; returns `owed`."""
    if owed is None:
        return None
    now = now or utcnow()
    if conn.dialect.name == "postgresql":
        conn.execute(_PG_RECORD, pg_params(owed, now))
        return owed
    keys, token = _keys(owed), token_of(owed)
    for start in range(0, len(keys), _CHUNK):
        rows = [
            {"tenant": owed.tenant, "scope": s, "customer": c, "token": token, "recorded_at": now}
            for s, c in keys[start : start + _CHUNK]
        ]
        statement = sqlite.insert(cache_outbox).values(rows)
        statement = statement.on_conflict_do_update(
            index_elements=[cache_outbox.c.tenant, cache_outbox.c.scope, cache_outbox.c.customer],
            set_={
                "token": statement.excluded.token,
                "recorded_at": statement.excluded.recorded_at,
            },
        )
        conn.execute(statement)
    return owed


def record(
    conn: Connection,
    tenant: str,
    *,
    customers: Iterable[str] = (),
    epoch: bool = False,
    requirements: bool = False,
    now: datetime | None = None,
) -> Owed | None:
    """Record, inside the caller's write transaction, the invalidations its changes need.
    Returns what was recorded (to deliver after the commit), None when nothing was."""
    owed = plan(tenant, customers=customers, epoch=epoch, requirements=requirements)
    return write(conn, owed, now)


def extend(
    conn: Connection, owed: Owed | None, tenant: str, customers: Iterable[str], now: datetime
) -> Owed | None:
    """Add customers to what a write already recorded (same token), e.g. the owners of assets
    its new fields derive from, known only after its records were checked."""
    if owed is None:
        return record(conn, tenant, customers=customers, now=now)
    if owed.epoch:
        return owed  # the tenant's epoch covers every customer
    extra = set(customers) - owed.customers
    if not extra:
        return owed
    if len(owed.customers) + len(extra) > MAX_CUSTOMER_ROWS:
        more = Owed(tenant, set(), True, False, owed.tokens)
        owed.epoch, owed.customers = True, set()
    else:
        more = Owed(tenant, extra, False, False, owed.tokens)
        owed.customers |= extra
    write(conn, more, now)
    return owed


_OWED = select(cache_outbox.c.scope, cache_outbox.c.customer, cache_outbox.c.token).where(
    cache_outbox.c.tenant == bindparam("tenant")
)

_PG_OWED = "SELECT scope, customer, token FROM cache_outbox WHERE tenant = %s"

_CLEAR = delete(cache_outbox).where(
    cache_outbox.c.tenant == bindparam("tenant"),
    cache_outbox.c.token.in_(bindparam("tokens", expanding=True)),
)


class Outbox:
    """The outbox of one database, as the read cache uses it."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def owed(self, tenant: str) -> Owed | None:
        """What committed writes still owe the cache for `tenant` (one indexed read, which on
        the common path finds nothing)."""
        if self.db.dialect == "postgresql":
            rows = self._pg_owed(tenant)
        else:
            with self.db.read() as conn:
                rows = [tuple(row) for row in conn.execute(_OWED, {"tenant": tenant})]
        if not rows:
            return None
        owed = Owed(tenant)
        for scope, customer, token in rows:
            owed.tokens.add(token)
            if scope == EPOCH:
                owed.epoch = True
            elif scope == REQUIREMENTS:
                owed.requirements = True
            else:
                owed.customers.add(customer)
        if owed.epoch or len(owed.customers) > MAX_CUSTOMER_ROWS:
            owed.epoch, owed.customers = True, set()
        return owed

    def _pg_owed(self, tenant: str) -> list[tuple[str, str, str]]:
        """The check on PostgreSQL, straight on the driver as a prepared statement: it runs
        before cached reads, and SQLAlchemy's transaction scaffolding would double its cost."""
        import psycopg

        self.db.check_schema()
        try:
            with self.db.read_engine.connect() as conn:
                driver = conn.connection.driver_connection
                assert driver is not None
                cursor = driver.execute(_PG_OWED, (tenant,), prepare=True)
                return [(str(a), str(b), str(c)) for a, b, c in cursor.fetchall()]
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BackendError(
                f"cannot use the database at {describe_url(self.db.url)}: {first}"
            ) from exc
        except DBAPIError as exc:
            raise backend_error(exc, self.db.url) from exc

    def clear(self, tenant: str, tokens: Sequence[str] | set[str]) -> None:
        """Delete the rows that still carry one of `tokens` (delivered): a row recorded again
        by a later write carries that write's token, and stays owed."""
        ordered = sorted(tokens)
        if not ordered:
            return
        # PostgreSQL: one autocommitted statement (the read engine); SQLite: a write transaction,
        # which starts IMMEDIATE and so waits its turn behind other writers.
        postgres = self.db.dialect == "postgresql"
        with self.db.read() if postgres else self.db.write() as conn:
            for start in range(0, len(ordered), _CHUNK):
                conn.execute(_CLEAR, {"tenant": tenant, "tokens": ordered[start : start + _CHUNK]})
