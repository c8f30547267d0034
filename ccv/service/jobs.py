"""Sweeps shared by the CLI and the scheduled flows: expiry and orphan detection.

Dry runs only read. Applied sweeps work per tenant in batches, each its own short
transaction, so one run never holds long locks; every transition is audited. On PostgreSQL each
batch first takes the advisory lock of its job and tenant, so concurrent runs take turns.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import suppress
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ccv import observe
from ccv.domain.enums import ItemKind, Status
from ccv.domain.models import SweepItem, SweepResult, TenantSweep
from ccv.domain.timeutil import utcnow
from ccv.errors import BackendError, UsageError
from ccv.store import claims, outbox, sweeps
from ccv.store.database import Database

if TYPE_CHECKING:
    from ccv.store.cache import RedisCache
    from ccv.store.outbox import Owed


def _item(kind: ItemKind, row: Any) -> SweepItem:
    """A swept item from (id, customer, name, status, expires_at, source_item_id).

    Built without re-validation: the values come straight from ccv's own tables, and a large
    sweep lists tens of thousands of them.
    """
    item_id, customer, name, status, expires_at, source_item_id = row
    return SweepItem.model_construct(
        id=item_id,
        kind=kind,
        customer=customer,
        name=name,
        status=_STATUS[status],
        expires_at=expires_at,
        source_item_id=source_item_id,
    )


_STATUS = {status.value: status for status in Status}


DEFAULT_ITEM_LIMIT = 100


class _Listing:
    """Exact counts, and the first `limit` items for people to read."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.count = 0
        self.items: list[SweepItem] = []

    def room(self, available: int | None) -> int | None:
        """How many more items may be listed (of `available`; None: as many as there are)."""
        if self.limit is None:
            return available
        left = max(0, self.limit - len(self.items))
        return left if available is None else min(available, left)

    def add(self, kind: ItemKind, rows: Sequence[Any], count: int) -> None:
        self.count += count
        for row in rows[: self.room(len(rows)) or 0]:
            self.items.append(_item(kind, row))

    def sweep(self) -> TenantSweep:
        return TenantSweep(
            count=self.count, items=self.items, truncated=len(self.items) < self.count
        )


def _record(conn: Any, tenant: str, rows: Sequence[Any]) -> Owed | None:
    """Inside a batch's transaction: the swept customers' cached reads are owed an invalidation
    (rows as `_item` reads them: the customer is the second column)."""
    return outbox.record(conn, tenant, customers={row[1] for row in rows}) if rows else None


def _deliver(cache: RedisCache | None, owed: Owed | None) -> None:
    if cache is not None:
        cache.deliver(owed)


def transitioned(tenant: str, kind: ItemKind, rows: Sequence[Any], to: Status) -> None:
    """Log and count one committed batch of transitions (rows carry their old `status`)."""
    counts = Counter(str(row.status) for row in rows)
    for old, count in sorted(counts.items()):
        observe.transitions(kind.value, old, to.value, count)
        observe.event(
            "status_transition",
            tenant,
            kind=kind.value,
            from_status=old,
            to_status=to.value,
            count=count,
        )


def resolve_tenants(db: Database, tenants: Sequence[str] | None, all_tenants: bool) -> list[str]:
    if bool(tenants) == all_tenants:
        raise UsageError("give --tenant T or --all-tenants (exactly one)")
    if tenants:
        return sorted(set(tenants))
    with db.read() as conn:
        return sweeps.tenants(conn)


class _Sweep:
    """One tenant's applied sweep of one job: claimed (scheduled runs), then batch by batch,
    each batch a transaction that takes the job's lock, renews the claim and records what the
    cache is owed; committed batches are logged, counted and listed."""

    def __init__(
        self,
        db: Database,
        job: str,
        tenant: str,
        to: Status,
        batch_size: int,
        cache: RedisCache | None,
    ) -> None:
        self.db, self.job, self.tenant, self.to = db, job, tenant, to
        self.batch_size, self.cache = batch_size, cache

    def run(
        self,
        claimant: claims.Claimant | None,
        batch: Callable[[Any, ItemKind], Sequence[Any]],
        listing: _Listing,
    ) -> bool:
        """Sweep to the end; False when the claim went to another run (nothing swept). A
        claimant (scheduled runs) claims the tenant first, renews the claim with every batch
        and releases it at the end, as swept only when the sweep went to the end."""
        if claimant is not None:
            with self.db.write() as conn:
                if not claims.claim(conn, self.job, self.tenant, claimant):
                    return False
        try:
            for kind in ItemKind:
                while True:
                    with self.db.write() as conn:
                        sweeps.lock_job(conn, self.job, self.tenant)
                        if claimant is not None:
                            claims.renew(conn, self.job, self.tenant, claimant)
                        rows = batch(conn, kind)
                        owed = _record(conn, self.tenant, rows)
                    transitioned(self.tenant, kind, rows, self.to)
                    _deliver(self.cache, owed)
                    listing.add(kind, rows, len(rows))
                    if len(rows) < self.batch_size:
                        break
        except BaseException:
            if claimant is not None:
                with suppress(BackendError):  # the lease runs out instead
                    self._release(claimant, swept=False)
            raise
        if claimant is not None:
            self._release(claimant, swept=True)
        return True

    def _release(self, claimant: claims.Claimant, swept: bool) -> None:
        with self.db.write() as conn:
            claims.release(conn, self.job, self.tenant, claimant, swept)


