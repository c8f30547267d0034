"""identity_resolve_p99_ms and merge_s: customer identity (SPEC §10).

identity_resolve_p99_ms: `vault.resolve_identity` of a known WhatsApp id vs the raw indexed
SELECT of its customer, one identity per customer of the dataset (written once, server-side,
before timing).

merge_s: `vault.merge_customers(..., apply=True)` of two customers holding 100 versions each
(10 names x 10 versions; on half the names the source's newest version is newer, so the merge
supersedes one version per name) vs the same work by hand in one transaction: lock both
profile rows, read both customers' versions, decide the losers, supersede them, move the
versions, make the alias and write the audit events. Every run merges a fresh pair; the figure
is the median of the runs, each side on its own pairs.
"""

from __future__ import annotations

import statistics
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks.context import Context
from benchmarks.registry import REPORTED, Measurement, metric, ratio_max
from benchmarks.stats import alternating, paired_latencies, probe_statements, summary

WARMUP = 200
BUDGET_S = 120.0
CHANNEL = "whatsapp"

RAW_RESOLVE = (
    "SELECT customer FROM identities WHERE tenant = %s AND channel = %s AND channel_user_id = %s"
)
SEED_IDENTITIES = """
INSERT INTO identities (tenant, channel, channel_user_id, customer, verified, linked_at, source)
SELECT tenant, %s, 'wa-' || customer, customer, false, %s, 'bench'
FROM profiles WHERE tenant = %s AND merged_into IS NULL
ON CONFLICT DO NOTHING
"""


def _seed_identities(ctx: Context) -> int:
    backend, conn, tenant = ctx.backend, ctx.raw, ctx.data.tenant
    with backend.transaction(conn):
        backend.execute(conn, SEED_IDENTITIES, (CHANNEL, backend.ts(datetime.now(UTC)), tenant))
    row = backend.execute(
        conn, "SELECT count(*) FROM identities WHERE tenant = %s", (tenant,)
    ).fetchone()
    return int(row[0])


@metric("identity_resolve_p99_ms", unit="ms", target=ratio_max(3), sqlite_target=REPORTED)
def identity_resolve(ctx: Context) -> Measurement:
    """vault.resolve_identity vs a raw indexed SELECT of the identity's customer."""
    vault, backend, conn, tenant = ctx.vault, ctx.backend, ctx.raw, ctx.data.tenant
    identities = _seed_identities(ctx)
    customers = ctx.sample_customers(ctx.reads + WARMUP)
    statement = backend.sql(RAW_RESOLVE)

    def ccv(customer: str) -> str:
        return vault.resolve_identity(tenant, CHANNEL, f"wa-{customer}").customer

    def raw(customer: str) -> str:
        row = conn.execute(statement, (tenant, CHANNEL, f"wa-{customer}")).fetchone()
        return str(row[0])

    probe = customers[0]
    if ccv(probe) != probe or raw(probe) != probe:
        raise AssertionError(f"the identity of {probe} does not resolve to it")
    ccv_ms, raw_ms = paired_latencies(customers, ccv, raw, warmup=WARMUP, budget_s=BUDGET_S)
    ccv_s, raw_s = summary(ccv_ms), summary(raw_ms)
    return Measurement(
        ccv=ccv_s["p99"],
        raw=raw_s["p99"],
        extra={
            "ccv_ms": ccv_s,
            "raw_ms": raw_s,
            "identities": identities,
            "ccv_sql_one_call": probe_statements(vault, lambda: ccv(probe)),
        },
    )


# --- merge_s -----------------------------------------------------------------------------------

RUNS = 5
NAMES = 10
VERSIONS = 10
BASE = datetime(2026, 1, 1, tzinfo=UTC)


def _pair_records(tenant: str, source: str, target: str) -> list[dict[str, Any]]:
    """10 names x 10 versions for each; on even names the source holds the newest version."""
    records = []
    for owner, offset in ((target, 0), (source, 1)):
        for n in range(NAMES):
            lead = offset if n % 2 == 0 else 1 - offset
            for v in range(VERSIONS):
                at = BASE + timedelta(hours=2 * v + lead, minutes=n)
                records.append(
                    {
                        "tenant": tenant,
                        "customer": owner,
                        "id": str(uuid.uuid4()),
                        "name": f"merge_field_{n}",
                        "value": f"{owner}-{n}-{v}",
                        "source": "user_provided",
                        "collected_at": at.isoformat(),
                    }
                )
    return records


def _make_pairs(ctx: Context, count: int, label: str) -> list[tuple[str, str]]:
    import json

    tenant = ctx.data.tenant
    pairs = [(f"merge-{label}-{i}-s", f"merge-{label}-{i}-t") for i in range(count)]
    records = [r for s, t in pairs for r in _pair_records(tenant, s, t)]
    path = ctx.workdir / f"merge-{label}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    from ccv.domain.enums import ValidationMode

    result = ctx.vault.import_files([path], validation_mode=ValidationMode.DISABLED, actor="bench")
    if result.rejected or result.inserted != len(records):
        raise AssertionError(f"merge pairs: {result.rejected} rejected of {len(records)}")
    return pairs


