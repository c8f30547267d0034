"""export_peak_rss_mb and export_rows_per_s: `ccv profile export --all` of the whole bench tenant.

Memory (SPEC §12: streamed, flat for a tenant of a million versions): the peak resident set of a
`ccv profile export --all --tenant bench` process writing to a pipe that discards it, against the
same command exporting one customer, which is what a ccv process needs anyway (interpreter,
SQLAlchemy, psycopg, the CLI). Flat means the ratio stays near 1 whatever the tenant's size; the
figure is the child's VmHWM (/proc/PID/status), so it counts the whole process.

Throughput: records per second of the same export, against the plainest client doing the same
work: one psycopg server-side cursor per table over the tenant's rows, each row made a dict of
the same keys and dumped with orjson to the same discarding pipe.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from typing import Any

import orjson

from benchmarks.context import Context
from benchmarks.metrics.offline import cli_command
from benchmarks.registry import Measurement, metric, ratio_max, ratio_min

# The full export's figures, measured once by export_peak_rss_mb for export_rows_per_s.
_MEASURED: dict[str, float] = {}

_FIELD_COLUMNS = (
    "customer, id, name, value, value_type, source, source_item_id, source_item_type, "
    "source_metadata, confidence, requires_confirmation, verified, verification_method, "
    "collected_at, expires_at, status, superseded_by_id, superseded_at"
)
_ASSET_COLUMNS = (
    "customer, id, name, asset_type, storage_uri, mime_type, size_bytes, checksum, "
    "source_item_id, source_item_type, derived_from_tool, verified, collected_at, expires_at, "
    "status, superseded_by_id, superseded_at"
)


def _high_water_kib(pid: int) -> int | None:
    """VmHWM of /proc/PID/status: the peak resident set of the process image since its exec
    (ru_maxrss would also count the forking parent's pages)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def _run_export(ctx: Context, *args: str) -> tuple[float, float, str]:
    """(seconds, peak RSS in MiB, stderr) of one `ccv profile export` child, stdout discarded.

    The peak is VmHWM read every 10 ms until the child exits; being a high-water mark, the last
    reading holds the peak of all but the child's last milliseconds."""
    command, why = cli_command()
    if command is None:
        raise RuntimeError(why)
    argv = [*command, "--database-url", ctx.backend.ccv_url, "profile", "export", *args]
    started = time.perf_counter()
    with tempfile.TemporaryFile() as err_file:
        child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err_file)
        peak = 0
        while child.poll() is None:
            peak = max(peak, _high_water_kib(child.pid) or 0)
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        err_file.seek(0)
        err = err_file.read().decode(errors="replace")
    if child.returncode != 0:
        raise RuntimeError(f"ccv profile export exited {child.returncode}: {err.strip()[-300:]}")
    if not peak:
        raise RuntimeError("no /proc/PID/status to read the peak resident set from")
    return elapsed, peak / 1024, err


def _records(ctx: Context) -> int:
    conn = ctx.raw
    counts = [
        conn.execute(f"SELECT count(*) FROM {table} WHERE tenant = %s", ("bench",)).fetchone()[0]
        for table in ("fields", "assets", "identities")
    ]
    return int(sum(counts))


@metric("export_peak_rss_mb", unit="MiB", target=ratio_max(1.5))
def export_memory(ctx: Context) -> Measurement:
    """Peak RSS of `ccv profile export --all` of the bench tenant vs exporting one customer."""
    if not ctx.backend.is_postgres:
        return Measurement(ccv=None, raw=None, note="PostgreSQL only")
    one_s, one_mb, _ = _run_export(ctx, "c00000000", "--tenant", "bench")
    all_s, all_mb, err = _run_export(ctx, "--all", "--tenant", "bench")
    records = _records(ctx)
    _MEASURED.update(all_s=all_s, records=records)
    return Measurement(
        ccv=all_mb,
        raw=one_mb,
        extra={
            "records": records,
            "all_s": round(all_s, 2),
            "one_customer_s": round(one_s, 2),
            "summary": err.strip(),
        },
    )


def _raw_export(ctx: Context) -> tuple[float, int]:
    conn = ctx.raw
    written = 0
    sink = open(os.devnull, "wb")  # noqa: SIM115 - closed below
    started = time.perf_counter()
    try:
        with conn.transaction():
            for kind, table, columns in (
                ("field", "fields", _FIELD_COLUMNS),
                ("asset", "assets", _ASSET_COLUMNS),
            ):
                keys = [c.strip() for c in columns.split(",")]
                with conn.cursor(name=f"raw_export_{table}") as cursor:
                    cursor.itersize = 2000
                    cursor.execute(
                        f"SELECT {columns} FROM {table} WHERE tenant = %s"
                        " ORDER BY customer, name, collected_at, id",
                        ("bench",),
                    )
                    for row in cursor:
                        record: dict[str, Any] = {"kind": kind, "tenant": "bench"}
                        record.update(zip(keys, row, strict=True))
                        sink.write(orjson.dumps(record) + b"\n")
                        written += 1
    finally:
        sink.close()
    return time.perf_counter() - started, written


@metric("export_rows_per_s", unit="rows/s", target=ratio_min(0.5))
def export_rate(ctx: Context) -> Measurement:
    """`ccv profile export --all` records/s vs a psycopg server-side cursor + orjson."""
    if not ctx.backend.is_postgres:
        return Measurement(ccv=None, raw=None, note="PostgreSQL only")
    if not _MEASURED:
        all_s, _, _ = _run_export(ctx, "--all", "--tenant", "bench")
        _MEASURED.update(all_s=all_s, records=_records(ctx))
    all_s, records = _MEASURED["all_s"], int(_MEASURED["records"])
    raw_s, raw_rows = _raw_export(ctx)
    return Measurement(
        ccv=records / all_s,
        raw=raw_rows / raw_s,
        extra={"records": records, "ccv_s": round(all_s, 2), "raw_s": round(raw_s, 2)},
    )
