"""trace_depth100_ms: lineage of the leaf of a depth-100 chain, ccv vs recursive CTEs."""

from __future__ import annotations

from typing import Any

from benchmarks.context import Context
from benchmarks.dataset import CHAIN_DEPTH
from benchmarks.registry import Measurement, metric, ratio_max
from benchmarks.stats import paired_latencies, probe_statements, summary

WARMUP = 20
# ccv's trace can be slow enough to stall the suite: stop after this long (n is reported).
BUDGET_S = 60.0

# The plainest hand-written trace: walk the sources up, then look for dependents down.
RAW_UP = """
WITH RECURSIVE up(id, name, status, source_item_id, source_item_type, depth) AS (
    SELECT id, name, status, source_item_id, source_item_type, 0
    FROM fields WHERE tenant = %s AND id = %s
  UNION ALL
    SELECT f.id, f.name, f.status, f.source_item_id, f.source_item_type, up.depth + 1
    FROM up JOIN fields f ON f.tenant = %s AND f.id = up.source_item_id
    WHERE up.depth < 500
)
SELECT id, name, status, source_item_id, source_item_type, depth FROM up ORDER BY depth
"""
RAW_DOWN = """
WITH RECURSIVE down(id, depth) AS (
    SELECT id, 1 FROM fields WHERE tenant = %s AND source_item_id = %s
  UNION ALL
    SELECT f.id, down.depth + 1
    FROM down JOIN fields f ON f.tenant = %s AND f.source_item_id = down.id
    WHERE down.depth < 500
)
SELECT id, depth FROM down
"""


@metric("trace_depth100_ms", unit="ms", target=ratio_max(2))
def trace_depth100(ctx: Context) -> Measurement:
    """vault.trace of a depth-100 leaf vs raw recursive CTEs (median of the paired runs)."""
    vault, backend, conn, data = ctx.vault, ctx.backend, ctx.raw, ctx.data
    up, down = backend.sql(RAW_UP), backend.sql(RAW_DOWN)
    leaves = data.chain_leaves

    def raw(leaf: str) -> tuple[list[Any], list[Any]]:
        chain = conn.execute(up, (data.tenant, leaf, data.tenant)).fetchall()
        below = conn.execute(down, (data.tenant, leaf, data.tenant)).fetchall()
        return chain, below

    def ccv(leaf: str) -> Any:
        return vault.trace(data.tenant, leaf)

    trace = ccv(leaves[0])
    chain, _ = raw(leaves[0])
    # ccv's chain: the 100 sources plus the external session at the root.
    if len(trace.chain) != CHAIN_DEPTH + 1 or len(chain) != CHAIN_DEPTH + 1:
        raise AssertionError(
            f"chain lengths: ccv {len(trace.chain)}, raw {len(chain)}, want {CHAIN_DEPTH + 1}"
        )
    items = [leaves[i % len(leaves)] for i in range(ctx.traces + WARMUP)]
    ccv_ms, raw_ms = paired_latencies(items, ccv, raw, warmup=WARMUP, budget_s=BUDGET_S)
    ccv_s, raw_s = summary(ccv_ms), summary(raw_ms)
    return Measurement(
        ccv=ccv_s["p50"],
        raw=raw_s["p50"],
        extra={
            "statistic": "median",
            "ccv_ms": ccv_s,
            "raw_ms": raw_s,
            "depth": CHAIN_DEPTH,
            "ccv_sql_one_call": probe_statements(vault, lambda: ccv(leaves[0])),
        },
    )
