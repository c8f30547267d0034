"""The `orphans` flow (every 15 minutes): items whose vault source is gone become `orphaned`."""

from __future__ import annotations

from prefect import flow, task

from ccv.domain.models import SweepResult
from flows._common import (
    RETRYING,
    audit_actor,
    gather,
    list_tenants,
    log_ccv_events,
    publish_report,
    report,
    task_runner,
    vault,
)


@task(
    name="orphans-tenant",
    task_run_name="orphans-{tenant}",
    **RETRYING,
)
def orphans_tenant(tenant: str, apply: bool, batch_size: int | None, actor: str) -> SweepResult:
    """One tenant's orphan detection; ccv batches it, locks it per tenant, and audits it."""
    return vault(batch_size).orphans([tenant], apply=apply, actor=actor)


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
    Returns the number of items orphaned (or to orphan, in a dry run) per tenant.
    """
    log_ccv_events()
    who = audit_actor("orphans")
    futures = {
        tenant: orphans_tenant.submit(tenant, apply, batch_size, who)
        for tenant in list_tenants(tenants)
    }
    done, failed = gather(futures)
    counts = {tenant: result.tenants[tenant].count for tenant, result in done.items()}
    publish_report("orphans", sorted(done))
    report(
        "orphans",
        {t: {"orphaned": n, "applied": apply} for t, n in counts.items()},
        failed,
        f"Items orphaned per tenant ({'applied' if apply else 'dry run'})",
    )
    return counts
