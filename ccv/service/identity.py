"""Channel identities (SPEC §10): resolve (get or create), link, unlink, list, and the identity
records of import files.

One (tenant, channel, channel_user_id) belongs to at most one customer: the primary key says
so, and every insert is `ON CONFLICT DO NOTHING` followed by a read, so concurrent creators of
one identity all end up with the one customer the first of them created. Links, moves and
unlinks are audit events naming the channel, never the id (it may be an email address or a
phone number); outputs mask such ids unless revealed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from ccv import observe
from ccv.domain.identity import describe, is_pii
from ccv.domain.models import IdentityList, IdentityResult
from ccv.domain.records import ParsedIdentity
from ccv.domain.timeutil import utcnow
from ccv.errors import NotFoundError, RefusedError
from ccv.service.convert import identity_model
from ccv.service.profiles import not_found
from ccv.service.writes import audit_reveal, audit_row
from ccv.store import identities as ids
from ccv.store import items as store
from ccv.store import outbox
from ccv.store.database import Database, NoDriver

if TYPE_CHECKING:
    from ccv.service.importing import Incoming
    from ccv.store.cache import RedisCache
    from ccv.store.outbox import Owed

KIND = "identity"


def _audit(
    tenant: str,
    customer: str,
    channel: str,
    event: str,
    actor: str,
    now: datetime,
    **details: Any,
) -> dict[str, Any]:
    """An identity's audit event: its channel (as the name), never its id."""
    return audit_row(tenant, customer, None, KIND, channel, event, actor, now, details=details)


def _row(
    tenant: str,
    channel: str,
    channel_user_id: str,
    customer: str,
    verified: bool,
    linked_at: datetime,
    source: str,
) -> dict[str, Any]:
    return {
        "tenant": tenant,
        "channel": channel,
        "channel_user_id": channel_user_id,
        "customer": customer,
        "verified": verified,
        "linked_at": linked_at,
        "source": source,
    }


def _deliver(cache: RedisCache | None, owed: Owed | None) -> None:
    if cache is not None and owed is not None:
        cache.deliver(owed)


def resolve(
    db: Database,
    tenant: str,
    channel: str,
    channel_user_id: str,
    *,
    create: bool = False,
    customer: str | None = None,
    actor: str = "library",
    cache: RedisCache | None = None,
) -> IdentityResult:
    """The customer of an identity; with `create`, get or create it atomically (a new
    customer's id is a UUID unless `customer` names one). NotFoundError without `create` when
    the identity is unknown; RefusedError when it belongs to another customer than `customer`."""
    fast = db.identity_row(tenant, channel, channel_user_id)
    found: ids.IdentityRow | None
    if isinstance(fast, NoDriver):
        with db.read() as conn:
            found = ids.get(conn, tenant, channel, channel_user_id)
    else:
        found = None if fast is None else ids.IdentityRow(*fast)
    if found is not None or not create:
        if found is None:
            raise NotFoundError(
                f"identity {describe(channel, channel_user_id)} not found in tenant {tenant}"
            )
        if customer is not None and customer != found.customer:
            with db.read() as conn:
                wanted = ids.resolve(conn, tenant, customer)
            _refuse_other(found, wanted, tenant, channel, channel_user_id)
        return IdentityResult(
            identity=identity_model(found, False), customer=found.customer, outcome="found"
        )
    now = utcnow()
    owed = None
    with db.write() as conn:
        new = customer if customer is not None else str(uuid.uuid4())
        locked = store.upsert_and_lock_profiles(conn, tenant, [new], now)
        new = locked.customer(new)
        row = _row(tenant, channel, channel_user_id, new, False, now, "resolve")
        created = bool(ids.insert_new(conn, [row]))
        if created:
            store.insert_audit(
                conn,
                [_audit(tenant, new, channel, "identity_link", actor, now, source="resolve")],
            )
            owed = outbox.record(conn, tenant, customers=[new], now=now)
            stored = ids.get(conn, tenant, channel, channel_user_id)
        else:
            # Another process created it first: its customer is the one.
            stored = ids.get(conn, tenant, channel, channel_user_id)
            if customer is None:
                store.delete_profile(conn, tenant, new)  # the UUID we made up goes unused
        assert stored is not None
        if not created and customer is not None and stored.customer != new:
            _refuse_other(stored, new, tenant, channel, channel_user_id)
    _deliver(cache, owed)
    if created:
        observe.event("identity_link", tenant, channel=channel, source="resolve", created=True)
    return IdentityResult(
        identity=identity_model(stored, False),
        customer=stored.customer,
        outcome="created" if created else "found",
        created=created,
    )


