"""What the flows share: the vault they run on, the retry policy, ccv's events in the run logs,
and the run report (return value, log lines, and table artifacts in the Prefect UI: what the run
did, and `ccv report` of the tenants it swept)."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

from prefect import Task, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun
from prefect.context import FlowRunContext, TaskRunContext
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from prefect.tasks import exponential_backoff

from ccv import observe
from ccv.config import load_settings
from ccv.domain.models import SweepResult
from ccv.errors import BackendError, SchemaOutdatedError
from ccv.service import jobs
from ccv.store.claims import Claimant
from ccv.vault import Vault

R = TypeVar("R")

# Backend failures are retried 4 times, 5, 10, 20 and 40 s apart on average (jittered up to
# +50%, so that workers that failed together do not come back together): long enough to ride
# out a PostgreSQL restart or failover, short enough to end before the next scheduled run.
RETRIES = 4
RETRY_DELAYS = exponential_backoff(backoff_factor=5)(RETRIES)
RETRY_JITTER = 0.5
# Tenants swept at once by one run: below the 5 connections of ccv's PostgreSQL pool.
TENANT_WORKERS = 4


def task_runner() -> TaskRunner[PrefectFuture[Any]]:
    # The cast: `flow(task_runner=...)` is typed with an invariant future type that Prefect's
    # own ThreadPoolTaskRunner does not match under mypy --strict.
    return cast("TaskRunner[PrefectFuture[Any]]", ThreadPoolTaskRunner(max_workers=TENANT_WORKERS))


def retry_on_backend_error(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry what a retry can fix: ccv's BackendError (the database, or the LLM, unreachable or
    failing), not a usage error, and not a schema that `ccv db upgrade` must bring up first."""
    error = state.data
    return isinstance(error, BackendError) and not isinstance(error, SchemaOutdatedError)


# The options of every task that calls into ccv: retried on backend errors, never cached (each
# run must see the vault as it is now).
RETRYING: dict[str, Any] = {
    "retries": RETRIES,
    "retry_delay_seconds": RETRY_DELAYS,
    "retry_jitter_factor": RETRY_JITTER,
    "retry_condition_fn": retry_on_backend_error,
    "cache_policy": NO_CACHE,
}

_vaults: dict[str, Vault] = {}
_vaults_lock = threading.Lock()


def vault(batch_size: int | None = None) -> Vault:
    """The vault for the current settings (CCV_* environment, ccv.toml) and batch size.

    One per process and settings, shared by a run's tasks (and by the runs of a served
    process), so that they share one connection pool.
    """
    settings = load_settings(batch_size=batch_size)
    key = settings.model_dump_json()
    with _vaults_lock:
        opened = _vaults.get(key)
        if opened is None:
            opened = _vaults[key] = Vault(settings)
    return opened


def close_vaults() -> None:
    with _vaults_lock:
        while _vaults:
            _vaults.popitem()[1].close()


@task(
    name="list-tenants",
    **RETRYING,
)
def list_tenants(tenants: list[str] | None) -> list[str]:
    """The tenants to sweep: those given, or (None) every tenant with a profile."""
    return jobs.resolve_tenants(vault().db, tenants, all_tenants=tenants is None)


def audit_actor(job: str) -> str:
    """The audit actor of this flow run: `prefect:expire/<flow run id>`."""
    return f"prefect:{job}/{flow_run.get_id() or 'local'}"


