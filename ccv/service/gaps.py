"""Gaps capability: which of a scenario's requirements a customer still lacks (`profile gaps`).

One statement per call in the steady state: it reads the customer's relevant field versions
together with the scenario's and the tenant schema's version stamps. The compiled scenario
(requirements, prompts, validators) is cached per Database and used only while those stamps
are unchanged, so a cached plan is never stale: any `requirements apply` or `schema apply`
that changes something moves a stamp, and the next call recompiles.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from weakref import WeakKeyDictionary

from ccv.domain.enums import Status
from ccv.domain.gaps import CustomerValues, GapPlan, Gaps, compile_plan, find_gaps
from ccv.domain.lifecycle import status_at
from ccv.domain.timeutil import utcnow
from ccv.errors import NotFoundError
from ccv.store import requirements as store
from ccv.store.database import Database
from ccv.store.definitions import load_definitions

MAX_PLANS = 1024  # per Database; a plan is a few kilobytes


@dataclass(frozen=True, slots=True)
class _Cached:
    stamp: Hashable
    plan: GapPlan


_plans: WeakKeyDictionary[Database, dict[tuple[str, str], _Cached]] = WeakKeyDictionary()
_lock = threading.Lock()


def _cache(db: Database) -> dict[tuple[str, str], _Cached]:
    with _lock:
        cache = _plans.get(db)
        if cache is None:
            cache = _plans[db] = {}
        return cache


def _remember(cache: dict[tuple[str, str], _Cached], key: tuple[str, str], entry: _Cached) -> None:
    with _lock:
        if key not in cache and len(cache) >= MAX_PLANS:
            cache.pop(next(iter(cache)))  # the oldest entry: plans are cheap to rebuild
        cache[key] = entry


def _stamp(row: Any) -> Hashable:
    return (row.agent, row.content_hash, row.updated_at, row.defs_updated, row.defs_count)


def customer_values(rows: Sequence[Any], now: datetime) -> CustomerValues:
    """Current values and the names whose value ran out, from the gaps statement's rows."""
    current: dict[str, tuple[Any, bool]] = {}
    expired: set[str] = set()
    for row in rows:
        if row.name is None:  # the customer has no relevant version at all
            continue
        status = status_at(Status(row.status), row.expires_at, now)
        if status is Status.ACTIVE:
            current[row.name] = (row.value, bool(row.verified))
        elif status is Status.EXPIRED:
            expired.add(row.name)
    return CustomerValues(current=current, expired=expired)


def find_customer_gaps(
    db: Database, tenant: str, customer: str, scenario: str, *, now: datetime | None = None
) -> Gaps:
    """The customer's unmet requirements of `scenario`, in collection order.

    An unknown scenario is NotFoundError; a customer with nothing stored simply misses every
    requirement that applies (reason `absent`).
    """
    now = now or utcnow()
    key = (tenant, scenario)
    cache = _cache(db)
    cached = cache.get(key)
    names = cached.plan.names if cached is not None else None
    with db.read() as conn:
        rows = store.gap_rows(conn, tenant, scenario, customer, names)
        if not rows:
            raise NotFoundError(f"scenario {scenario} not found in tenant {tenant}")
        stamp = _stamp(rows[0])
        if cached is None or cached.stamp != stamp:
            plan = compile_plan(
                rows[0].agent,
                store.load_requirements(conn, tenant, scenario),
                load_definitions(conn, tenant),
            )
            _remember(cache, key, _Cached(stamp, plan))
            if names is not None and not set(plan.names) <= set(names):
                rows = store.gap_rows(conn, tenant, scenario, customer, plan.names)
        else:
            plan = cached.plan
    missing, satisfied = find_gaps(plan, customer_values(rows, now))
    return Gaps(
        scenario=scenario,
        customer=customer,
        tenant=tenant,
        agent=plan.agent,
        missing=missing,
        satisfied=satisfied,
    )
