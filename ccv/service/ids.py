"""Item ids as operators type them (SPEC §12): the full UUID, or a unique prefix of at least
8 hex digits of it (`bef7e268`, `bef7e268-ffe9`)."""

from __future__ import annotations

from sqlalchemy import Connection, select

from ccv.domain.identifiers import MIN_ID_PREFIX, canonical_item_id, item_id_prefix, looks_short
from ccv.errors import UsageError
from ccv.store import items as store
from ccv.store.tables import audit_events


def _one(value: str, tenant: str, found: list[tuple[str, str]]) -> str | None:
    if not found:
        return None
    if len(found) > 1:
        shown = ", ".join(f"{item_id} ({what})" for item_id, what in found[: store.MAX_CANDIDATES])
        more = " and more" if len(found) > store.MAX_CANDIDATES else ""
        raise UsageError(
            f"item id {value} is ambiguous in tenant {tenant}: it starts {shown}{more}; "
            "give more of it"
        )
    return found[0][0]


def resolve_item_id(conn: Connection, tenant: str, value: str) -> str | None:
    """The stored id `value` names among the tenant's fields and assets: None when it names
    none; UsageError (listing the candidates) when a prefix names several."""
    canonical = canonical_item_id(value)
    if canonical is not None:
        return canonical
    prefix = item_id_prefix(value)
    if prefix is None:
        if looks_short(value):
            raise UsageError(
                f"item id {value} is too short: give at least {MIN_ID_PREFIX} of its hex digits"
            )
        return None
    found = store.ids_with_prefix(conn, tenant, prefix)
    return _one(value, tenant, [(item_id, f"{kind.value} {name}") for item_id, kind, name in found])


def resolve_audited_id(conn: Connection, tenant: str, value: str) -> str:
    """An item id for `ccv audit --item`: as `resolve_item_id`, then among the ids the audit
    trail names (a deleted or erased item is only there); the value as given otherwise."""
    found = resolve_item_id(conn, tenant, value)
    if found is not None:
        return found
    prefix = item_id_prefix(value)
    if prefix is None:
        return value
    query = (
        select(audit_events.c.item_id)
        .distinct()
        .where(audit_events.c.tenant == tenant, audit_events.c.item_id.like(prefix + "%"))
        .order_by(audit_events.c.item_id)
        .limit(store.MAX_CANDIDATES + 1)
    )
    ids = [str(item_id) for item_id in conn.scalars(query)]
    return _one(value, tenant, [(item_id, "audited") for item_id in ids]) or value
