"""profile_read_p99_ms: the current profile of one customer, ccv vs three hand-written SELECTs
(its active fields, its active assets, its channel identities)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from benchmarks.context import Context
from benchmarks.dataset import has_asset
from benchmarks.registry import Measurement, metric, ratio_max
from benchmarks.stats import paired_latencies, probe_statements, summary

WARMUP = 200
BUDGET_S = 180.0

# What ccv's current view asks for (ccv/store/items.py current_items): active and not expired.
RAW_FIELDS = (
    "SELECT * FROM fields WHERE tenant = %s AND customer = %s AND status = 'active'"
    " AND (expires_at IS NULL OR expires_at > %s)"
)
RAW_ASSETS = (
    "SELECT * FROM assets WHERE tenant = %s AND customer = %s AND status = 'active'"
    " AND (expires_at IS NULL OR expires_at > %s)"
)
RAW_IDENTITIES = "SELECT * FROM identities WHERE tenant = %s AND customer = %s"


def raw_reader(ctx: Context, *, identities: bool = True) -> Any:
    """The raw current view of a customer; `identities=False` leaves the identities out (a
    gaps read needs only the values)."""
    conn, backend, tenant = ctx.raw, ctx.backend, ctx.data.tenant
    fields_sql, assets_sql = backend.sql(RAW_FIELDS), backend.sql(RAW_ASSETS)
    identities_sql = backend.sql(RAW_IDENTITIES)

    def read(customer: str) -> tuple[list[Any], list[Any]]:
        now = backend.ts(datetime.now(UTC))
        fields = conn.execute(fields_sql, (tenant, customer, now)).fetchall()
        assets = conn.execute(assets_sql, (tenant, customer, now)).fetchall()
        if identities:
            conn.execute(identities_sql, (tenant, customer)).fetchall()
        return fields, assets

    return read


def measure_reads(ctx: Context, count: int) -> Measurement:
    vault, tenant = ctx.vault, ctx.data.tenant
    raw = raw_reader(ctx)
    customers = ctx.sample_customers(count + WARMUP)
    # Same answer from both sides before timing anything.
    profile = vault.get_profile(tenant, customers[0])
    fields, _ = raw(customers[0])
    if len(profile.fields) != len(fields):
        raise AssertionError(
            f"ccv returned {len(profile.fields)} fields for {customers[0]}, raw {len(fields)}"
        )
    ccv_ms, raw_ms = paired_latencies(
        customers,
        lambda c: vault.get_profile(tenant, c),
        raw,
        warmup=WARMUP,
        budget_s=BUDGET_S,
    )
    ccv_s, raw_s = summary(ccv_ms), summary(raw_ms)
    with_asset = next((c for c in customers if has_asset(int(c[1:]))), customers[0])
    return Measurement(
        ccv=ccv_s["p99"],
        raw=raw_s["p99"],
        extra={
            "ccv_ms": ccv_s,
            "raw_ms": raw_s,
            "profiles": ctx.data.scale,
            "ccv_sql_one_call": probe_statements(
                vault, lambda: vault.get_profile(tenant, with_asset)
            ),
        },
    )


# The p99 run's latencies, for profile_read_p50_ms (the same samples, another statistic).
_LAST: dict[str, Measurement] = {}


@metric("profile_read_p99_ms", unit="ms", target=ratio_max(2), sqlite_target=ratio_max(3))
def profile_read(ctx: Context) -> Measurement:
    """vault.get_profile vs raw SELECTs of active fields, assets, identities (persistent conn)."""
    measured = _LAST["reads"] = measure_reads(ctx, ctx.reads)
    return measured


@metric("profile_read_p50_ms", unit="ms", target=ratio_max(2), sqlite_target=ratio_max(4))
def profile_read_median(ctx: Context) -> Measurement:
    """The median of profile_read_p99_ms's samples (measured there, or now)."""
    measured = _LAST.get("reads") or measure_reads(ctx, ctx.reads)
    ccv_ms, raw_ms = measured.extra["ccv_ms"], measured.extra["raw_ms"]
    return Measurement(
        ccv=ccv_ms["p50"], raw=raw_ms["p50"], extra={"ccv_ms": ccv_ms, "raw_ms": raw_ms}
    )
