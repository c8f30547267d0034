"""The `orphans` flow (every 15 minutes): items whose vault source is gone become `orphaned`."""

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
    name="orphans-tenant",
    task_run_name="orphans-{tenant}",
    **RETRYING,
)
def orphans_tenant(
    tenant: str, apply: bool, batch_size: int | None, actor: str, as_of: datetime
) -> SweepResult:
    """One tenant's orphan detection; ccv claims the tenant for this run (an applied sweep),
    batches it, locks each batch per tenant, and audits it."""
    return vault(batch_size).orphans(
        [tenant], apply=apply, actor=actor, claimant=claimant(actor, as_of, apply)
    )


@flow(name="orphans", task_runner=task_runner())
def orphans(
    tenants: list[str] | None = None,
    batch_size: int | None = None,
    apply: bool = True,
) -> dict[str, int]:
    """Mark active items whose vault source no longer exists as orphaned, one task per tenant.

    tenants: the tenants to sweep; null sweeps every tenant with a profile.
    batch_size: items per transaction (default CCV_BATCH_SIZE, 5000).
    apply: false makes it a dry run that only counts.
    Returns the number of items orphaned (or to orphan, in a dry run) per tenant it swept: an
    applied run leaves out the tenants another run is sweeping, or swept since this run began.
    """
    log_ccv_events()
    who = audit_actor("orphans")
    began = utcnow()
    futures = {
        tenant: orphans_tenant.submit(tenant, apply, batch_size, who, began)
        for tenant in list_tenants(tenants)
    }
    results, failed = gather(futures)
    done, skipped = swept(results)
    counts = {tenant: result.tenants[tenant].count for tenant, result in done.items()}
    publish_report("orphans", sorted(done))
    report(
        "orphans",
        {t: {"orphaned": n, "applied": apply} for t, n in counts.items()},
        failed,
        f"Items orphaned per tenant ({'applied' if apply else 'dry run'})",
        skipped,
    )
    return counts