def expire(
    db: Database,
    tenants: Sequence[str] | None = None,
    *,
    all_tenants: bool = False,
    now: datetime | None = None,
    apply: bool = False,
    batch_size: int = 5000,
    actor: str = "library",
    item_limit: int | None = DEFAULT_ITEM_LIMIT,
    cache: RedisCache | None = None,
    claimant: claims.Claimant | None = None,
) -> SweepResult:
    """Mark active and orphaned items past `expires_at` as expired (a dry run unless `apply`).

    Counts are exact; each tenant lists at most `item_limit` items (None: all of them). With a
    `claimant` (a scheduled run), an applied sweep claims each tenant first and skips the
    tenants another run is sweeping or swept as of `now` or later (`result.skipped`).
    """
    now = now or utcnow()
    result = SweepResult(applied=apply, now=now, tenants={}, total=0)
    for tenant in resolve_tenants(db, tenants, all_tenants):
        listing = _Listing(item_limit)
        if not apply:
            # A dry run is one COUNT over both kinds and, where anything expires, one page.
            with db.read() as conn:
                counts, pages = sweeps.expiry_preview(conn, tenant, now, item_limit)
            for kind in ItemKind:
                listing.add(kind, pages[kind], counts[kind])
            result.tenants[tenant] = listing.sweep()
            result.total += listing.count
            continue

        def batch(conn: Any, kind: ItemKind, tenant: str = tenant) -> Sequence[Any]:
            return sweeps.expire_batch(conn, kind, tenant, now, batch_size, actor)

        sweep = _Sweep(db, "expire", tenant, Status.EXPIRED, batch_size, cache)
        if not sweep.run(claimant, batch, listing):
            result.skipped.append(tenant)
            continue
        result.tenants[tenant] = listing.sweep()
        result.total += listing.count
    return result


def orphans(
    db: Database,
    tenants: Sequence[str] | None = None,
    *,
    all_tenants: bool = False,
    apply: bool = False,
    batch_size: int = 5000,
    actor: str = "library",
    item_limit: int | None = DEFAULT_ITEM_LIMIT,
    cache: RedisCache | None = None,
    claimant: claims.Claimant | None = None,
) -> SweepResult:
    """Mark active items whose vault source no longer exists as orphaned (dry run by default).

    Counts are exact; each tenant lists at most `item_limit` items (None: all of them). A
    `claimant` works as in `expire`, as of its own time.
    """
    now = utcnow()
    result = SweepResult(applied=apply, now=now, tenants={}, total=0)
    for tenant in resolve_tenants(db, tenants, all_tenants):
        listing = _Listing(item_limit)
        if not apply:
            for kind in ItemKind:
                with db.read() as conn:
                    rows = sweeps.orphan_candidates(conn, kind, tenant)
                listing.add(kind, rows, len(rows))
            result.tenants[tenant] = listing.sweep()
            result.total += listing.count
            continue

        def batch(conn: Any, kind: ItemKind, tenant: str = tenant) -> Sequence[Any]:
            rows = sweeps.orphan_candidates(conn, kind, tenant, limit=batch_size)
            sweeps.mark_orphaned(conn, kind, tenant, rows, now, actor)
            return rows

        sweep = _Sweep(db, "orphans", tenant, Status.ORPHANED, batch_size, cache)
        if not sweep.run(claimant, batch, listing):
            result.skipped.append(tenant)
            continue
        result.tenants[tenant] = listing.sweep()
        result.total += listing.count
    return result
