"""Deletion and right-to-erasure. Rows go; value-free audit events stay."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from ccv import observe
from ccv.domain.enums import ItemKind, Status
from ccv.domain.models import DeleteResult, EraseResult
from ccv.domain.timeutil import utcnow
from ccv.errors import NotFoundError, RefusedError
from ccv.service.ids import resolve_item_id
from ccv.service.profiles import not_found
from ccv.service.writes import audit_row
from ccv.store import identities, outbox, sweeps
from ccv.store import items as store
from ccv.store.database import Database

if TYPE_CHECKING:
    from ccv.store.cache import RedisCache


def _orphan(
    conn: Any,
    tenant: str,
    dependents: list[tuple[ItemKind, Any]],
    now: Any,
    actor: str,
    reason: str,
) -> list[str]:
    grouped: dict[ItemKind, list[Any]] = defaultdict(list)
    for kind, row in dependents:
        grouped[kind].append(row)
    for kind, rows in grouped.items():
        sweeps.mark_orphaned(conn, kind, tenant, rows, now, actor, reason=reason)
    return sorted(row.id for _, row in dependents)


def delete_item(
    db: Database,
    tenant: str,
    item_id: str,
    *,
    force: bool = False,
    actor: str = "library",
    cache: RedisCache | None = None,
) -> DeleteResult:
    """Delete one version; refused while it has active dependents unless `force` orphans them."""
    now = utcnow()
    with db.write() as conn:
        canonical = resolve_item_id(conn, tenant, item_id)
        found = None if canonical is None else store.get_item(conn, tenant, canonical)
        if canonical is None or found is None:
            raise NotFoundError(f"item {item_id} not found in tenant {tenant}")
        kind, row = found
        locked = store.upsert_and_lock_profiles(conn, tenant, [row.customer], now)
        if locked.aliases:  # merged meanwhile: read the item again, as it is now
            found = store.get_item(conn, tenant, canonical)
            if found is None:
                raise NotFoundError(f"item {item_id} not found in tenant {tenant}")
            kind, row = found
        dependents = store.direct_dependents(conn, tenant, [row.id], Status.ACTIVE)
        if dependents and not force:
            first = dependents[0][1]
            raise RefusedError(
                f"item {row.id} has {len(dependents)} active dependent(s) (first: {first.id}, "
                f"{first.name}); pass --force to delete it and orphan them"
            )
        orphaned = _orphan(conn, tenant, dependents, now, actor, f"source {row.id} deleted")
        # Whose reads change: the owner, the orphaned dependents' customers, and the owner of
        # the asset a deleted field derived from (its analysis_field_ids list that field).
        touched = {row.customer} | {dependent.customer for _, dependent in dependents}
        if kind is ItemKind.FIELD:
            touched |= store.source_asset_owners(conn, tenant, ids=[row.id])
        store.delete_items(conn, kind, tenant, [row.id])
        store.insert_audit(
            conn,
            [
                audit_row(
                    tenant,
                    row.customer,
                    row.id,
                    kind,
                    row.name,
                    "delete",
                    actor,
                    now,
                    from_status=row.status,
                    details={"forced": force},
                )
            ],
        )
        owed = outbox.record(conn, tenant, customers=touched, now=now)
    observe.transitions(kind.value, row.status, "deleted")
    observe.transitions("item", "active", Status.ORPHANED.value, len(orphaned))
    observe.event(
        "delete",
        tenant,
        item_id=row.id,
        kind=kind.value,
        from_status=row.status,
        forced=force,
        orphaned=len(orphaned),
    )
    if cache is not None:
        cache.deliver(owed)
    return DeleteResult(id=row.id, kind=kind, deleted=True, orphaned=orphaned)


def erase_customer(
    db: Database,
    tenant: str,
    customer: str,
    *,
    actor: str = "library",
    cache: RedisCache | None = None,
) -> EraseResult:
    """Right to erasure: every value of the customer goes; derived items elsewhere are orphaned."""
    now = utcnow()
    asked = customer
    with db.write() as conn:
        locked = store.upsert_and_lock_profiles(conn, tenant, [customer], now)
        customer = locked.customer(customer)  # an alias erases the customer it was merged into
        rows = {kind: store.customer_items(conn, kind, tenant, customer) for kind in ItemKind}
        linked = identities.of_customer(conn, tenant, customer)
        if not any(rows.values()) and not linked:
            if customer == asked:
                store.delete_profile(conn, tenant, customer)
            raise not_found(tenant, asked)
        ids = {row.id for kind_rows in rows.values() for row in kind_rows}
        outside = [
            (kind, row)
            for kind, row in store.direct_dependents(conn, tenant, sorted(ids), Status.ACTIVE)
            if row.customer != customer
        ]
        orphaned = _orphan(conn, tenant, outside, now, actor, "source erased")
        touched = {customer} | {row.customer for _, row in outside}
        touched |= store.source_asset_owners(conn, tenant, customer=customer)
        events: list[dict[str, Any]] = []
        for kind, kind_rows in rows.items():
            store.delete_items(conn, kind, tenant, [row.id for row in kind_rows])
            events.extend(
                audit_row(
                    tenant,
                    customer,
                    row.id,
                    kind,
                    row.name,
                    "erase",
                    actor,
                    now,
                    from_status=row.status,
                )
                for row in kind_rows
            )
        identities.delete_of_customer(conn, tenant, customer)
        events.extend(
            audit_row(tenant, customer, None, "identity", row.channel, "erase", actor, now)
            for row in linked
        )
        # The customer's other ids go too: the aliases of the customers merged into it.
        aliases = identities.delete_aliases_of(conn, tenant, customer)
        touched |= set(aliases)
        store.insert_audit(conn, events)
        store.delete_profile(conn, tenant, customer)
        # In the erase's own transaction: erased values are never served from Redis again,
        # whichever process reads next and whether or not this one reaches Redis.
        owed = outbox.record(conn, tenant, customers=touched, now=now)
    for kind, kind_rows in rows.items():
        observe.transitions(kind.value, "any", "erased", len(kind_rows))
    observe.transitions("item", "active", Status.ORPHANED.value, len(orphaned))
    observe.event(
        "erase",
        tenant,
        fields=len(rows[ItemKind.FIELD]),
        assets=len(rows[ItemKind.ASSET]),
        identities=len(linked),
        aliases=len(aliases),
        orphaned=len(orphaned),
    )
    if cache is not None:
        cache.deliver(owed)
    return EraseResult(
        tenant=tenant,
        customer=customer,
        fields=len(rows[ItemKind.FIELD]),
        assets=len(rows[ItemKind.ASSET]),
        identities=len(linked),
        aliases=aliases,
        orphaned=orphaned,
    )
