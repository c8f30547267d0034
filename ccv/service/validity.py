"""Whether each active value passes its tenant's current field definitions, stored with it.

A write judges its value as it validates it (`fields.invalid`: true when the name has
definitions and none of the enabled ones accepts the value, null when the name has none), and
`schema apply` judges again the active values of every name whose definitions it changed. So
`ccv report` counts invalid values per field with one aggregate query instead of validating a
tenant's values in Python each time.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from ccv.domain.definitions import FieldRules
from ccv.store.tables import fields

_CHUNK = 2000

_UPDATE = (
    update(fields)
    .where(fields.c.tenant == bindparam("t_tenant"), fields.c.id == bindparam("t_id"))
    .values(invalid=bindparam("t_invalid"))
)


def verdict(rules: FieldRules | None, value: Any, value_type: str | None) -> bool | None:
    """True: fails the definitions; False: passes; None: the name has no definition."""
    if rules is None:
        return None
    if value_type is not None and value_type != rules.value_type.value:
        return True
    error, _ = rules.check(value)
    return error is not None


def restamp(
    conn: Connection,
    tenant: str,
    rules: Mapping[str, FieldRules],
    names: Collection[str] | None = None,
) -> int:
    """Judge again the tenant's active values of `names` (None: every name) by `rules`, in the
    caller's transaction; returns how many verdicts changed. Keyset chunks over the primary
    key, so memory stays flat however many values the tenant holds."""
    if names is not None and not names:
        return 0
    query = (
        select(fields.c.id, fields.c.name, fields.c.value, fields.c.value_type, fields.c.invalid)
        .where(fields.c.tenant == tenant, fields.c.status == "active")
        .order_by(fields.c.id)
        .limit(_CHUNK)
    )
    if names is not None:
        query = query.where(fields.c.name.in_(sorted(names)))
    changed, last = 0, ""
    while True:
        rows = conn.execute(query.where(fields.c.id > last)).all()
        if not rows:
            return changed
        last = rows[-1].id
        updates = []
        for row in rows:
            judged = verdict(rules.get(row.name), row.value, row.value_type)
            if judged != row.invalid:
                updates.append({"t_tenant": tenant, "t_id": row.id, "t_invalid": judged})
        if updates:
            conn.execute(_UPDATE, updates)
            changed += len(updates)