def _refuse_other(found: Any, wanted: str, tenant: str, channel: str, channel_user_id: str) -> None:
    if found.customer != wanted:
        raise RefusedError(
            f"identity {describe(channel, channel_user_id)} belongs to customer "
            f"{found.customer} in tenant {tenant}, not {wanted}; `ccv identity link {wanted} "
            "--move` moves it"
        )


def link(
    db: Database,
    tenant: str,
    customer: str,
    channel: str,
    channel_user_id: str,
    *,
    verified: bool = False,
    move: bool = False,
    source: str = "link",
    actor: str = "library",
    cache: RedisCache | None = None,
) -> IdentityResult:
    """Link an identity to an existing customer (NotFoundError if unknown). One that belongs to
    another customer is refused (RefusedError) unless `move`. Linking it again is `unchanged`
    (or `updated` when `verified` marks it verified now)."""
    now = utcnow()
    with db.read() as conn:
        before = ids.get(conn, tenant, channel, channel_user_id)
    holder = [before.customer] if before is not None else []
    with db.write() as conn:
        # Both customers' rows, in one sorted statement: the identity's current holder and the
        # one it goes to.
        locked = store.upsert_and_lock_profiles(conn, tenant, [customer, *holder], now)
        target = locked.customer(customer)
        if not store.customer_exists(conn, tenant, target):
            raise not_found(tenant, customer)
        current = ids.get(conn, tenant, channel, channel_user_id)
        if current is not None and current.customer not in (target, *holder):
            # Moved meanwhile by someone else: lock its new holder too.
            store.upsert_and_lock_profiles(conn, tenant, [current.customer], now)
            current = ids.get(conn, tenant, channel, channel_user_id)
        moved_from: str | None = None
        events: list[dict[str, Any]] = []
        touched = {target}
        if current is None:
            row = _row(tenant, channel, channel_user_id, target, verified, now, source)
            if not ids.insert_new(conn, [row]):  # created meanwhile: judge that one
                current = ids.get(conn, tenant, channel, channel_user_id)
                assert current is not None
        if current is None:
            outcome = "linked"
            events.append(
                _audit(
                    tenant,
                    target,
                    channel,
                    "identity_link",
                    actor,
                    now,
                    verified=verified,
                    source=source,
                )
            )
        elif current.customer == target:
            if verified and not current.verified:
                ids.set_customer(conn, tenant, channel, channel_user_id, {"verified": True})
                outcome = "updated"
                events.append(
                    _audit(tenant, target, channel, "identity_verify", actor, now, source=source)
                )
            else:
                outcome = "unchanged"
        else:
            if not move:
                _refuse_other(current, target, tenant, channel, channel_user_id)
            moved_from = str(current.customer)
            ids.set_customer(
                conn,
                tenant,
                channel,
                channel_user_id,
                {
                    "customer": target,
                    "verified": verified,
                    "linked_at": now,
                    "source": source,
                },
            )
            outcome = "moved"
            touched.add(moved_from)
            events.append(
                _audit(
                    tenant,
                    target,
                    channel,
                    "identity_move",
                    actor,
                    now,
                    moved_from=moved_from,
                    verified=verified,
                    source=source,
                )
            )
        store.insert_audit(conn, events)
        owed = outbox.record(conn, tenant, customers=touched, now=now) if events else None
        stored = ids.get(conn, tenant, channel, channel_user_id)
        assert stored is not None
    _deliver(cache, owed)
    if events:
        observe.event("identity_link", tenant, channel=channel, outcome=outcome, source=source)
    return IdentityResult(
        identity=identity_model(stored, False),
        customer=target,
        outcome=outcome,
        created=outcome == "linked",
        moved_from=moved_from,
    )


