"""import_rows_per_s: a JSONL file of new customers' fields, ccv import vs PostgreSQL COPY.

Both sides load the same file into the same logged `fields` table with all its indexes, under two
scratch tenants that are deleted afterwards: ccv through `vault.import_files` (parse, structural
checks, schema validation, lineage, supersession, one transaction), raw by reading the file,
parsing each line with orjson and COPYing the same columns (plus the profile rows) in one
transaction; the raw side computes `expires_at` from the schema's retention as ccv does, so both
store the same rows.
"""

from __future__ import annotations

import hashlib
import statistics
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from benchmarks.context import Context
from benchmarks.dataset import (
    AGENT,
    FIELD_COLUMNS,
    FIELDS,
    PROFILE_COLUMNS,
    mix,
    schema_yaml,
    value_json,
)
from benchmarks.registry import REPORTED, Measurement, metric, ratio_min

CCV_TENANT = "bench-import"
RAW_TENANT = "bench-import-raw"
MAX_ROWS = 100_000


def import_size(scale: int) -> int:
    return max(len(FIELDS), min(MAX_ROWS, scale))


def write_jsonl(path: Path, rows: int, tenant: str, base_time: datetime) -> None:
    """`rows` field records: 10 per new customer, ids given, every value valid for the schema."""
    lines = []
    for n in range(rows):
        customer, index = divmod(n, len(FIELDS))
        h = mix(10**9 + n)
        record = {
            "kind": "field",
            "tenant": tenant,
            "customer": f"imp{customer:08d}",
            "id": str(uuid.uuid4()),
            "name": FIELDS[index].name,
            "value": orjson.loads(value_json(index, customer, h)),
            "source": "imported",
            "collected_at": (base_time - timedelta(minutes=h % 100000)).isoformat(),
        }
        lines.append(orjson.dumps(record))
    path.write_bytes(b"\n".join(lines) + b"\n")


def cleanup(ctx: Context) -> None:
    conn, backend = ctx.raw, ctx.backend
    with backend.transaction(conn):
        for table in ("fields", "assets", "profiles", "audit_events"):
            backend.execute(
                conn, f"DELETE FROM {table} WHERE tenant IN (%s, %s)", (CCV_TENANT, RAW_TENANT)
            )
    if backend.is_postgres:
        conn.execute("VACUUM (ANALYZE) fields, profiles, audit_events")


def raw_copy(ctx: Context, path: Path, definition_ids: dict[str, str]) -> int:
    """Read, parse and COPY the file like a hand-written loader would; returns rows loaded."""
    backend, conn = ctx.backend, ctx.raw
    value_types = {spec.name: spec.value_type for spec in FIELDS}
    # The same rows as ccv stores: a field with retention_days expires that long after it was
    # collected (it then has an entry in the expiry index, too).
    retention = {
        spec.name: timedelta(days=spec.options["retention_days"])
        for spec in FIELDS
        if "retention_days" in spec.options
    }
    now = backend.ts_text(datetime.now(UTC))
    false = backend.false
    customers: set[str] = set()

    def rows() -> Iterator[tuple[str | None, ...]]:
        for line in path.read_bytes().split(b"\n"):
            if not line:
                continue
            record = orjson.loads(line)
            customers.add(record["customer"])
            name = record["name"]
            keep = retention.get(name)
            expires_at = (
                None
                if keep is None
                else backend.ts_text(datetime.fromisoformat(record["collected_at"]) + keep)
            )
            yield (
                RAW_TENANT,
                record["id"],
                record["customer"],
                name,
                orjson.dumps(record["value"]).decode(),
                value_types[name],
                record["source"],
                None,
                None,
                "{}",
                "active",
                None,
                None,
                "1",
                false,
                false,
                None,
                record["collected_at"],
                now,
                expires_at,
                definition_ids.get(name),
                hashlib.sha256(line).hexdigest(),
            )

    with backend.transaction(conn):
        count = backend.copy_rows(conn, "fields", FIELD_COLUMNS, rows())
        backend.copy_rows(
            conn,
            "profiles",
            PROFILE_COLUMNS,
            ((RAW_TENANT, c, now, now) for c in sorted(customers)),
        )
    return count


ROUNDS = 3


@metric("import_rows_per_s", unit="rows/s", target=ratio_min(0.5), sqlite_target=REPORTED)
def import_rows(ctx: Context) -> Measurement:
    """vault.import_files of a JSONL file (schema applied) vs COPY of the same rows.

    Both sides load into a `fields` table emptied of the scratch tenants and vacuumed before
    every load. ROUNDS rounds (one with --quick), alternating which side goes first, so neither
    always meets the server right after a vacuum or right after the other's writes; each
    side's figure is its median round.
    """
    vault = ctx.vault
    rows = import_size(ctx.data.scale)
    schema = ctx.workdir / "bench-import-schema.yaml"
    schema.write_text(schema_yaml(CCV_TENANT, AGENT), encoding="utf-8")
    vault.apply_schema([schema])
    definition_ids = {d.name: d.id or "" for d in vault.schema(CCV_TENANT)}
    path = ctx.workdir / "bench-import.jsonl"
    write_jsonl(path, rows, CCV_TENANT, ctx.data.base_time)

    def ccv_load() -> float:
        started = time.perf_counter()
        result = vault.import_files([path], actor="bench")
        elapsed = time.perf_counter() - started
        if result.inserted != rows or result.rejected:
            first = result.errors[0].message if result.errors else ""
            raise AssertionError(
                f"ccv imported {result.inserted} of {rows} rows, rejected {result.rejected} {first}"
            )
        return elapsed

    def raw_load() -> float:
        started = time.perf_counter()
        copied = raw_copy(ctx, path, definition_ids)
        elapsed = time.perf_counter() - started
        if copied != rows:
            raise AssertionError(f"COPY loaded {copied} of {rows} rows")
        return elapsed

    rounds = 1 if ctx.reads < 2000 else ROUNDS
    times: dict[str, list[float]] = {"ccv": [], "raw": []}
    try:
        for number in range(rounds):
            order = [("ccv", ccv_load), ("raw", raw_load)]
            for side, load in order if number % 2 == 0 else reversed(order):
                cleanup(ctx)
                times[side].append(load())
    finally:
        cleanup(ctx)
    ccv_s, raw_s = statistics.median(times["ccv"]), statistics.median(times["raw"])
    return Measurement(
        ccv=rows / ccv_s,
        raw=rows / raw_s,
        extra={
            "rows": rows,
            "rounds": rounds,
            "ccv_s": [round(t, 3) for t in times["ccv"]],
            "raw_s": [round(t, 3) for t in times["raw"]],
        },
    )
