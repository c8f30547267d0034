"""expire_flow_overhead_s: what Prefect orchestration adds to one expiry sweep.

The scheduled `expire` flow (flows/expiry.py) on the bench tenant against the bare call it
wraps, `vault.expire([tenant], now=T, apply=True)`, on the same rows: both apply the sweep, and
the rows are restored (and the audit events dropped) after every run. The flow talks to the
Prefect API in PREFECT_API_URL when set, else to Prefect's temporary local server, started by an
untimed warm-up run. `ccv` is the overhead, median(flow) - median(bare call); `raw` the bare call.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

from benchmarks.context import Context
from benchmarks.registry import REPORTED, Measurement, ccv_max, metric

RUNS = 3
ACTOR = "bench:expire-flow"
PREDICATE = (
    "tenant = %s AND status IN ('active', 'orphaned')"
    " AND expires_at IS NOT NULL AND expires_at <= %s"
)
TABLES = ("fields", "assets")


def _prefect_environment(ctx: Context) -> str:
    """Prefect's settings for this process, set before Prefect is first imported."""
    if os.environ.get("PREFECT_API_URL"):
        return "PREFECT_API_URL"
    os.environ.setdefault("PREFECT_HOME", str(ctx.workdir / "prefect-home"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "60")
    return "temporary local server"


@metric("expire_flow_overhead_s", unit="s", target=ccv_max(2), sqlite_target=REPORTED)
def expire_flow_overhead(ctx: Context) -> Measurement:
    """expire flow (Prefect) minus the bare vault.expire(apply=True) it wraps: orchestration."""
    api = _prefect_environment(ctx)
    try:
        from flows._common import close_vaults
        from flows.expiry import expire
    except ImportError as exc:
        return Measurement(ccv=None, raw=None, note=f"needs ccv[flows] ({exc})")
    vault, backend, conn, data = ctx.vault, ctx.backend, ctx.raw, ctx.data
    tenant, now = data.tenant, backend.ts(data.base_time)
    with backend.transaction(conn):
        backend.execute(conn, "DROP TABLE IF EXISTS bench_flow_expire_set")
        backend.execute(
            conn,
            "CREATE TABLE bench_flow_expire_set AS "
            + " UNION ALL ".join(
                f"SELECT '{t}' AS kind, id, status FROM {t} WHERE {PREDICATE}" for t in TABLES
            ),
            (tenant, now) * len(TABLES),
        )
        backend.execute(
            conn, "CREATE INDEX bench_flow_expire_set_id ON bench_flow_expire_set (kind, id)"
        )
    expected = backend.execute(conn, "SELECT count(*) FROM bench_flow_expire_set").fetchone()[0]
    if not expected:
        raise AssertionError("the dataset has nothing to expire")
    restores = [
        backend.sql(
            f"UPDATE {t} SET status = (SELECT s.status FROM bench_flow_expire_set s"
            f" WHERE s.kind = '{t}' AND s.id = {t}.id)"
            f" WHERE tenant = %s AND id IN (SELECT id FROM bench_flow_expire_set"
            f" WHERE kind = '{t}')"
        )
        for t in TABLES
    ]

    def restore() -> None:
        with backend.transaction(conn):
            for statement in restores:
                conn.execute(statement, (tenant,))
            backend.execute(
                conn,
                "DELETE FROM audit_events WHERE tenant = %s"
                " AND (actor = %s OR actor LIKE 'flow:expire/%%')",
                (tenant, ACTOR),
            )

    changed: dict[str, int] = {}

    def flow_run() -> None:
        changed["flow"] = expire(tenants=[tenant], now=data.base_time, apply=True)[tenant]

    def bare() -> None:
        changed["bare"] = vault.expire([tenant], now=data.base_time, apply=True, actor=ACTOR).total

    def timed(function: Any) -> float:
        started = time.perf_counter()
        function()
        elapsed = time.perf_counter() - started
        restore()
        if changed.get("flow", expected) != expected or changed.get("bare", expected) != expected:
            raise AssertionError(f"expected {expected} expired items, got {changed}")
        return elapsed

    # The flows read their database from the environment, as a worker does; no Redis, as ctx.vault.
    saved = {key: os.environ.get(key) for key in ("CCV_DATABASE_URL", "CCV_REDIS_URL")}
    os.environ["CCV_DATABASE_URL"] = backend.ccv_url
    os.environ.pop("CCV_REDIS_URL", None)
    flow_s: list[float] = []
    bare_s: list[float] = []
    try:
        warm_up = timed(flow_run)  # starts the temporary server, connects the flow's vault
        timed(bare)
        for run in range(RUNS):
            pair = [(flow_run, flow_s), (bare, bare_s)]
            for function, sink in pair if run % 2 == 0 else reversed(pair):
                sink.append(timed(function))
    finally:
        restore()
        backend.execute(conn, "DROP TABLE IF EXISTS bench_flow_expire_set")
        close_vaults()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    flow_median, bare_median = statistics.median(flow_s), statistics.median(bare_s)
    return Measurement(
        ccv=max(0.0, flow_median - bare_median),
        raw=bare_median,
        extra={
            "flow_s": round(flow_median, 4),
            "service_s": round(bare_median, 4),
            "first_flow_run_s": round(warm_up, 3),
            "items": expected,
            "runs": RUNS,
            "statistic": "median",
            "prefect_api": api,
        },
    )
