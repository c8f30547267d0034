"""Gaps capability: which of a scenario's requirements a customer still lacks (`profile gaps`).

One statement per call in the steady state (through the driver itself, `ccv.store.reads`, once
the scenario's plan is known), whatever the customer holds (a customer with
nothing stored is judged by the same rules, so no existence check is needed): it reads the
customer's relevant field versions together with the scenario's and the tenant schema's
version stamps. The compiled scenario (requirements, prompts, validators, freshness) is
cached per Database and used only while those stamps are unchanged, so a cached plan is
never out of date: any `requirements apply` or `schema apply` that changes something moves a
stamp, and the next call recompiles.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple
from weakref import WeakKeyDictionary

from sqlalchemy.exc import DBAPIError

from ccv.domain.enums import Status
from ccv.domain.gaps import CurrentValue, CustomerValues, GapPlan, Gaps, compile_plan, find_gaps
from ccv.domain.lifecycle import status_at
from ccv.domain.models import FieldDefinition, ScenarioRequirement
from ccv.domain.timeutil import utcnow
from ccv.errors import NotFoundError
from ccv.store import identities
from ccv.store import requirements as store
from ccv.store.database import Database
from ccv.store.definitions import load_definitions
from ccv.store.engine import backend_error

if TYPE_CHECKING:
    from ccv.store.cache import RedisCache

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
    current: dict[str, CurrentValue] = {}
    expired: set[str] = set()
    for row in rows:
        if row.name is None:  # the customer has no relevant version at all
            continue
        status = status_at(Status(row.status), row.expires_at, now)
        if status is Status.ACTIVE:
            current[row.name] = CurrentValue(row.value, bool(row.verified), row.collected_at)
        elif status is Status.EXPIRED:
            expired.add(row.name)
    return CustomerValues(current=current, expired=expired)


class _GapRow(NamedTuple):
    name: str
    value: Any
    status: str
    verified: bool
    expires_at: datetime | None
    collected_at: datetime


def _cached_plan(
    db: Database, cache: RedisCache, tenant: str, scenario: str
) -> tuple[Hashable, GapPlan] | None:
    """The scenario compiled from its cached requirements and the tenant's cached definitions
    (read from the database and cached when missing); None when Redis cannot be used."""
    scenario_entry = cache.keys.scenario(tenant, scenario)
    defs_entry = cache.keys.definitions(tenant)
    snapshot = cache.read(tenant, [scenario_entry, defs_entry])
    if snapshot is None:
        return None
    stored: dict[str, Any] | None = snapshot.get(scenario_entry)
    stored_defs: list[dict[str, Any]] | None = snapshot.get(defs_entry)
    if stored is None or stored_defs is None:
        with db.read() as conn:
            if stored is None:
                agent = store.scenario_agent(conn, tenant, scenario)
                requirements = store.load_requirements(conn, tenant, scenario) if agent else []
                stored = {
                    "agent": agent,
                    "requirements": [r.model_dump(mode="json") for r in requirements],
                }
                cache.fill(snapshot, scenario_entry, stored)
            if stored_defs is None:
                stored_defs = [d.model_dump(mode="json") for d in load_definitions(conn, tenant)]
                cache.fill(snapshot, defs_entry, stored_defs)
    if stored["agent"] is None:
        raise NotFoundError(f"scenario {scenario} not found in tenant {tenant}")
    plan = compile_plan(
        stored["agent"],
        [ScenarioRequirement.model_validate(r) for r in stored["requirements"]],
        [FieldDefinition.model_validate(d) for d in stored_defs],
    )
    return _redis_stamp(cache, snapshot.incarnation, snapshot.gens, tenant), plan


def _redis_stamp(
    cache: RedisCache, incarnation: str, gens: dict[str, str], tenant: str
) -> Hashable:
    """A plan compiled from Redis is current while the tenant's epoch and requirements
    generation (and the Redis server) are unchanged."""
    epoch, requirements = cache.keys.epoch(tenant), cache.keys.requirements_gen(tenant)
    return ("redis", cache.keys.prefix, incarnation, gens.get(epoch), gens.get(requirements))


def _cached_gaps(
    db: Database, cache: RedisCache, tenant: str, customer: str, scenario: str, now: datetime
) -> tuple[GapPlan, CustomerValues] | None:
    rows_entry = cache.keys.gap_rows(tenant, customer)
    extra = (cache.keys.epoch(tenant), cache.keys.requirements_gen(tenant))
    snapshot = cache.read(tenant, [rows_entry], extra_gens=extra)
    if snapshot is None:
        return None
    key = (tenant, scenario)
    plans = _cache(db)
    cached = plans.get(key)
    if cached is not None and cached.stamp == _redis_stamp(
        cache, snapshot.incarnation, snapshot.gens, tenant
    ):
        plan = cached.plan
    else:
        compiled = _cached_plan(db, cache, tenant, scenario)
        if compiled is None:
            return None
        _remember(plans, key, _Cached(*compiled))
        plan = compiled[1]
    stored: list[list[Any]] | None = snapshot.get(rows_entry)
    if stored is None:
        with db.read() as conn:
            stored = [list(row) for row in store.customer_gap_rows(conn, tenant, customer)]
        cache.fill(snapshot, rows_entry, stored)
    rows = [
        _GapRow(
            name,
            value,
            status,
            bool(verified),
            datetime.fromisoformat(expires) if isinstance(expires, str) else expires,
            datetime.fromisoformat(collected) if isinstance(collected, str) else collected,
        )
        for name, value, status, verified, expires, collected in stored
    ]
    return plan, customer_values(rows, now)


def find_customer_gaps(
    db: Database,
    tenant: str,
    customer: str,
    scenario: str,
    *,
    now: datetime | None = None,
    cache: RedisCache | None = None,
) -> Gaps:
    """The customer's unmet requirements of `scenario`, in collection order.

    An unknown scenario is NotFoundError; a customer with nothing stored is no error: it is
    judged by the same rules as any other. With a cache, the compiled scenario is checked
    against Redis generations and the customer's versions come from Redis (one round trip).
    """
    now = now or utcnow()
    asked = customer
    for _ in range(identities.MAX_CHAIN):
        gaps, held = _customer_gaps(db, tenant, customer, scenario, now, cache)
        if held:
            break
        # Nothing relevant stored: the customer may be an alias of a merged one.
        with db.read() as conn:
            target = identities.merged_into(conn, tenant, customer)
        if target is None:
            break
        customer = target
    if customer != asked:
        gaps.merged_into = customer
    return gaps


def _customer_gaps(
    db: Database,
    tenant: str,
    customer: str,
    scenario: str,
    now: datetime,
    cache: RedisCache | None,
) -> tuple[Gaps, bool]:
    """The gaps, and whether the customer holds any version that decides one."""
    if cache is not None:
        found = _cached_gaps(db, cache, tenant, customer, scenario, now)
        if found is not None:
            plan, values = found
            missing, satisfied = find_gaps(plan, values, now)
            gaps = Gaps(
                scenario=scenario,
                customer=customer,
                tenant=tenant,
                agent=plan.agent,
                missing=missing,
                satisfied=satisfied,
            )
            return gaps, bool(values.current or values.expired)
    key = (tenant, scenario)
    plans = _cache(db)
    cached = plans.get(key)
    names = cached.plan.names if cached is not None else None
    fast = db.fast
    if fast is not None and cached is not None:  # the common case: the plan is known
        try:
            rows: list[Any] = fast.gap_rows(tenant, scenario, customer, names)
        except DBAPIError as exc:
            raise backend_error(exc, db.url) from exc
        if rows and cached.stamp == _stamp(rows[0]):
            return _judged(tenant, customer, scenario, cached.plan, rows, now)
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
            _remember(plans, key, _Cached(stamp, plan))
            if names is not None and not set(plan.names) <= set(names):
                rows = store.gap_rows(conn, tenant, scenario, customer, plan.names)
        else:
            plan = cached.plan
    return _judged(tenant, customer, scenario, plan, rows, now)


def _judged(
    tenant: str,
    customer: str,
    scenario: str,
    plan: GapPlan,
    rows: Sequence[Any],
    now: datetime,
) -> tuple[Gaps, bool]:
    values = customer_values(rows, now)
    missing, satisfied = find_gaps(plan, values, now)
    gaps = Gaps(
        scenario=scenario,
        customer=customer,
        tenant=tenant,
        agent=plan.agent,
        missing=missing,
        satisfied=satisfied,
    )
    return gaps, bool(values.current or values.expired)
