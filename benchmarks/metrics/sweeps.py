"""expire_dry_run_s and expire_apply_s: the expiry sweep of the bench tenant.

`now` is the dataset's reference time, so the set of expiring items is the same on every run
(about 1% of active fields). The apply metric restores the items (and drops the sweep's audit
events) after each timed run, so ccv and raw transition exactly the same rows.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from benchmarks.context import Context
from benchmarks.registry import REPORTED, Measurement, metric, ratio_max

DRY_RUNS = 5
APPLY_RUNS = 3
ACTOR = "bench:expire"
PREDICATE = (
    "tenant = %s AND status IN ('active', 'orphaned')"
    " AND expires_at IS NOT NULL AND expires_at <= %s"
)
TABLES = ("fields", "assets")


def _seconds(function: Any) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


@metric("expire_dry_run_s", unit="s", target=ratio_max(2), sqlite_target=REPORTED)
def expire_dry_run(ctx: Context) -> Measurement:
    """vault.expire(apply=False) vs raw SELECT count(*) with the same predicate."""
    vault, backend, conn, data = ctx.vault, ctx.backend, ctx.raw, ctx.data
    now = backend.ts(data.base_time)
    counts = [backend.sql(f"SELECT count(*) FROM {t} WHERE {PREDICATE}") for t in TABLES]
    selects = [
        backend.sql(
            f"SELECT id, customer, name, status, expires_at FROM {t} WHERE {PREDICATE}"
            " ORDER BY expires_at, id"
        )
        for t in TABLES
    ]
    found: dict[str, int] = {}

    def ccv() -> None:
        found["ccv"] = vault.expire([data.tenant], now=data.base_time, apply=False).total

    def raw() -> None:
        found["raw"] = sum(conn.execute(q, (data.tenant, now)).fetchone()[0] for q in counts)

    def raw_select() -> None:
        found["select"] = sum(len(conn.execute(q, (data.tenant, now)).fetchall()) for q in selects)

    for warm_up in (ccv, raw, raw_select):
        warm_up()
    ccv_s: list[float] = []
    raw_s: list[float] = []
    select_s: list[float] = []
    for run in range(DRY_RUNS):
        pair = [(ccv, ccv_s), (raw, raw_s)]
        for function, sink in pair if run % 2 == 0 else reversed(pair):
            sink.append(_seconds(function))
        select_s.append(_seconds(raw_select))
    if not found["ccv"] == found["raw"] == found["select"]:
        raise AssertionError(f"expiring items differ: {found}")
    return Measurement(
        ccv=statistics.median(ccv_s),
        raw=statistics.median(raw_s),
        extra={
            "items": found["ccv"],
            "runs": DRY_RUNS,
            "statistic": "median",
            "raw_select_rows_s": round(statistics.median(select_s), 6),
        },
    )


@metric("expire_apply_s", unit="s", target=ratio_max(2), sqlite_target=REPORTED)
def expire_apply(ctx: Context) -> Measurement:
    """vault.expire(apply=True) (audit events included) vs raw UPDATE ... SET status='expired'."""
    vault, backend, conn, data = ctx.vault, ctx.backend, ctx.raw, ctx.data
    now = backend.ts(data.base_time)
    tenant = data.tenant
    with backend.transaction(conn):
        backend.execute(conn, "DROP TABLE IF EXISTS bench_expire_set")
        backend.execute(
            conn,
            "CREATE TABLE bench_expire_set AS "
            + " UNION ALL ".join(
                f"SELECT '{t}' AS kind, tenant, id, status FROM {t} WHERE {PREDICATE}"
                for t in TABLES
            ),
            (tenant, now) * len(TABLES),
        )
        if backend.citus_workers():
            # On Citus the restore joins it with a distributed table: colocated, by tenant.
            backend.execute(
                conn,
                "SELECT create_distributed_table('bench_expire_set', 'tenant',"
                " colocate_with => 'fields')",
            )
        # Restoring looks rows up by id: without an index that is quadratic.
        backend.execute(conn, "CREATE INDEX bench_expire_set_id ON bench_expire_set (kind, id)")
        backend.execute(conn, "ANALYZE bench_expire_set")
    expected = backend.execute(conn, "SELECT count(*) FROM bench_expire_set").fetchone()[0]
    if not expected:
        raise AssertionError("the dataset has nothing to expire")
    updates = [
        backend.sql(f"UPDATE {t} SET status = 'expired', updated_at = %s WHERE {PREDICATE}")
        for t in TABLES
    ]
    restores = [
        backend.sql(
            f"UPDATE {t} SET status = (SELECT s.status FROM bench_expire_set s"
            f" WHERE s.tenant = %s AND s.kind = '{t}' AND s.id = {t}.id)"
            f" WHERE tenant = %s AND id IN"
            f" (SELECT id FROM bench_expire_set WHERE tenant = %s AND kind = '{t}')"
        )
        for t in TABLES
    ]
    changed: dict[str, int] = {}

    def restore() -> None:
        with backend.transaction(conn):
            for statement in restores:
                conn.execute(statement, (tenant,) * 3)
            backend.execute(
                conn, "DELETE FROM audit_events WHERE tenant = %s AND actor = %s", (tenant, ACTOR)
            )

    def ccv() -> None:
        result = vault.expire([tenant], now=data.base_time, apply=True, actor=ACTOR)
        changed["ccv"] = result.total

    def raw() -> None:
        total = 0
        with backend.transaction(conn):
            for statement in updates:
                total += conn.execute(statement, (now, tenant, now)).rowcount
        changed["raw"] = total

    ccv_s: list[float] = []
    raw_s: list[float] = []
    try:
        for run in range(APPLY_RUNS):
            pair = [(ccv, ccv_s), (raw, raw_s)]
            for function, sink in pair if run % 2 == 0 else reversed(pair):
                sink.append(_seconds(function))
                restore()
                if (
                    changed.get("ccv", expected) != expected
                    or changed.get("raw", expected) != expected
                ):
                    raise AssertionError(f"expected {expected} expired items, got {changed}")
    finally:
        restore()
        backend.execute(conn, "DROP TABLE IF EXISTS bench_expire_set")
    return Measurement(
        ccv=statistics.median(ccv_s),
        raw=statistics.median(raw_s),
        extra={"items": expected, "runs": APPLY_RUNS, "statistic": "median"},
    )
