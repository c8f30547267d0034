"""Which of a scenario's requirements a customer still lacks, and in which order to collect them.

Pure: a scenario's requirements and the tenant's field definitions compile once into a
`GapPlan`; `find_gaps` then judges one customer's current values against it. The database
work (and the cache of plans) lives in ccv/service/gaps.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel
from pydantic import Field as ModelField

from ccv.domain.conditions import Condition, ConditionError, evaluate, parse_condition
from ccv.domain.definitions import FieldRules, compile_rules
from ccv.domain.enums import Fallback, Level, ValueType
from ccv.domain.models import FieldDefinition, ScenarioRequirement

Reason = Literal["absent", "expired", "stale", "invalid", "unverified", "condition_unknown"]


class MissingField(BaseModel):
    """One unmet requirement: what to collect, how strictly, how to ask, and why it is missing."""

    field: str
    level: Level
    fallback: Fallback
    collection_prompt: str | None
    collection_order: int | None
    reason: Reason
    step: str | None = None
    rule: str | None = None
    depends_on: list[str] = ModelField(default_factory=list)
    needs_human_review: bool = False


class Gaps(BaseModel):
    """`profile gaps` (SPEC §5 JSON shape: scenario, customer, missing, satisfied)."""

    scenario: str
    customer: str
    tenant: str
    agent: str
    missing: list[MissingField]
    satisfied: list[str]
    # The customer asked for was merged into `customer` (its gaps are shown).
    merged_into: str | None = None


@dataclass(frozen=True, slots=True)
class CompiledRequirement:
    requirement: ScenarioRequirement
    condition: Condition | None
    prompt: str | None
    needs_verification: bool
    rules: FieldRules | None  # None: no enabled definition left in the tenant to judge by
    freshness: timedelta | None  # a value collected longer ago than this is stale


@dataclass(frozen=True, slots=True)
class GapPlan:
    """A scenario ready to judge customers: requirements already in collection order."""

    agent: str
    requirements: tuple[CompiledRequirement, ...]
    names: tuple[str, ...]  # every field whose value matters: required or named by a condition
    types: Mapping[str, ValueType]


class CurrentValue(NamedTuple):
    value: Any
    verified: bool
    collected_at: datetime


@dataclass(frozen=True, slots=True)
class CustomerValues:
    """A customer's current values (active, not expired), and the names whose newest value ran
    out (expired, with no current value since). A customer with nothing stored has neither."""

    current: Mapping[str, CurrentValue]
    expired: Set[str]


def collection_sequence(requirements: Sequence[ScenarioRequirement]) -> list[int]:
    """Indexes of `requirements` (given in file order) in collection order: `collection_order`
    (lower first, none last), then dependencies before their dependents, then file order."""
    graph: dict[str, set[str]] = {}
    for requirement in requirements:
        graph.setdefault(requirement.field, set()).update(requirement.depends_on)
    depth: dict[str, int] = {}

    def depth_of(name: str, trail: frozenset[str]) -> int:
        known = depth.get(name)
        if known is not None:
            return known
        # A cycle cannot be stored (validation rejects it); the guard keeps this total anyway.
        deps = [d for d in graph.get(name, ()) if d in graph and d not in trail]
        value = 1 + max((depth_of(d, trail | {name}) for d in deps), default=-1)
        depth[name] = value
        return value

    def key(index: int) -> tuple[bool, int, int, int]:
        requirement = requirements[index]
        order = requirement.collection_order
        return (order is None, order or 0, depth_of(requirement.field, frozenset()), index)

    return sorted(range(len(requirements)), key=key)


def _by_preference(
    name: str, agent: str, by_name: Mapping[str, list[FieldDefinition]]
) -> list[FieldDefinition]:
    """The enabled definitions of `name`: the scenario's agent's first, then the others by
    agent."""
    enabled = [d for d in by_name.get(name, ()) if d.enabled]
    return sorted(enabled, key=lambda d: (d.agent != agent, d.agent))


def compile_plan(
    agent: str,
    requirements: Sequence[ScenarioRequirement],
    definitions: Iterable[FieldDefinition],
) -> GapPlan:
    """Compile a scenario (requirements in file order) against its tenant's definitions.

    The prompt is the scenario agent's `collection_prompt`, else another agent's; verification
    is required, and `freshness_seconds` applies, as the scenario agent's definition says (or,
    when that agent does not define the field, as the strictest other definition says: any
    requires verification, the shortest freshness); validity follows the tenant-wide rule (any
    enabled definition accepts the value).
    """
    definitions = list(definitions)
    rules = compile_rules(definitions)
    by_name: dict[str, list[FieldDefinition]] = {}
    for definition in definitions:
        by_name.setdefault(definition.name, []).append(definition)
    # The scenario agent's definitions last, so that theirs win (agents agree on value_type).
    types = {
        d.name: d.value_type
        for d in sorted(definitions, key=lambda d: d.agent == agent)
        if d.enabled
    }
    compiled: list[CompiledRequirement] = []
    names: dict[str, None] = {}
    for index in collection_sequence(requirements):
        requirement = requirements[index]
        preferred = _by_preference(requirement.field, agent, by_name)
        own = [d for d in preferred if d.agent == agent]
        deciding = own or preferred
        freshness = min(
            (d.freshness_seconds for d in deciding if d.freshness_seconds is not None),
            default=None,
        )
        condition = None
        if requirement.when:
            try:
                condition = parse_condition(requirement.when)
            except ConditionError:
                condition = None  # validated when applied; never stored unparsable
        if condition is not None:
            names.update(dict.fromkeys(condition.fields))
        names.update(dict.fromkeys([requirement.field, *requirement.depends_on]))
        compiled.append(
            CompiledRequirement(
                requirement=requirement,
                condition=condition,
                prompt=next((d.collection_prompt for d in preferred if d.collection_prompt), None),
                needs_verification=any(d.required_verification for d in deciding),
                rules=rules.get(requirement.field) if preferred else None,
                freshness=None if freshness is None else timedelta(seconds=freshness),
            )
        )
    return GapPlan(agent=agent, requirements=tuple(compiled), names=tuple(names), types=types)


def find_gaps(
    plan: GapPlan, values: CustomerValues, now: datetime
) -> tuple[list[MissingField], list[str]]:
    """(missing in collection order, satisfied field names) for one customer at `now`.

    One rule for every customer, whether it has values or none at all. Per requirement: a
    `when` that is false leaves it out of both lists; so do `depends_on` fields that are not
    all present (active, unexpired and valid; a stale value is present): it does not apply
    yet. A field that is present, valid, fresh and (where required) verified is satisfied.
    Otherwise it is missing: `condition_unknown` when the `when` cannot be decided, else, for
    a present value, `invalid` before `stale` before `unverified` (collecting it again cures
    the first two, and verifying a stale value would not make it fresh), and for none
    `expired` or `absent`.
    """
    current = values.current
    plain = {name: held.value for name, held in current.items()}
    valid: dict[str, bool] = {}
    rules_of = {c.requirement.field: c.rules for c in plan.requirements}

    def is_valid(name: str) -> bool:
        known = valid.get(name)
        if known is None:
            rules = rules_of.get(name)
            known = rules is None or rules.check(current[name].value)[0] is None
            valid[name] = known
        return known

    missing: list[MissingField] = []
    satisfied: dict[str, None] = {}
    for item in plan.requirements:
        requirement = item.requirement
        truth = True if item.condition is None else evaluate(item.condition, plain, plan.types)
        if truth is False or not all(
            dep in current and is_valid(dep) for dep in requirement.depends_on
        ):
            continue
        name = requirement.field
        held = current.get(name)
        reason: Reason | None
        if held is None:
            reason = "expired" if name in values.expired else "absent"
        elif not is_valid(name):
            reason = "invalid"
        elif item.freshness is not None and held.collected_at < now - item.freshness:
            reason = "stale"
        elif item.needs_verification and not held.verified:
            reason = "unverified"
        else:
            reason = None
        if reason is None:
            satisfied[name] = None
            continue
        missing.append(
            MissingField(
                field=name,
                level=requirement.level,
                fallback=requirement.fallback,
                collection_prompt=item.prompt,
                collection_order=requirement.collection_order,
                reason="condition_unknown" if truth is None else reason,
                step=requirement.step,
                rule=requirement.rule,
                depends_on=list(requirement.depends_on),
                needs_human_review=requirement.needs_human_review,
            )
        )
    return missing, list(satisfied)