RAW_LOCK = (
    "SELECT customer FROM profiles WHERE tenant = %s AND customer = ANY(%s)"
    " ORDER BY customer FOR UPDATE"
)
RAW_VERSIONS = (
    "SELECT id, customer, name, status, collected_at FROM fields"
    " WHERE tenant = %s AND customer = ANY(%s)"
)
RAW_SUPERSEDE = """
UPDATE fields AS f SET status = 'superseded', superseded_by_id = m.winner, superseded_at = %s,
       updated_at = %s
FROM unnest(%s::varchar[], %s::varchar[]) AS m(id, winner)
WHERE f.tenant = %s AND f.id = m.id
"""
RAW_MOVE = "UPDATE {table} SET customer = %s, updated_at = %s WHERE tenant = %s AND customer = %s"
RAW_MOVE_IDENTITIES = "UPDATE identities SET customer = %s WHERE tenant = %s AND customer = %s"
RAW_ALIAS = (
    "UPDATE profiles SET merged_into = %s, merged_at = %s, updated_at = %s"
    " WHERE tenant = %s AND (customer = %s OR merged_into = %s)"
)
RAW_AUDIT = """
INSERT INTO audit_events (tenant, customer, item_id, item_kind, item_name, event, from_status,
                          to_status, actor, at, details)
SELECT %s, %s, id, 'field', name, ev, fs, ts, 'bench', %s, '{}'::jsonb
FROM unnest(%s::varchar[], %s::varchar[], %s::varchar[], %s::varchar[], %s::varchar[])
     AS a(id, name, ev, fs, ts)
"""


def _raw_merge(ctx: Context, source: str, target: str) -> int:
    """The merge by hand; returns how many versions it superseded."""
    backend, conn, tenant = ctx.backend, ctx.raw, ctx.data.tenant
    now = datetime.now(UTC)
    with backend.transaction(conn):
        conn.execute(RAW_LOCK, (tenant, [source, target])).fetchall()
        rows = conn.execute(RAW_VERSIONS, (tenant, [source, target])).fetchall()
        heads: dict[str, Any] = {}
        for row in rows:
            if row[3] in ("active", "expired"):
                best = heads.get(row[2])
                if best is None or (row[4], row[0]) > (best[4], best[0]):
                    heads[row[2]] = row
        losers = [
            (row[0], heads[row[2]][0])
            for row in rows
            if row[2] in heads
            and row[1] != heads[row[2]][1]
            and row[3] != "superseded"
            and (row[4], row[0]) < (heads[row[2]][4], heads[row[2]][0])
        ]
        conn.execute(
            RAW_SUPERSEDE,
            (now, now, [i for i, _ in losers], [w for _, w in losers], tenant),
        )
        for table in ("fields", "assets"):
            conn.execute(RAW_MOVE.format(table=table), (target, now, tenant, source))
        conn.execute(RAW_MOVE_IDENTITIES, (target, tenant, source))
        conn.execute(RAW_ALIAS, (target, now, now, tenant, source, source))
        lost = {i for i, _ in losers}
        names = {row[0]: row[2] for row in rows}
        events = [(i, names[i], "status_change") for i in sorted(lost)]
        events += [(row[0], row[2], "merge") for row in rows if row[1] == source]
        conn.execute(
            RAW_AUDIT,
            (
                tenant,
                target,
                now,
                [e[0] for e in events],
                [e[1] for e in events],
                [e[2] for e in events],
                ["active"] * len(events),
                ["superseded" if e[0] in lost else "active" for e in events],
            ),
        )
    return len(losers)


@metric("merge_s", unit="s", target=ratio_max(3))
def merge(ctx: Context) -> Measurement:
    """vault.merge_customers of two customers of 100 versions each vs the same SQL by hand."""
    if not ctx.backend.is_postgres:
        return Measurement(ccv=None, raw=None, note="PostgreSQL only (array parameters)")
    vault, tenant = ctx.vault, ctx.data.tenant
    ccv_pairs, raw_pairs = _make_pairs(ctx, RUNS, "ccv"), _make_pairs(ctx, RUNS, "raw")
    superseded: set[int] = set()

    def ccv(run: int) -> None:
        source, target = ccv_pairs[run]
        result = vault.merge_customers(tenant, source, target, apply=True, actor="bench")
        superseded.add(len(result.superseded))

    def raw(run: int) -> None:
        superseded.add(_raw_merge(ctx, *raw_pairs[run]))

    ccv_s, raw_s = alternating(RUNS, ccv, raw)
    if superseded != {NAMES}:  # one loser per name, on both sides
        raise AssertionError(f"the merges superseded {sorted(superseded)} versions, not {NAMES}")
    return Measurement(
        ccv=statistics.median(ccv_s),
        raw=statistics.median(raw_s),
        extra={
            "runs": RUNS,
            "statistic": "median",
            "versions_per_customer": NAMES * VERSIONS,
            "ccv_s": [round(s, 4) for s in ccv_s],
            "raw_s": [round(s, 4) for s in raw_s],
        },
    )
