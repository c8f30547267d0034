"""Profile reads: the current view, history and as-of views, with PII masked unless revealed."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from ccv.domain.enums import ItemKind, Status
from ccv.domain.identity import is_pii
from ccv.domain.lifecycle import Version, pick_as_of
from ccv.domain.models import Profile
from ccv.domain.timeutil import utcnow
from ccv.errors import NotFoundError
from ccv.service.convert import (
    asset_model,
    built,
    current_asset,
    current_field,
    current_identity,
    field_model,
    identity_model,
)
from ccv.service.writes import audit_reveal
from ccv.store import identities
from ccv.store import items as store
from ccv.store.database import Database

if TYPE_CHECKING:
    from ccv.store.cache import RedisCache, Snapshot


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
    """The profile of `customer`, or of the customer it was merged into (`merged_into`)."""
    asked = customer
    for _ in range(identities.MAX_CHAIN):
        profile = _read_profile(conn, tenant, customer, as_of, history, reveal_pii)
        if isinstance(profile, Profile):
            if customer != asked:
                profile.merged_into = customer
            return profile
        customer = profile
    raise not_found(tenant, asked)


def _read_profile(
    conn: Connection,
    tenant: str,
    customer: str,
    as_of: datetime | None,
    history: bool,
    reveal_pii: bool,
) -> Profile | str:
    """The profile, or the customer to read instead (this one is an alias)."""
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
    identity_rows = identities.of_customer(conn, tenant, customer)
    if not field_rows and not asset_rows and not identity_rows:
        exists, target = identities.presence(conn, tenant, customer)
        if not exists:
            if target is not None:
                return target
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
        identities=[identity_model(row, reveal_pii) for row in identity_rows],
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


# --- the current view: the hot read --------------------------------------------------------


def _presence(db: Database, tenant: str, customer: str) -> tuple[bool, str | None]:
    with db.read() as conn:
        return identities.presence(conn, tenant, customer)


def _current_profile(db: Database, tenant: str, customer: str, now: datetime) -> Profile | str:
    """The current view (PII masked) through the driver (`ccv.store.reads`), or the customer
    to read instead (this one is an alias). Raises LookupError where that path cannot read."""
    rows = db.current_rows(tenant, customer, now)
    if rows is None:
        raise LookupError("no driver path")
    if not rows.fields and not rows.assets and not rows.identities:
        exists, target = _presence(db, tenant, customer)
        if not exists:
            if target is not None:
                return target
            raise not_found(tenant, customer)
    return _profile(tenant, customer, now, rows.fields, rows.assets, rows.identities, rows.analysis)


def _profile(
    tenant: str,
    customer: str,
    now: datetime,
    fields: list[dict[str, Any]],
    assets: list[dict[str, Any]],
    identity_rows: list[dict[str, Any]],
    analysis: dict[str, list[str]],
) -> Profile:
    return built(
        Profile,
        {
            "tenant": tenant,
            "customer": customer,
            "merged_into": None,
            "as_of": now,
            "fields": {row["name"]: current_field(row, tenant) for row in fields},
            "assets": [current_asset(row, tenant, analysis) for row in assets],
            "identities": [current_identity(row) for row in identity_rows],
            "history": None,
            "asset_history": None,
        },
    )


def _fast_current(db: Database, tenant: str, customer: str) -> Profile | None:
    """`read_profile`'s current view through the hot read, following aliases; None where the
    driver path cannot read."""
    now = utcnow()
    asked = customer
    for _ in range(identities.MAX_CHAIN):
        try:
            found = _current_profile(db, tenant, customer, now)
        except LookupError:
            return None
        if isinstance(found, Profile):
            if customer != asked:
                found.merged_into = customer
            return found
        customer = found
    raise not_found(tenant, asked)


# --- the current view through the cache ---------------------------------------------------


def _rows_data(rows: list[Any]) -> list[dict[str, Any]]:
    """Rows as plain dicts (str keys: SQLAlchemy's are a str subclass orjson refuses)."""
    if not rows:
        return []
    names = [str(name) for name in rows[0]._mapping]
    found = [dict(zip(names, row, strict=True)) for row in rows]
    for data in found:
        data.pop("content_hash", None)
    return found


def read_current(db: Database, tenant: str, customer: str, now: datetime) -> dict[str, Any]:
    """What the current view is built from, in the form the cache keeps: unmasked rows (fields
    carry `is_pii`; both keep `expires_at`, so TTL-on-read still applies to a cached copy), the
    assets' derived field ids and whether the customer exists at all."""
    rows = db.current_rows(tenant, customer, now)
    if rows is None:
        with db.read() as conn:
            return _read_current(conn, tenant, customer, now)
    exists, merged_into = True, None
    if not rows.fields and not rows.assets and not rows.identities:
        exists, merged_into = _presence(db, tenant, customer)
    return {
        "fields": rows.fields,
        "assets": rows.assets,
        "identities": rows.identities,
        "analysis": rows.analysis,
        "exists": exists,
        # An alias: its entry names the customer to read instead (a merge moved everything).
        "merged_into": None if exists else merged_into,
    }


def _read_current(conn: Connection, tenant: str, customer: str, now: datetime) -> dict[str, Any]:
    """`read_current` through SQLAlchemy (where the driver path cannot read)."""
    field_rows = store.current_items(conn, ItemKind.FIELD, tenant, customer, now)
    asset_rows = store.current_items(conn, ItemKind.ASSET, tenant, customer, now)
    identity_rows = identities.of_customer(conn, tenant, customer)
    exists, merged_into = True, None
    if not field_rows and not asset_rows and not identity_rows:
        exists, merged_into = identities.presence(conn, tenant, customer)
    asset_ids = [row.id for row in asset_rows]
    analysis = store.derived_field_ids(conn, tenant, asset_ids) if asset_ids else {}
    return {
        "fields": _rows_data(field_rows),
        "assets": _rows_data(asset_rows),
        "identities": [row._asdict() for row in identity_rows],
        "analysis": dict(analysis),
        "exists": exists,
        "merged_into": None if exists else merged_into,
    }


def live_rows(rows: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """The rows not expired at `now` (TTL-on-read), with their times as datetimes: a cached
    copy outlives the moment it was read, and must not serve a value past its expiry. (A
    cached time is ISO 8601 text as orjson writes an aware time; the hot read's are datetimes.)"""
    parse = datetime.fromisoformat
    live = []
    for row in rows:
        expires = row.get("expires_at")
        if expires is not None:
            if expires.__class__ is str:
                expires = row["expires_at"] = parse(expires)
            if expires <= now:
                continue
        collected = row["collected_at"]
        if collected.__class__ is str:
            row["collected_at"] = parse(collected)
            row["updated_at"] = parse(row["updated_at"])
            superseded = row.get("superseded_at")
            if superseded is not None:
                row["superseded_at"] = parse(superseded)
        live.append(row)
    return live


def profile_from_current(
    data: dict[str, Any], tenant: str, customer: str, now: datetime
) -> Profile:
    """The current view (PII masked) from `read_current`'s data, fresh or cached."""
    field_rows = live_rows(data["fields"], now)
    asset_rows = live_rows(data["assets"], now)
    if not field_rows and not asset_rows and not data["exists"]:
        raise not_found(tenant, customer)
    identity_rows = data.get("identities", ())
    for row in identity_rows:
        if isinstance(row["linked_at"], str):
            row["linked_at"] = datetime.fromisoformat(row["linked_at"])
    return _profile(
        tenant, customer, now, field_rows, asset_rows, list(identity_rows), data["analysis"]
    )


def current_data(
    db: Database, cache: RedisCache, tenant: str, customer: str, now: datetime
) -> dict[str, Any]:
    """The current view's data from Redis, or from the database (then cached, unless a write
    to the customer happened since the lookup)."""
    entry = cache.keys.profile(tenant, customer)
    snapshot = cache.read(tenant, [entry])
    data = snapshot.get(entry) if snapshot is not None else None
    if data is None:
        data = read_current(db, tenant, customer, now)
        if snapshot is not None:
            cache.fill(snapshot, entry, data)
    assert isinstance(data, dict)
    return data


def refill_current(
    db: Database, cache: RedisCache, tenant: str, customer: str, snapshot: Snapshot
) -> None:
    """After a write that dropped a cached profile: read it again and cache it, so that a hot
    customer stays cached. `snapshot` holds the generations the invalidation set, so a later
    write still wins."""
    data = read_current(db, tenant, customer, utcnow())
    cache.fill(snapshot, cache.keys.profile(tenant, customer), data)


def get_profile(
    db: Database,
    tenant: str,
    customer: str,
    *,
    as_of: datetime | None = None,
    history: bool = False,
    reveal_pii: bool = False,
    actor: str = "library",
    cache: RedisCache | None = None,
) -> Profile:
    """The profile now (or at `as_of`); a PII reveal is audited in the same transaction.

    With a cache, the current view (not `as_of`, `history` or a PII reveal, which always read
    the database) comes from Redis when it holds a current copy.
    """
    if cache is not None and as_of is None and not history and not reveal_pii:
        now = utcnow()
        asked = customer
        data = current_data(db, cache, tenant, customer, now)
        for _ in range(identities.MAX_CHAIN):
            target = data.get("merged_into")
            if data["exists"] or target is None:
                break
            customer = target
            data = current_data(db, cache, tenant, customer, now)
        profile = profile_from_current(data, tenant, customer, now)
        if customer != asked:
            profile.merged_into = customer
        return profile
    if as_of is None and not history and not reveal_pii:
        found = _fast_current(db, tenant, customer)
        if found is not None:
            return found
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
            details: dict[str, Any] = {"as_of": profile.as_of.isoformat(), "history": history}
            channels = sorted(
                {i.channel for i in profile.identities if is_pii(i.channel, i.channel_user_id)}
            )
            if channels:  # which channels' ids were shown, never the ids
                details["identities"] = channels
            audit_reveal(conn, tenant, profile.customer, revealed, actor, details)
    return profile