def unlink(
    db: Database,
    tenant: str,
    channel: str,
    channel_user_id: str,
    *,
    actor: str = "library",
    cache: RedisCache | None = None,
) -> IdentityResult:
    """Remove an identity (NotFoundError if there is none)."""
    now = utcnow()
    with db.read() as conn:
        before = ids.get(conn, tenant, channel, channel_user_id)
    if before is None:
        raise NotFoundError(
            f"identity {describe(channel, channel_user_id)} not found in tenant {tenant}"
        )
    with db.write() as conn:
        store.upsert_and_lock_profiles(conn, tenant, [before.customer], now)
        current = ids.get(conn, tenant, channel, channel_user_id)
        if current is None:
            raise NotFoundError(
                f"identity {describe(channel, channel_user_id)} not found in tenant {tenant}"
            )
        ids.delete_one(conn, tenant, channel, channel_user_id)
        store.insert_audit(
            conn, [_audit(tenant, current.customer, channel, "identity_unlink", actor, now)]
        )
        owed = outbox.record(conn, tenant, customers=[current.customer], now=now)
    _deliver(cache, owed)
    observe.event("identity_unlink", tenant, channel=channel)
    return IdentityResult(
        identity=identity_model(current, False), customer=current.customer, outcome="unlinked"
    )


def list_identities(
    db: Database,
    tenant: str,
    customer: str,
    *,
    reveal_pii: bool = False,
    actor: str = "library",
) -> IdentityList:
    """A customer's identities (of the customer it was merged into, for an alias)."""
    transaction = db.write() if reveal_pii else db.read()
    with transaction as conn:
        target = ids.resolve(conn, tenant, customer)
        rows = ids.of_customer(conn, tenant, target)
        if not rows and not store.customer_exists(conn, tenant, target):
            raise not_found(tenant, customer)
        found = [identity_model(row, reveal_pii) for row in rows]
        channels = sorted({i.channel for i in found if is_pii(i.channel, i.channel_user_id)})
        if reveal_pii and channels:
            audit_reveal(conn, tenant, target, [], actor, {"identities": channels})
    return IdentityList(
        tenant=tenant,
        customer=target,
        merged_into=target if target != customer else None,
        identities=found,
    )


# --- identity records of an import --------------------------------------------------------


def import_identities(
    conn: Connection,
    tenant: str,
    links: Sequence[tuple[Incoming, ParsedIdentity]],
    now: datetime,
    actor: str,
    reject: Callable[[Incoming, str], None],
) -> tuple[int, int]:
    """Store the identity records of one tenant's batch (customers locked and resolved by the
    caller); returns (inserted, unchanged). The same identity for the same customer is
    unchanged; for another customer it is rejected as a conflict, naming its line."""
    first: dict[ids.Key, tuple[Incoming, ParsedIdentity]] = {}
    unchanged = 0
    for incoming, record in links:
        key = (record.channel, record.channel_user_id)
        earlier = first.get(key)
        if earlier is None:
            first[key] = (incoming, record)
        elif earlier[1].customer == record.customer:
            unchanged += 1
        else:
            reject(
                incoming,
                f"identity {describe(*key)} is linked to customer {earlier[1].customer} "
                f"at line {earlier[0].line} (conflict)",
            )
    inserted: set[ids.Key] = set()
    pending = dict(first)
    for _ in range(2):  # a key inserted meanwhile by another writer is judged again
        stored = ids.find(conn, tenant, pending)
        fresh: list[dict[str, Any]] = []
        for key, (incoming, record) in pending.items():
            holder = stored.get(key)
            if holder is None:
                fresh.append(
                    _row(
                        tenant,
                        record.channel,
                        record.channel_user_id,
                        record.customer,
                        record.verified,
                        record.linked_at or now,
                        record.source or "import",
                    )
                )
            elif holder.customer == record.customer:
                unchanged += 1
            else:
                reject(
                    incoming,
                    f"identity {describe(*key)} belongs to customer {holder.customer} (conflict)",
                )
        done = ids.insert_new(conn, fresh)
        inserted |= done
        pending = {
            (row["channel"], row["channel_user_id"]): first[
                (row["channel"], row["channel_user_id"])
            ]
            for row in fresh
            if (row["channel"], row["channel_user_id"]) not in done
        }
        if not pending:
            break
    store.insert_audit(
        conn,
        [
            _audit(
                tenant,
                first[key][1].customer,
                key[0],
                "identity_link",
                actor,
                now,
                verified=first[key][1].verified,
                source=first[key][1].source or "import",
            )
            for key in sorted(inserted)
        ],
    )
    return len(inserted), unchanged