class _RunLogs(logging.Handler):
    """ccv's events, as `--log-format json` writes them, in the log of the Prefect task or flow
    run whose thread emitted them (nothing outside a run)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(observe.JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        if TaskRunContext.get() is None and FlowRunContext.get() is None:
            return
        try:
            get_run_logger().log(record.levelno, self.format(record))
        except Exception:  # noqa: BLE001 - logging must never fail the run
            self.handleError(record)


def log_ccv_events() -> None:
    """Send ccv's events (status transitions per batch, cache degradation, ...) to the run logs,
    from CCV_LOG_LEVEL up (default `info` in flows: the run log is where they are read)."""
    ccv_log = logging.getLogger("ccv")
    if not any(isinstance(handler, _RunLogs) for handler in ccv_log.handlers):
        ccv_log.addHandler(_RunLogs())
    level = os.environ.get("CCV_LOG_LEVEL", "info").lower()
    ccv_log.setLevel(level.upper() if level in observe.LOG_LEVELS else logging.INFO)


@task(name="report-tenants", **RETRYING)
def report_tenants(tenants: Sequence[str], now: datetime | None = None) -> dict[str, Any]:
    """`ccv report` of the swept tenants, after the sweep (the JSON of SPEC §11)."""
    if not tenants:
        return {"now": None, "tenants": {}}
    result: dict[str, Any] = vault().report(list(tenants), now=now).model_dump(mode="json")
    return result


def publish_report(job: str, tenants: Sequence[str], now: datetime | None = None) -> None:
    """Publish `ccv report` of `tenants` as the table artifact `ccv-JOB-report`, one row per
    tenant (nested counts flattened: `fields.active`, `expiring.1d`, `invalid.email`). A report
    that fails after its retries is logged as an error and the run keeps its sweep's result."""
    try:
        swept = report_tenants(tenants, now)
    except Exception as exc:  # noqa: BLE001 - the sweep is done; its result stands
        get_run_logger().error("%s: no report artifact: %s: %s", job, type(exc).__name__, exc)
        return
    rows = [{"tenant": t, **_flat(counts)} for t, counts in sorted(swept["tenants"].items())]
    create_table_artifact(
        table=rows,
        key=f"ccv-{job}-report",
        description=f"ccv report of the tenants this {job} run swept (now={swept['now']})",
    )


def _flat(counts: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in counts.items():
        if isinstance(value, Mapping):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


class TenantsFailed(RuntimeError):
    """Some tenants failed after their retries; the others were processed and reported."""


def gather(futures: Mapping[str, PrefectFuture[R]]) -> tuple[dict[str, R], dict[str, str]]:
    """Wait for every tenant's task: (results, error messages) by tenant."""
    done: dict[str, R] = {}
    failed: dict[str, str] = {}
    for tenant, future in futures.items():
        try:
            done[tenant] = future.result()
        except Exception as exc:  # noqa: BLE001 - reported per tenant, then the run fails
            failed[tenant] = f"{type(exc).__name__}: {exc}"
    return done, failed


def swept(
    done: Mapping[str, SweepResult],
) -> tuple[dict[str, SweepResult], list[str]]:
    """The tenants' sweeps this run did, and the tenants it left to another run (claimed by it,
    or swept by it as of this run's time or later)."""
    skipped = sorted(tenant for tenant, result in done.items() if tenant in result.skipped)
    return {t: r for t, r in done.items() if t not in skipped}, skipped


def claimant(actor: str, as_of: datetime, apply: bool) -> Claimant | None:
    """What an applied run claims each tenant as (a dry run only reads, and claims nothing)."""
    return Claimant(holder=actor, as_of=as_of) if apply else None


def report(
    job: str,
    counts: Mapping[str, Mapping[str, Any]],
    failed: Mapping[str, str],
    description: str,
    skipped: Sequence[str] = (),
) -> None:
    """Log one line per tenant and publish the run's table artifact (key `ccv-JOB`: the UI keeps
    every run's version); then fail the run if a tenant failed after its retries."""
    logger = get_run_logger()
    columns = list(next(iter(counts.values()), {}))
    table: list[dict[str, Any]] = []
    for tenant in sorted({*counts, *failed, *skipped}):
        if tenant in counts:
            row = {"tenant": tenant, **counts[tenant], "skipped": False, "error": ""}
            logger.info(
                "%s tenant=%s %s",
                job,
                tenant,
                " ".join(f"{k}={v}" for k, v in counts[tenant].items()),
            )
        elif tenant in skipped:
            row = {"tenant": tenant, **dict.fromkeys(columns), "skipped": True, "error": ""}
            logger.info(
                "%s tenant=%s skipped: another run is sweeping it or swept it as of this run's"
                " time or later",
                job,
                tenant,
            )
        else:
            row = {
                "tenant": tenant,
                **dict.fromkeys(columns),
                "skipped": False,
                "error": failed[tenant],
            }
            logger.error("%s tenant=%s failed: %s", job, tenant, failed[tenant])
        table.append(row)
    create_table_artifact(table=table, key=f"ccv-{job}", description=description)
    if failed:
        raise TenantsFailed(
            f"{job} failed for {len(failed)} tenant(s): "
            + "; ".join(f"{tenant}: {error}" for tenant, error in sorted(failed.items()))
        )
