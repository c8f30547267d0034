"""`ccv profile list` (SPEC §12): a tenant's customers, keyset-paginated by customer id,
optionally only those holding exact active values (`--where email=ana@example.com`).

A `--where` is answered by the active-value index of migration 0005 (the md5 of the value's
JSONB text on PostgreSQL), then checked against the value itself; a value is matched as the
tenant's definition types it (`--where age=42` finds the integer 42). The output carries
counts, never a value.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Text, and_, bindparam, cast, func, or_, select
from sqlalchemy.dialects.postgresql import JSONB

from ccv.domain.enums import Status, ValueType
from ccv.domain.identifiers import check_field_name
from ccv.domain.models import CustomerList, CustomerSummary
from ccv.domain.timeutil import utcnow
from ccv.domain.validators import coerce_cell
from ccv.errors import UsageError
from ccv.store.database import Database
from ccv.store.definitions import load_definitions
from ccv.store.tables import JsonType, assets, fields, identities, profiles

MAX_LIMIT = 1000


def parse_where(given: Sequence[str]) -> list[tuple[str, str]]:
    pairs = []
    for item in given:
        name, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--where {name[:60]}: expected NAME=VALUE")
        try:
            pairs.append((check_field_name(name.strip(), "--where name"), value))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    return pairs


def _cursor(customer: str) -> str:
    return base64.urlsafe_b64encode(customer.encode()).decode().rstrip("=")


def _after(cursor: str) -> str:
    try:
        padded = (cursor + "=" * (-len(cursor) % 4)).encode()
        return base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        raise UsageError("--cursor is not one that ccv profile list printed") from None


def _holding(name: str, value: Any, postgres: bool, now: datetime) -> Any:
    """The customers holding `value` as the active, unexpired value of `name`."""
    wanted = bindparam(None, value, type_=JsonType)
    conditions = [
        fields.c.tenant == bindparam("tenant"),
        fields.c.name == name,
        fields.c.status == Status.ACTIVE.value,
        fields.c.value == wanted,
        or_(fields.c.expires_at.is_(None), fields.c.expires_at > now),
    ]
    if postgres:  # the indexed digest first, then the value itself
        digest = func.md5(cast(bindparam(None, value, type_=JSONB), Text))
        conditions.insert(3, func.md5(cast(fields.c.value, Text)) == digest)
    return select(fields.c.customer).where(and_(*conditions))


def list_customers(
    db: Database,
    tenant: str,
    *,
    where: Sequence[tuple[str, str]] = (),
    limit: int = 100,
    cursor: str | None = None,
) -> CustomerList:
    if not 1 <= limit <= MAX_LIMIT:
        raise UsageError(f"--limit must be 1-{MAX_LIMIT}")
    now = utcnow()
    with db.read() as conn:
        postgres = conn.dialect.name == "postgresql"
        types = {d.name: d.value_type for d in load_definitions(conn, tenant) if d.enabled}
        query = select(profiles.c.customer, profiles.c.updated_at).where(
            profiles.c.tenant == bindparam("tenant"), profiles.c.merged_into.is_(None)
        )
        for name, text in where:
            value_type = types.get(name, ValueType.STRING)
            try:
                value = coerce_cell(text, value_type)
            except ValueError as exc:
                raise UsageError(f"--where {name}: the value {exc}") from None
            query = query.where(profiles.c.customer.in_(_holding(name, value, postgres, now)))
        if cursor is not None:
            query = query.where(profiles.c.customer > _after(cursor))
        query = query.order_by(profiles.c.customer).limit(limit + 1)
        rows = conn.execute(query, {"tenant": tenant}).all()
        page = rows[:limit]
        customers = [row.customer for row in page]
        counts: dict[str, dict[str, int]] = {c: {} for c in customers}
        if customers:
            for label, table, active in (
                ("fields", fields, True),
                ("assets", assets, True),
                ("identities", identities, False),
            ):
                counted = select(table.c.customer, func.count()).where(
                    table.c.tenant == tenant, table.c.customer.in_(customers)
                )
                if active:
                    counted = counted.where(table.c.status == Status.ACTIVE.value)
                for customer, count in conn.execute(counted.group_by(table.c.customer)):
                    counts[customer][label] = int(count)
    return CustomerList(
        tenant=tenant,
        customers=[
            CustomerSummary(
                customer=row.customer,
                fields=counts[row.customer].get("fields", 0),
                assets=counts[row.customer].get("assets", 0),
                identities=counts[row.customer].get("identities", 0),
                updated_at=row.updated_at,
            )
            for row in page
        ],
        next_cursor=_cursor(page[-1].customer) if len(rows) > limit else None,
    )
