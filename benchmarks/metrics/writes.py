"""save_field_p99_ms: one new version of an existing field, supersession included."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

from benchmarks.context import Context
from benchmarks.registry import REPORTED, Measurement, metric, ratio_max
from benchmarks.stats import paired_latencies, probe_statements, summary

WARMUP = 50
BUDGET_S = 180.0
FIELD = "loyalty_points"

RAW_SUPERSEDE = (
    "UPDATE fields SET status = 'superseded', superseded_by_id = %s, superseded_at = %s,"
    " updated_at = %s"
    " WHERE tenant = %s AND customer = %s AND name = %s AND status = 'active'"
)
RAW_INSERT = (
    "INSERT INTO fields (tenant, id, customer, name, value, value_type, source, source_metadata,"
    " status, confidence, requires_confirmation, verified, collected_at, updated_at,"
    " field_definition_id, content_hash)"
    " VALUES (%s, %s, %s, %s, {json}, 'integer', 'user_provided', {json}, 'active', 1.0,"
    " {false}, {false}, %s, %s, %s, %s)"
)


def raw_writer(ctx: Context) -> Any:
    backend, conn, data = ctx.backend, ctx.raw, ctx.data
    json_param = "CAST(%s AS JSONB)" if backend.is_postgres else "%s"
    false = "false" if backend.is_postgres else "0"
    supersede = backend.sql(RAW_SUPERSEDE)
    insert = backend.sql(RAW_INSERT.format(json=json_param, false=false))
    definition = data.definition_ids.get(FIELD)

    def save(job: tuple[str, int]) -> None:
        customer, value = job
        new_id = str(uuid.uuid4())
        now = backend.ts(datetime.now(UTC))
        digest = hashlib.sha256(f"{customer}/{FIELD}/{value}/{new_id}".encode()).hexdigest()
        with backend.transaction(conn):
            conn.execute(supersede, (new_id, now, now, data.tenant, customer, FIELD))
            conn.execute(
                insert,
                (
                    data.tenant,
                    new_id,
                    customer,
                    FIELD,
                    str(value),
                    "{}",
                    now,
                    now,
                    definition,
                    digest,
                ),
            )

    return save


@metric("save_field_p99_ms", unit="ms", target=ratio_max(3), sqlite_target=REPORTED)
def save_field(ctx: Context) -> Measurement:
    """vault.save_field of a new version vs raw UPDATE (supersede) + INSERT in one transaction."""
    vault, tenant = ctx.vault, ctx.data.tenant
    jobs = [(c, ctx.rng.randrange(100000)) for c in ctx.sample_customers(ctx.writes + WARMUP)]
    raw = raw_writer(ctx)

    def ccv(job: tuple[str, int]) -> None:
        customer, value = job
        vault.save_field(tenant, customer, FIELD, value, source="user_provided", actor="bench")

    ccv_ms, raw_ms = paired_latencies(jobs, ccv, raw, warmup=WARMUP, budget_s=BUDGET_S)
    # Both sides superseded the previous active version every time: one active row remains.
    customer = jobs[-1][0]
    active = ctx.backend.execute(
        ctx.raw,
        "SELECT count(*) FROM fields WHERE tenant = %s AND customer = %s AND name = %s"
        " AND status = 'active'",
        (tenant, customer, FIELD),
    ).fetchone()[0]
    if active != 1:
        raise AssertionError(f"{customer} has {active} active {FIELD} versions after the run")
    ccv_s, raw_s = summary(ccv_ms), summary(raw_ms)
    sql = probe_statements(vault, lambda: ccv((customer, 1)))
    return Measurement(
        ccv=ccv_s["p99"],
        raw=raw_s["p99"],
        extra={"ccv_ms": ccv_s, "raw_ms": raw_s, "ccv_sql_one_call": sql},
    )
