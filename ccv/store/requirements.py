"""Scenario requirements in SQL: replace one scenario's requirements, read them back, and the
single statement behind `profile gaps`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, func, select, text

from ccv.domain.enums import Fallback, Level, Status
from ccv.domain.models import ScenarioRequirement
from ccv.store.tables import field_definitions as defs
from ccv.store.tables import fields, scenarios
from ccv.store.tables import scenario_requirements as reqs

NO_STEP = ""  # the primary key cannot hold NULL: a requirement for the whole scenario
_COMPARED = (
    "agent",
    "rule",
    "level",
    "fallback",
    "when_expr",
    "depends_on",
    "collection_order",
    "needs_human_review",
    "confidence",
    "position",
)


@dataclass(frozen=True)
class ScenarioHeader:
    tenant: str
    scenario: str
    agent: str
    description: str | None
    source_file: str | None
    content_hash: str


@dataclass(frozen=True)
class ReplaceCounts:
    created: int
    updated: int
    unchanged: int
    removed: int
    scenario_created: bool
    changed: bool


def lock_scenarios(conn: Connection, keys: Iterable[tuple[str, str]]) -> None:
    """Serialise concurrent applies of one scenario on PostgreSQL (in sorted order: no
    deadlocks); SQLite write transactions are exclusive already."""
    if conn.dialect.name != "postgresql":
        return
    for tenant, scenario in sorted(set(keys)):
        conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"ccv:scenario:{tenant}:{scenario}"},
        )


def _row(requirement: ScenarioRequirement, position: int) -> dict[str, Any]:
    return {
        "field": requirement.field,
        "step": requirement.step or NO_STEP,
        "agent": requirement.agent,
        "rule": requirement.rule,
        "level": requirement.level.value,
        "fallback": requirement.fallback.value,
        "when_expr": requirement.when,
        "depends_on": list(requirement.depends_on),
        "collection_order": requirement.collection_order,
        "needs_human_review": requirement.needs_human_review,
        "confidence": requirement.confidence,
        "position": position,
    }


def _stored(row: Any) -> dict[str, Any]:
    data = {key: getattr(row, key) for key in _COMPARED}
    data["depends_on"] = list(data["depends_on"] or [])
    return data


def replace_scenario(
    conn: Connection,
    header: ScenarioHeader,
    requirements: Sequence[ScenarioRequirement],
    now: datetime,
) -> ReplaceCounts:
    """Make the stored scenario and its requirements equal the given ones (the file is the
    whole truth). Nothing is written when nothing changed, so re-applying is a no-op."""
    tenant, scenario = header.tenant, header.scenario
    old = conn.execute(
        select(scenarios).where(scenarios.c.tenant == tenant, scenarios.c.scenario == scenario)
    ).first()
    stored = {
        (row.field, row.step): row
        for row in conn.execute(
            select(reqs).where(reqs.c.tenant == tenant, reqs.c.scenario == scenario)
        )
    }
    created = updated = unchanged = moved = 0
    inserts: list[dict[str, Any]] = []
    for position, requirement in enumerate(requirements):
        row = _row(requirement, position)
        key = (row["field"], row["step"])
        previous = stored.pop(key, None)
        if previous is None:
            inserts.append({"tenant": tenant, "scenario": scenario, **row})
            created += 1
            continue
        before = _stored(previous)
        if before == {k: row[k] for k in _COMPARED}:
            unchanged += 1
            continue
        # A requirement that only moved (another was added or removed above it) is rewritten
        # but reported unchanged: the counts are about what the requirements say.
        if all(before[k] == row[k] for k in _COMPARED if k != "position"):
            unchanged += 1
            moved += 1
        else:
            updated += 1
        conn.execute(
            reqs.update()
            .where(
                reqs.c.tenant == tenant,
                reqs.c.scenario == scenario,
                reqs.c.field == key[0],
                reqs.c.step == key[1],
            )
            .values({k: row[k] for k in _COMPARED})
        )
    if inserts:
        conn.execute(reqs.insert(), inserts)
    for field, step in stored:
        conn.execute(
            delete(reqs).where(
                reqs.c.tenant == tenant,
                reqs.c.scenario == scenario,
                reqs.c.field == field,
                reqs.c.step == step,
            )
        )
    values = {
        "agent": header.agent,
        "description": header.description,
        "source_file": header.source_file,
        "content_hash": header.content_hash,
    }
    head_changed = old is None or any(getattr(old, k) != v for k, v in values.items())
    changed = head_changed or bool(created or updated or moved or stored)
    if old is None:
        conn.execute(
            scenarios.insert().values(tenant=tenant, scenario=scenario, updated_at=now, **values)
        )
    elif changed:
        # updated_at moves with any change: `gaps` keys its cached plans on it.
        conn.execute(
            scenarios.update()
            .where(scenarios.c.tenant == tenant, scenarios.c.scenario == scenario)
            .values(updated_at=now, **values)
        )
    return ReplaceCounts(created, updated, unchanged, len(stored), old is None, changed)


def load_requirements(conn: Connection, tenant: str, scenario: str) -> list[ScenarioRequirement]:
    """A scenario's requirements in file order."""
    query = (
        select(reqs)
        .where(reqs.c.tenant == tenant, reqs.c.scenario == scenario)
        .order_by(reqs.c.position, reqs.c.field, reqs.c.step)
    )
    return [
        ScenarioRequirement(
            tenant=row.tenant,
            agent=row.agent,
            scenario=row.scenario,
            step=row.step or None,
            rule=row.rule,
            field=row.field,
            level=Level(row.level),
            fallback=Fallback(row.fallback),
            when=row.when_expr,
            depends_on=list(row.depends_on or []),
            collection_order=row.collection_order,
            needs_human_review=row.needs_human_review,
            confidence=row.confidence,
        )
        for row in conn.execute(query)
    ]


