"""Trace capability: an item's chain up to its root and every item derived from it."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, NamedTuple

from ccv import observe
from ccv.domain.enums import SourceItemType, Status
from ccv.domain.identifiers import canonical_item_id
from ccv.domain.lifecycle import MAX_LINEAGE_DEPTH
from ccv.domain.models import Trace, TraceItem, TraceNode
from ccv.domain.timeutil import utcnow
from ccv.errors import NotFoundError
from ccv.service.convert import built
from ccv.service.ids import resolve_item_id
from ccv.store import lineage as store
from ccv.store.database import Database

_EXTERNAL = {t.value for t in SourceItemType if not t.is_vault_item}


_STATUS = {status.value: status for status in Status}
_SOURCE_TYPES = {t.value: t for t in SourceItemType}


_ALL_SET = frozenset(TraceItem.model_fields)


class ChainRow(NamedTuple):
    """A row of `ccv.store.lineage.chain`, in its column order."""

    depth: int
    kind: str
    id: str
    name: str
    status: str
    customer: str
    source_item_id: str | None
    source_item_type: str | None


class DependentRow(NamedTuple):
    """A row of `ccv.store.lineage.dependents`, in its column order."""

    depth: int
    parent: str
    kind: str
    id: str
    name: str
    status: str
    customer: str
    source_item_id: str | None
    source_item_type: str | None


def _item(row: Any) -> TraceItem:
    """A stored item on the path; the status already has TTL applied by the query.

    Every field is given, so pydantic is told so rather than working it out per item (a trace
    builds hundreds)."""
    return built(
        TraceItem,
        {
            "id": row.id,
            "kind": row.kind,
            "name": row.name,
            "status": _STATUS[row.status],
            "customer": row.customer,
            "source_item_id": row.source_item_id,
            "source_item_type": _SOURCE_TYPES.get(row.source_item_type),
        },
        _ALL_SET,
    )


def trace(db: Database, tenant: str, item_id: str) -> Trace:
    """Lineage up to the root and down to every dependent, for an item of any status."""
    now = utcnow()
    rows: list[Any]
    dependent_rows: list[Any]
    canonical = canonical_item_id(item_id)
    found = db.lineage_rows(tenant, canonical, now) if canonical is not None else None
    if found is not None:  # the whole id, through the driver: both walks in one round trip
        rows = [ChainRow._make(row) for row in found[0]]
        dependent_rows = [DependentRow._make(row) for row in found[1]]
        if not rows:
            raise NotFoundError(f"item {item_id} not found in tenant {tenant}")
    else:
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
            nodes.append(built(TraceNode, {"item": _item(row), "dependents": grow(row.id)}))
        return nodes

    result = built(
        Trace,
        {
            "item": _item(rows[0]),
            "chain": chain,
            "dependents": grow(rows[0].id),
            "truncated": truncated,
        },
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
