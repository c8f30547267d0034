"""Profile validation: a customer's active values against one agent's schema."""

from __future__ import annotations

from ccv.domain.definitions import compile_rules
from ccv.domain.enums import ItemKind
from ccv.domain.models import FieldCheck, ValidationReport
from ccv.domain.timeutil import utcnow
from ccv.errors import NotFoundError
from ccv.service.profiles import not_found
from ccv.store import items as store
from ccv.store.database import Database
from ccv.store.definitions import load_definitions


def validate_profile(db: Database, tenant: str, customer: str, agent: str) -> ValidationReport:
    """Check every active, unexpired value against the agent's definitions."""
    with db.read() as conn:
        definitions = load_definitions(conn, tenant, agent)
        if not definitions:
            raise NotFoundError(f"agent {agent} has no field definitions in tenant {tenant}")
        rows = store.current_items(conn, ItemKind.FIELD, tenant, customer, utcnow())
        if not rows and not store.customer_exists(conn, tenant, customer):
            raise not_found(tenant, customer)
    rules = compile_rules(definitions)
    results: list[FieldCheck] = []
    for row in rows:
        rule = rules.get(row.name)
        if rule is None:
            results.append(
                FieldCheck(
                    field=row.name, status="undefined", message=f"not defined by agent {agent}"
                )
            )
            continue
        error, _ = rule.check(row.value)
        if error is not None:
            results.append(
                FieldCheck(field=row.name, status="invalid", message=f"{row.name} {error}")
            )
        elif rule.definitions[0].required_verification and not row.verified:
            results.append(
                FieldCheck(field=row.name, status="invalid", message=f"{row.name} must be verified")
            )
        else:
            results.append(FieldCheck(field=row.name, status="valid"))
    return ValidationReport(
        tenant=tenant,
        customer=customer,
        agent=agent,
        valid=all(r.status != "invalid" for r in results),
        checked=len(results),
        results=results,
    )
