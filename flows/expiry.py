"""The `expire` flow (every 5 minutes): values past `expires_at` become `expired`."""

from __future__ import annotations

from datetime import datetime

from prefect import flow, task

from ccv.domain.models import SweepResult
from ccv.domain.timeutil import utcnow
from flows._common import (
    RETRYING,
    audit_actor,
    claimant,
    gather,
    list_tenants,
    log_ccv_events,
    publish_report,
    report,
    swept,
    task_runner,
    vault,
)


@task(
    name="expire-tenant",
    task_run_name="expire-{tenant}",
    **RETRYING,
)
def expire_tenant(
    tenant: str, now: datetime, apply: bool, batch_size: int | None, actor: str
) -> SweepResult:
    """One tenant's sweep; ccv claims the tenant for this run (an applied sweep), batches it,
    locks each batch per tenant, and audits every transition."""
    return vault(batch_size).expire(
        [tenant], now=now, apply=apply, actor=actor, claimant=claimant(actor, now, apply)
    )


@flow(name="expire", task_runner=task_runner())
def expire(
    tenants: list[str] | None = None,
    batch_size: int | None = None,
    now: datetime | None = None,
    apply: bool = True,
) -> dict[str, int]:
    """Mark active and orphaned values past `expires_at` as expired, one task per tenant.

    tenants: the tenants to sweep; null sweeps every tenant with a profile.
    batch_size: items per transaction (default CCV_BATCH_SIZE, 5000).
    now: sweep as if it were this time (default: when the run starts).
    apply: false makes it a dry run that only counts.
    Returns the number of items expired (or expiring, in a dry run) per tenant it swept: an
    applied run leaves out the tenants another run is sweeping, or swept as of `now` or later
    (the run's table artifact lists them as skipped).
    """
    log_ccv_events()
    at = now or utcnow()
    who = audit_actor("expire")
    futures = {
        tenant: expire_tenant.submit(tenant, at, apply, batch_size, who)
        for tenant in list_tenants(tenants)
    }
    results, failed = gather(futures)
    done, skipped = swept(results)
    counts = {tenant: result.tenants[tenant].count for tenant, result in done.items()}
    publish_report("expire", sorted(done), now=at)
    report(
        "expire",
        {t: {"expired": n, "applied": apply, "now": at.isoformat()} for t, n in counts.items()},
        failed,
        f"Values expired per tenant ({'applied' if apply else 'dry run'}, now={at.isoformat()})",
        skipped,
    )
    return counts
