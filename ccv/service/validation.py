"""Profile validation: a customer's active values against one agent's schema."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ccv import observe
from ccv.domain.definitions import compile_rules
from ccv.domain.enums import ItemKind
from ccv.domain.models import FieldCheck, FieldDefinition, ValidationReport
from ccv.domain.timeutil import utcnow
from ccv.domain.validators import failure_code
from ccv.errors import NotFoundError
from ccv.service.profiles import live_rows, not_found, read_current
from ccv.store import identities
from ccv.store import items as store
from ccv.store.database import Database
from ccv.store.definitions import load_definitions

if TYPE_CHECKING:
    from ccv.store.cache import RedisCache

# (name, value, verified) of each active, unexpired field.
Value = tuple[str, Any, bool]


def _from_database(
    db: Database, tenant: str, customer: str, agent: str
) -> tuple[list[FieldDefinition], list[Value] | None]:
    """The agent's definitions and the customer's values (None: the customer does not exist)."""
    with db.read() as conn:
        definitions = load_definitions(conn, tenant, agent)
        if not definitions:
            return definitions, []
        rows = store.current_items(conn, ItemKind.FIELD, tenant, customer, utcnow())
        if not rows and not store.customer_exists(conn, tenant, customer):
            return definitions, None
    return definitions, [(row.name, row.value, bool(row.verified)) for row in rows]


def _from_cache(
    db: Database, cache: RedisCache, tenant: str, customer: str, agent: str
) -> tuple[list[FieldDefinition], list[Value] | None] | None:
    """The same from Redis (the tenant's definitions and the customer's current view), filling
    what is missing; None when Redis cannot be used."""
    defs_entry = cache.keys.definitions(tenant)
    profile_entry = cache.keys.profile(tenant, customer)
    snapshot = cache.read(tenant, [defs_entry, profile_entry])
    if snapshot is None:
        return None
    now = utcnow()
    stored_defs: list[dict[str, Any]] | None = snapshot.get(defs_entry)
    current: dict[str, Any] | None = snapshot.get(profile_entry)
    if stored_defs is None:
        with db.read() as conn:
            stored_defs = [d.model_dump(mode="json") for d in load_definitions(conn, tenant)]
        cache.fill(snapshot, defs_entry, stored_defs)
    if current is None:
        current = read_current(db, tenant, customer, now)
        cache.fill(snapshot, profile_entry, current)
    definitions = [FieldDefinition.model_validate(d) for d in stored_defs if d["agent"] == agent]
    rows = live_rows(current["fields"], now)
    if not rows and not current["exists"]:
        return definitions, None
    return definitions, [(row["name"], row["value"], bool(row["verified"])) for row in rows]


def validate_profile(
    db: Database, tenant: str, customer: str, agent: str, *, cache: RedisCache | None = None
) -> ValidationReport:
    """Check every active, unexpired value against the agent's definitions."""
    asked = customer
    for _ in range(identities.MAX_CHAIN):
        loaded = _from_cache(db, cache, tenant, customer, agent) if cache is not None else None
        definitions, values = loaded or _from_database(db, tenant, customer, agent)
        if not definitions:
            raise NotFoundError(f"agent {agent} has no field definitions in tenant {tenant}")
        if values is not None:
            report = _report(tenant, customer, agent, definitions, values)
            report.merged_into = customer if customer != asked else None
            return report
        with db.read() as conn:  # nothing stored: an alias of a merged customer?
            target = identities.merged_into(conn, tenant, customer)
        if target is None:
            break
        customer = target
    raise not_found(tenant, asked)


def _failed(tenant: str, agent: str, field: str, code: str) -> None:
    observe.validation_failure(field, code)
    observe.event("validation_failure", tenant, agent=agent, field=field, code=code)


def _report(
    tenant: str,
    customer: str,
    agent: str,
    definitions: Sequence[FieldDefinition],
    values: Sequence[Value],
) -> ValidationReport:
    rules = compile_rules(definitions)
    results: list[FieldCheck] = []
    for name, value, verified in values:
        rule = rules.get(name)
        if rule is None:
            results.append(
                FieldCheck(field=name, status="undefined", message=f"not defined by agent {agent}")
            )
            continue
        error, _ = rule.check(value)
        if error is not None:
            _failed(tenant, agent, name, failure_code(error))
            results.append(FieldCheck(field=name, status="invalid", message=f"{name} {error}"))
        elif rule.definitions[0].required_verification and not verified:
            _failed(tenant, agent, name, "unverified")
            results.append(
                FieldCheck(field=name, status="invalid", message=f"{name} must be verified")
            )
        else:
            results.append(FieldCheck(field=name, status="valid"))
    return ValidationReport(
        tenant=tenant,
        customer=customer,
        agent=agent,
        valid=all(r.status != "invalid" for r in results),
        checked=len(results),
        results=results,
    )
