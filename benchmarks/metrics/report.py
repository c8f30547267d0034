"""report_s: `vault.report([tenant])` (`ccv report`) vs the raw GROUP BY queries it needs.

The raw side is hand-written SQL through the persistent psycopg connection, one statement per
figure of SPEC §11 (customers less merged aliases; identities; versions by status of fields
and assets; overdue and expiring within 1 and 7 days of fields and assets; values that
require confirmation; invalid values by field; the lineage depth histogram by a recursive walk
from the active derived values), run back to back, with `jit = off` as on ccv's own
connections (compiling these plans costs more than running them). Both sides count at the
dataset's reference time, and their counts must agree.
At the default scale the bench tenant holds 1.1 M field rows.
"""

from __future__ import annotations

import statistics
from datetime import timedelta
from typing import Any

from benchmarks.context import Context
from benchmarks.registry import Measurement, metric, ratio_max
from benchmarks.stats import alternating

RUNS = 5
VAULT = "('profile_field', 'profile_asset')"
DEPTH_LIMIT = 500  # ccv.service.report.MAX_DEPTH: the walk stops there
RAW = {
    "customers": "SELECT count(*) FROM profiles WHERE tenant = %(t)s",
    "aliases": ("SELECT count(*) FROM profiles WHERE tenant = %(t)s AND merged_into IS NOT NULL"),
    "identities": "SELECT count(*) FROM identities WHERE tenant = %(t)s",
    "fields": "SELECT status, count(*) FROM fields WHERE tenant = %(t)s GROUP BY status",
    "assets": "SELECT status, count(*) FROM assets WHERE tenant = %(t)s GROUP BY status",
    **{
        f"{table}_expiry": f"""
            SELECT sum(CASE WHEN expires_at <= %(now)s THEN 1 ELSE 0 END),
                   sum(CASE WHEN expires_at > %(now)s AND expires_at <= %(day)s THEN 1 ELSE 0 END),
                   sum(CASE WHEN expires_at > %(now)s THEN 1 ELSE 0 END)
            FROM {table}
            WHERE tenant = %(t)s AND status = 'active' AND expires_at <= %(week)s
        """
        for table in ("fields", "assets")
    },
    "requires_confirmation": (
        "SELECT count(*) FROM fields"
        " WHERE tenant = %(t)s AND status = 'active' AND requires_confirmation"
    ),
    "invalid": (
        "SELECT name, count(*) FROM fields"
        " WHERE tenant = %(t)s AND status = 'active' AND invalid GROUP BY name"
    ),
    "lineage": f"""
        WITH RECURSIVE walk (tenant, id, source, depth) AS (
            SELECT tenant, id, source_item_id, 1 FROM fields
            WHERE tenant = %(t)s AND status = 'active' AND source_item_type IN {VAULT}
            UNION ALL
            SELECT tenant, id, source_item_id, 1 FROM assets
            WHERE tenant = %(t)s AND status = 'active' AND source_item_type IN {VAULT}
            UNION ALL
            SELECT walk.tenant, walk.id, up.source_item_id, walk.depth + 1
            FROM walk JOIN (
                SELECT tenant, id, source_item_id FROM fields
                WHERE source_item_type IN {VAULT}
                UNION ALL
                SELECT tenant, id, source_item_id FROM assets
                WHERE source_item_type IN {VAULT}
            ) AS up ON up.tenant = walk.tenant AND up.id = walk.source
            WHERE walk.depth < {DEPTH_LIMIT}
        )
        SELECT depth, count(*) FROM (SELECT id, max(depth) AS depth FROM walk GROUP BY id) AS d
        GROUP BY depth
    """,
}


@metric("report_s", unit="s", target=ratio_max(2))
def report(ctx: Context) -> Measurement:
    """vault.report([tenant]) vs the raw GROUP BY queries of the same counts."""
    vault, backend, conn, data = ctx.vault, ctx.backend, ctx.raw, ctx.data
    if not backend.is_postgres:
        return Measurement(ccv=None, raw=None, note="PostgreSQL only (named parameters)")
    now = data.base_time
    params = {
        "t": data.tenant,
        "now": backend.ts(now),
        "day": backend.ts(now + timedelta(days=1)),
        "week": backend.ts(now + timedelta(days=7)),
    }
    found: dict[str, Any] = {}

    def ccv() -> None:
        found["ccv"] = vault.report([data.tenant], now=now).tenants[data.tenant]

    def raw() -> None:
        found["raw"] = {name: conn.execute(sql, params).fetchall() for name, sql in RAW.items()}

    conn.execute("SET jit = off")
    try:
        ccv()
        raw()
        _agree(found["ccv"], found["raw"])
        ccv_s, raw_s = alternating(RUNS, lambda _: ccv(), lambda _: raw())
    finally:
        conn.execute("RESET jit")
    counted = found["ccv"]
    return Measurement(
        ccv=statistics.median(ccv_s),
        raw=statistics.median(raw_s),
        extra={
            "runs": RUNS,
            "statistic": "median",
            "field_rows": sum(counted.fields.values()),
            "customers": counted.customers,
            "lineage_max_depth": counted.lineage.max_depth,
            "ccv_s": [round(s, 4) for s in ccv_s],
            "raw_s": [round(s, 4) for s in raw_s],
        },
    )


def _agree(counted: Any, raw: dict[str, list[Any]]) -> None:
    """The two sides counted the same (a benchmark of different work would mean nothing)."""
    expiry = [
        sum(int(row[i] or 0) for key in ("fields_expiry", "assets_expiry") for row in raw[key])
        for i in range(3)
    ]
    pairs = {
        "customers": (counted.customers, raw["customers"][0][0] - raw["aliases"][0][0]),
        "identities": (counted.identities, raw["identities"][0][0]),
        "fields": ({k: v for k, v in counted.fields.items() if v}, dict(raw["fields"])),
        "assets": ({k: v for k, v in counted.assets.items() if v}, dict(raw["assets"])),
        "overdue": (counted.overdue, expiry[0]),
        "expiring": ((counted.expiring["1d"], counted.expiring["7d"]), (expiry[1], expiry[2])),
        "confirm": (counted.requires_confirmation, raw["requires_confirmation"][0][0]),
        "invalid": (counted.invalid, dict(raw["invalid"])),
        "lineage": (
            {int(k): v for k, v in counted.lineage.histogram.items() if int(k) > 0},
            {int(depth): n for depth, n in raw["lineage"]},
        ),
    }
    differ = {name: pair for name, pair in pairs.items() if pair[0] != pair[1]}
    if differ:
        raise AssertionError(f"ccv report and the raw queries disagree: {differ}")