# --- the gaps read -----------------------------------------------------------------------------

# Statuses whose versions can decide a gap: the current value, or a value that ran out.
# Superseded versions never do, orphaned ones only once they are past expires_at.
_GAP_STATUSES = (Status.ACTIVE.value, Status.EXPIRED.value, Status.ORPHANED.value)


def _gap_statement(by_name: bool) -> Any:
    """One row per relevant field version of the customer (or one row of NULLs when there is
    none), each carrying the scenario's agent and what `gaps` keys its cached plan on: the
    scenario's content hash and update time and the tenant's definitions' latest update and
    count. A version's `collected_at` decides whether it is stale. No row at all: the
    scenario does not exist."""
    defs_updated = (
        select(func.max(defs.c.updated_at))
        .where(defs.c.tenant == bindparam("tenant"))
        .scalar_subquery()
    )
    defs_count = select(func.count()).where(defs.c.tenant == bindparam("tenant")).scalar_subquery()
    on = [
        fields.c.tenant == bindparam("tenant"),
        fields.c.customer == bindparam("customer"),
        fields.c.status.in_(_GAP_STATUSES),
    ]
    if by_name:
        on.append(fields.c.name.in_(bindparam("names", expanding=True)))
    return (
        select(
            scenarios.c.agent,
            scenarios.c.content_hash,
            scenarios.c.updated_at,
            defs_updated.label("defs_updated"),
            defs_count.label("defs_count"),
            fields.c.name,
            fields.c.value,
            fields.c.status,
            fields.c.verified,
            fields.c.expires_at,
            fields.c.collected_at,
        )
        .select_from(scenarios.outerjoin(fields, and_(*on)))
        .where(
            scenarios.c.tenant == bindparam("tenant"),
            scenarios.c.scenario == bindparam("scenario"),
        )
    )


# Built once: the hot path then costs SQLAlchemy a cache lookup, not a statement build.
_GAPS_ALL = _gap_statement(by_name=False)
_GAPS_BY_NAME = _gap_statement(by_name=True)


def gap_rows(
    conn: Connection,
    tenant: str,
    scenario: str,
    customer: str,
    names: Sequence[str] | None = None,
) -> list[Any]:
    """The rows of the gaps statement; `names` narrows the field versions read to those."""
    params: dict[str, Any] = {"tenant": tenant, "scenario": scenario, "customer": customer}
    if names is None:
        return list(conn.execute(_GAPS_ALL, params))
    return list(conn.execute(_GAPS_BY_NAME, {**params, "names": list(names)}))


# --- the cached gaps read: the same data in tenant-wide and customer-wide pieces -----------


def scenario_agent(conn: Connection, tenant: str, scenario: str) -> str | None:
    """The scenario's agent, or None when the tenant has no such scenario."""
    query = select(scenarios.c.agent).where(
        scenarios.c.tenant == tenant, scenarios.c.scenario == scenario
    )
    agent = conn.execute(query).scalar()
    return None if agent is None else str(agent)


_CUSTOMER_GAP_ROWS = (
    select(
        fields.c.name,
        fields.c.value,
        fields.c.status,
        fields.c.verified,
        fields.c.expires_at,
        fields.c.collected_at,
    )
    .where(
        fields.c.tenant == bindparam("tenant"),
        fields.c.customer == bindparam("customer"),
        fields.c.status.in_(_GAP_STATUSES),
    )
    .order_by(fields.c.name, fields.c.collected_at, fields.c.id)
)


def customer_gap_rows(conn: Connection, tenant: str, customer: str) -> list[Any]:
    """Every version of the customer that can decide a gap, whatever the scenario: the rows of
    the gaps statement for all names (what the cache keeps per customer), each as (name,
    value, status, verified, expires_at, collected_at)."""
    return list(conn.execute(_CUSTOMER_GAP_ROWS, {"tenant": tenant, "customer": customer}))
