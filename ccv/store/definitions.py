"""Field definitions in SQL: load a tenant's definitions, replace one agent's."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from ccv.domain.definitions import FieldRules, compile_rules
from ccv.domain.models import FieldDefinition
from ccv.domain.schema_file import DEFINITION_KEYS
from ccv.store.tables import field_definitions as defs

# The attributes a schema file sets, stored one column each (the key columns aside).
_COLUMNS = tuple(sorted(DEFINITION_KEYS - {"name"}))


def _to_model(row: Any) -> FieldDefinition:
    return FieldDefinition.model_validate(
        {key: getattr(row, key) for key in ("id", "tenant", "agent", "name", "source_file")}
        | {key: getattr(row, key) for key in _COLUMNS}
    )


def load_definitions(
    conn: Connection, tenant: str, agent: str | None = None
) -> list[FieldDefinition]:
    query = select(defs).where(defs.c.tenant == tenant)
    if agent is not None:
        query = query.where(defs.c.agent == agent)
    return [_to_model(row) for row in conn.execute(query.order_by(defs.c.agent, defs.c.name))]


def tenant_agents(conn: Connection, tenant: str) -> list[str]:
    query = select(defs.c.agent).where(defs.c.tenant == tenant).distinct().order_by(defs.c.agent)
    return list(conn.scalars(query))


def _payload(definition: FieldDefinition) -> dict[str, Any]:
    dumped = definition.model_dump(mode="json")
    return {key: dumped[key] for key in _COLUMNS} | {"source_file": definition.source_file}


def replace_agent(
    conn: Connection, tenant: str, agent: str, definitions: Sequence[FieldDefinition], now: datetime
) -> tuple[int, int, int, int, set[str]]:
    """Make the stored definitions of one agent equal the given ones.

    Returns (created, updated, unchanged, disabled, names created, updated or disabled). Ids
    are kept across updates.
    """
    stored = {d.name: d for d in load_definitions(conn, tenant, agent)}
    created = updated = unchanged = 0
    changed: set[str] = set()
    for definition in definitions:
        payload = _payload(definition)
        old = stored.pop(definition.name, None)
        if old is None:
            conn.execute(
                defs.insert().values(
                    tenant=tenant,
                    agent=agent,
                    name=definition.name,
                    id=str(uuid.uuid4()),
                    updated_at=now,
                    **payload,
                )
            )
            created += 1
            changed.add(definition.name)
        elif {k: v for k, v in _payload(old).items() if k != "source_file"} == {
            k: v for k, v in payload.items() if k != "source_file"
        }:
            unchanged += 1
        else:
            conn.execute(
                defs.update()
                .where(defs.c.tenant == tenant, defs.c.agent == agent, defs.c.name == old.name)
                .values(updated_at=now, **payload)
            )
            updated += 1
            changed.add(definition.name)
    # A definition the file no longer has is disabled, not deleted: its PII flag keeps masking
    # the values already stored, and its id stays valid for their field_definition_id.
    retired = [name for name, old in stored.items() if old.enabled]
    if retired:
        conn.execute(
            defs.update()
            .where(defs.c.tenant == tenant, defs.c.agent == agent, defs.c.name.in_(retired))
            .values(enabled=False, updated_at=now)
        )
    return created, updated, unchanged, len(retired), changed | set(retired)


def fingerprint(conn: Connection, tenant: str) -> tuple[int, Any]:
    """Changes whenever the tenant's definitions do (a row added, removed or updated)."""
    row = conn.execute(
        select(func.count(), func.max(defs.c.updated_at)).where(defs.c.tenant == tenant)
    ).one()
    return int(row[0]), row[1]


_RULES: dict[tuple[str, str], tuple[tuple[int, Any], dict[str, FieldRules]]] = {}


def tenant_rules(
    conn: Connection, tenant: str, known: tuple[int, Any] | None = None
) -> dict[str, FieldRules]:
    """The tenant's compiled field rules, recompiled only when its definitions changed.

    The fingerprint (queried here unless a caller fetched it in another statement of the same
    transaction) keeps every process exact without loading the definitions each time.
    """
    key = (str(conn.engine.url), tenant)
    current = known if known is not None else fingerprint(conn, tenant)
    cached = _RULES.get(key)
    if cached is not None and cached[0] == current:
        return cached[1]
    rules = compile_rules(load_definitions(conn, tenant))
    if len(_RULES) > 1024:
        _RULES.clear()
    _RULES[key] = (current, rules)
    return rules
