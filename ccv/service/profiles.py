"""Profile reads: the current view, history and as-of views, with PII masked unless revealed."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from ccv.domain.enums import ItemKind, Status
from ccv.domain.lifecycle import Version, pick_as_of
from ccv.domain.models import Profile
from ccv.domain.timeutil import utcnow
from ccv.errors import NotFoundError
from ccv.service.convert import asset_model, field_model
from ccv.service.writes import audit_row
from ccv.store import items as store
from ccv.store.database import Database


def not_found(tenant: str, customer: str) -> NotFoundError:
    return NotFoundError(f"customer {customer} not found in tenant {tenant}")


def _as_of_rows(rows: list[Any], at: datetime) -> list[Any]:
    by_name: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        by_name[row.name].append(row)
    picked: list[Any] = []
    for versions in by_name.values():
        by_id = {row.id: row for row in versions}
        choice = pick_as_of(
            (Version(row.id, row.collected_at, Status(row.status)) for row in versions),
            {row.id: row.expires_at for row in versions},
            at,
        )
        if choice is not None:
            picked.append(by_id[choice.id])
    return sorted(picked, key=lambda row: row.name)


def read_profile(
    conn: Connection,
    tenant: str,
    customer: str,
    *,
    as_of: datetime | None = None,
    history: bool = False,
    reveal_pii: bool = False,
) -> Profile:
    now = utcnow()
    versions: dict[ItemKind, list[Any]] = {}
    if as_of is not None or history:
        for kind in ItemKind:
            versions[kind] = store.all_versions(conn, kind, tenant, customer)
    if as_of is not None:
        field_rows = _as_of_rows(versions[ItemKind.FIELD], as_of)
        asset_rows = _as_of_rows(versions[ItemKind.ASSET], as_of)
    else:
        field_rows = store.current_items(conn, ItemKind.FIELD, tenant, customer, now)
        asset_rows = store.current_items(conn, ItemKind.ASSET, tenant, customer, now)
    if not field_rows and not asset_rows and not store.customer_exists(conn, tenant, customer):
        raise not_found(tenant, customer)
    asset_ids = [row.id for row in asset_rows]
    if history:
        asset_ids = [row.id for row in versions[ItemKind.ASSET]]
    analysis = store.derived_field_ids(conn, tenant, asset_ids) if asset_ids else {}
    profile = Profile(
        tenant=tenant,
        customer=customer,
        as_of=as_of or now,
        fields={row.name: field_model(row, reveal_pii, now) for row in field_rows},
        assets=[asset_model(row, analysis, now) for row in asset_rows],
    )
    if history:
        field_history: dict[str, list[Any]] = defaultdict(list)
        for row in versions[ItemKind.FIELD]:
            field_history[row.name].append(field_model(row, reveal_pii, now))
        asset_history: dict[str, list[Any]] = defaultdict(list)
        for row in versions[ItemKind.ASSET]:
            asset_history[row.name].append(asset_model(row, analysis, now))
        profile.history = dict(field_history)
        profile.asset_history = dict(asset_history)
    return profile


def get_profile(
    db: Database,
    tenant: str,
    customer: str,
    *,
    as_of: datetime | None = None,
    history: bool = False,
    reveal_pii: bool = False,
    actor: str = "library",
) -> Profile:
    """The profile now (or at `as_of`); a PII reveal is audited in the same transaction."""
    transaction = db.write() if reveal_pii else db.read()
    with transaction as conn:
        profile = read_profile(
            conn, tenant, customer, as_of=as_of, history=history, reveal_pii=reveal_pii
        )
        if reveal_pii:
            revealed = sorted(
                {f.name for f in profile.fields.values() if f.is_pii}
                | {
                    f.name
                    for versions in (profile.history or {}).values()
                    for f in versions
                    if f.is_pii
                }
            )
            store.insert_audit(
                conn,
                [
                    audit_row(
                        tenant,
                        customer,
                        None,
                        None,
                        None,
                        "reveal_pii",
                        actor,
                        utcnow(),
                        details={
                            "fields": revealed,
                            "as_of": profile.as_of.isoformat(),
                            "history": history,
                        },
                    )
                ],
            )
    return profile
