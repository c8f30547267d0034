"""Sweep claims: one scheduled run at a time sweeps a tenant, and never twice as of one time.

A run claims (tenant, job) before it sweeps the tenant. The claim is granted when no other run
holds it (or the holder's lease ran out: a run that died frees its tenants) and no run already
swept the tenant as of this run's time or later; the holder renews the lease with every batch,
and on release records as of when it swept. A claim is a row, not a session lock, so it holds
through a connection pool, a transaction-pooling proxy and a Citus coordinator alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Connection, and_, or_, update
from sqlalchemy.dialects import postgresql, sqlite

from ccv.domain.timeutil import utcnow
from ccv.store.tables import sweep_claims

# A holder that has not renewed its claim for this long is taken for dead. Batches are short
# transactions that renew it, so only a stuck or killed run lets it run out.
LEASE = timedelta(minutes=10)


@dataclass(frozen=True)
class Claimant:
    """A scheduled run: who it is (its audit actor) and as of when it sweeps."""

    holder: str
    as_of: datetime


def claim(conn: Connection, job: str, tenant: str, claimant: Claimant) -> bool:
    """Claim (tenant, job) for `claimant`; whether it was granted."""
    wall = utcnow()
    values = {
        "tenant": tenant,
        "job": job,
        "holder": claimant.holder,
        "claimed_until": wall + LEASE,
    }
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    c = sweep_claims.c
    statement = (
        dialect.insert(sweep_claims)
        .values(values)
        .on_conflict_do_update(
            index_elements=[c.tenant, c.job],
            set_={"holder": claimant.holder, "claimed_until": wall + LEASE},
            where=and_(
                or_(c.claimed_until.is_(None), c.claimed_until <= wall),
                or_(c.swept_as_of.is_(None), c.swept_as_of < claimant.as_of),
            ),
        )
        .returning(c.holder)
    )
    return conn.execute(statement).first() is not None


def _held(job: str, tenant: str, claimant: Claimant) -> ColumnElement[bool]:
    c = sweep_claims.c
    return and_(c.tenant == tenant, c.job == job, c.holder == claimant.holder)


def renew(conn: Connection, job: str, tenant: str, claimant: Claimant) -> None:
    """Extend the claim's lease (inside each batch's transaction)."""
    statement = (
        update(sweep_claims)
        .where(_held(job, tenant, claimant))
        .values(claimed_until=utcnow() + LEASE)
    )
    conn.execute(statement)


def release(conn: Connection, job: str, tenant: str, claimant: Claimant, swept: bool) -> None:
    """Give the claim up; `swept`: the run swept the tenant to the end, as of its time."""
    values: dict[str, object] = {"holder": None, "claimed_until": None}
    if swept:
        values["swept_as_of"] = claimant.as_of
    conn.execute(update(sweep_claims).where(_held(job, tenant, claimant)).values(values))
