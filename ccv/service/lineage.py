"""Trace capability: an item's chain up to its root and every item derived from it."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ccv import observe
from ccv.domain.enums import SourceItemType, Status
from ccv.domain.lifecycle import MAX_LINEAGE_DEPTH
from ccv.domain.models import Trace, TraceItem, TraceNode
from ccv.domain.timeutil import utcnow
from ccv.errors import NotFoundError
from ccv.service.ids import resolve_item_id
from ccv.store import lineage as store
from ccv.store.database import Database

_EXTERNAL = {t.value for t in SourceItemType if not t.is_vault_item}


_STATUS = {status.value: status for status in Status}
_SOURCE_TYPES = {t.value: t for t in SourceItemType}


_ALL_SET = frozenset(TraceItem.model_fields)


def _item(row: Any) -> TraceItem:
    """A stored item on the path; the status already has TTL applied by the query.

    Every field is given, so pydantic is told so rather than working it out per item (a trace
    builds hundreds)."""
    return TraceItem.model_construct(
        _fields_set=set(_ALL_SET),
        id=row.id,
        kind=row.kind,
        name=row.name,
        status=_STATUS[row.status],
        customer=row.customer,
        source_item_id=row.source_item_id,
        source_item_type=_SOURCE_TYPES.get(row.source_item_type),
    )


def trace(db: Database, tenant: str, item_id: str) -> Trace:
    """Lineage up to the root and down to every dependent, for an item of any status."""
    now = utcnow()
    with db.read() as conn:
        canonical = resolve_item_id(conn, tenant, item_id)
        rows = store.chain(conn, tenant, canonical, now) if canonical else []
        if not rows:
            raise NotFoundError(f"item {item_id} not found in tenant {tenant}")
        dependent_rows = store.dependents(conn, tenant, rows[0].id, now)
    chain = [_item(row) for row in rows[1:]]
    last = rows[-1]
    truncated = len(rows) > MAX_LINEAGE_DEPTH
    if last.source_item_id is not None and not truncated:
        if last.source_item_type in _EXTERNAL:
            chain.append(
                TraceItem(
                    id=last.source_item_id,
                    kind="external",
                    name=last.source_item_type,
                    status=None,
                )
            )
        else:  # a vault reference that is not (or no longer) in the vault
            chain.append(TraceItem(id=last.source_item_id, kind="missing", name=None, status=None))
    children: dict[str, list[Any]] = defaultdict(list)
    for row in dependent_rows:
        children[row.parent].append(row)
    seen: set[str] = {rows[0].id}

    def grow(parent: str) -> list[TraceNode]:
        nodes = []
        for row in children.get(parent, []):
            if row.id in seen:  # cycles are refused on write; stay finite regardless
                continue
            seen.add(row.id)
            nodes.append(TraceNode(item=_item(row), dependents=grow(row.id)))
        return nodes

    result = Trace(
        item=_item(rows[0]), chain=chain, dependents=grow(rows[0].id), truncated=truncated
    )
    # Depth as `ccv report` counts it: the vault items above this one (a missing one included).
    depth = sum(1 for link in chain if link.kind != "external")
    observe.lineage_depth(depth)
    observe.event(
        "lineage_traversal",
        tenant,
        item_id=result.item.id,
        kind=result.item.kind,
        depth=depth,
        dependents=len(seen) - 1,
        truncated=truncated,
    )
    return result
