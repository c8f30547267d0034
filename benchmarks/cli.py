"""`python -m benchmarks`: run the suite, print the table, write the JSON report."""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.backend import Backend, BackendError
from benchmarks.context import Context
from benchmarks.registry import REGISTRY, SPEC_METRICS, Measurement, Outcome

DEFAULT_SCALE = 100_000
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results.json"
# Metrics that need no data first; those that change data (new versions, imports) last.
RUN_ORDER = (
    "validate_us_per_field",
    "cli_help_ms",
    "requirements_validate_files_per_s",
    "llm_prompt_tokens",
    "llm_overhead_ms_per_file",
    "profile_read_p99_ms",
    "profile_read_p50_ms",
    "trace_depth100_ms",
    "gaps_p99_ms",
    "report_s",
    "identity_resolve_p99_ms",
    "export_peak_rss_mb",
    "export_rows_per_s",
    "cached_read_p99_ms",
    "cached_read_checked_p99_ms",
    "expire_dry_run_s",
    "expire_apply_s",
    "expire_flow_overhead_s",
    "save_field_p99_ms",
    "merge_s",
    "cache_hit_rate",
    "import_rows_per_s",
)

# Piped output (CI logs, `| tee`) gets a width that fits the table instead of Rich's 80 columns.
out = Console() if sys.stdout.isatty() else Console(width=120)
err = Console(stderr=True) if sys.stderr.isatty() else Console(stderr=True, width=120)


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _scales(text: str) -> list[int]:
    values = []
    for part in text.split(","):
        part = part.strip().lower()
        if not part:
            continue
        factor = 1
        if part[-1] in "km":
            factor = 1000 if part[-1] == "k" else 1_000_000
            part = part[:-1]
        values.append(_positive_int(part) * factor)
    if not values:
        raise argparse.ArgumentTypeError("give at least one scale, e.g. 10000,1000000")
    return sorted(set(values))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    import benchmarks.metrics  # noqa: F401 - registers the metrics

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="ccv performance suite (SPEC §8): every metric measured for ccv and for the "
        "plainest client doing the same work, in the same run.",
    )
    parser.add_argument(
        "--scale",
        type=_positive_int,
        default=DEFAULT_SCALE,
        help=f"profiles in the dataset, 10 fields each (default {DEFAULT_SCALE:,})",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="JSON report file (default benchmarks/results.json)",
    )
    parser.add_argument(
        "--only", default=None, help="comma-separated metric names to run (default: all)"
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the benchmark database if it already holds this scale (grow it if smaller)",
    )
    parser.add_argument(
        "--read-scales",
        type=_scales,
        default=None,
        metavar="N,M,...",
        help="also measure profile_read_p99_ms at each of these scales (e.g. 10k,1m), growing "
        "the dataset; shows whether read latency stays flat",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="server to run on (default: $CCV_DATABASE_URL); the suite uses its own database",
    )
    parser.add_argument(
        "--database-name",
        default="ccv_bench",
        help="name of the benchmark database, dropped and re-created (default ccv_bench)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer samples per metric (a smoke run)"
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when a measured metric misses its target"
    )
    parser.add_argument("--list", action="store_true", help="list the metrics and exit")
    args = parser.parse_args(argv)
    if args.only is not None:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in REGISTRY]
        if unknown:
            pending = [n for n in unknown if n in SPEC_METRICS]
            if pending:
                parser.error(f"not implemented yet: {', '.join(pending)}")
            parser.error(
                f"unknown metric {', '.join(unknown)}; known: {', '.join(sorted(REGISTRY))}"
            )
        args.only = names
    return args


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    if magnitude >= 0.01:
        return f"{value:.3f}"
    return f"{value:.2g}"


def render(outcomes: list[Outcome], pending: list[str], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column, justify in (
        ("metric", "left"),
        ("ccv", "right"),
        ("raw", "right"),
        ("ratio", "right"),
        ("unit", "left"),
        ("target", "left"),
        ("pass/fail", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for outcome in outcomes:
        ok = outcome.ok
        verdict = "[green]pass[/]" if ok else "[red]FAIL[/]" if ok is False else "[yellow]n/a[/]"
        if outcome.measurement.note and ok is None:
            verdict += f" [dim]({outcome.measurement.note})[/]"
        table.add_row(
            outcome.metric.name,
            _fmt(outcome.measurement.ccv),
            _fmt(outcome.measurement.raw),
            _fmt(outcome.ratio),
            outcome.metric.unit,
            outcome.target.text,
            verdict,
        )
    for name in pending:
        table.add_row(name, "", "", "", "", "", "[dim]pending (not implemented yet)[/]")
    return table


def run_metric(ctx: Context, name: str) -> Outcome:
    metric = REGISTRY[name]
    err.print(f"[bold]{name}[/]: {metric.description}")
    started = time.perf_counter()
    try:
        measurement = metric.function(ctx)
    except Exception as exc:  # noqa: BLE001 - one broken metric must not sink the report
        err.print(f"[red]  {name} failed:[/] {type(exc).__name__}: {exc}")
        if os.environ.get("BENCH_DEBUG"):
            traceback.print_exc()
        measurement = Measurement(ccv=None, raw=None, note=f"error: {type(exc).__name__}: {exc}")
    outcome = Outcome(metric, measurement, time.perf_counter() - started, ctx.backend.kind)
    err.print(
        f"  ccv {_fmt(measurement.ccv)} / raw {_fmt(measurement.raw)} {metric.unit}"
        f" in {outcome.seconds:.1f}s"
    )
    return outcome


def read_scales(ctx: Context, scales: list[int], workdir: Path) -> dict[str, Any]:
    """profile_read_p99_ms at each scale, growing (or rebuilding) the dataset as needed."""
    from benchmarks.dataset import prepare
    from benchmarks.metrics.reads import measure_reads

    results: dict[str, Any] = {}
    for scale in scales:
        ctx.close()
        ctx.dataset = prepare(ctx.backend, scale, reuse=True, workdir=workdir, log=err.print)
        rows = ctx.backend.execute(
            ctx.raw, "SELECT count(*) FROM fields WHERE tenant = %s", (ctx.data.tenant,)
        ).fetchone()[0]
        err.print(f"[bold]profile_read_p99_ms[/] at {scale:,} profiles ({rows:,} field rows)")
        measurement = measure_reads(ctx, ctx.reads)
        ratio = (
            measurement.ccv / measurement.raw
            if measurement.ccv is not None and measurement.raw
            else None
        )
        results[str(scale)] = {
            "profiles": scale,
            "field_rows": rows,
            "ccv": measurement.ccv,
            "raw": measurement.raw,
            "ratio": ratio,
            "unit": "ms",
            "extra": measurement.extra,
        }
        err.print(f"  ccv p99 {_fmt(measurement.ccv)} ms / raw p99 {_fmt(measurement.raw)} ms")
    return results


def render_scales(results: dict[str, Any]) -> Table:
    table = Table(title="profile read latency by scale", title_justify="left")
    for column in ("profiles", "field rows", "ccv p50", "ccv p99", "raw p50", "raw p99", "ratio"):
        table.add_column(column, justify="right")
    for entry in results.values():
        extra = entry["extra"]
        table.add_row(
            f"{entry['profiles']:,}",
            f"{entry['field_rows']:,}",
            _fmt(extra["ccv_ms"]["p50"]),
            _fmt(entry["ccv"]),
            _fmt(extra["raw_ms"]["p50"]),
            _fmt(entry["raw"]),
            _fmt(entry["ratio"]),
        )
    return table


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for name in SPEC_METRICS:
            metric = REGISTRY.get(name)
            if metric is None:
                out.print(f"{name:36} [dim]not implemented yet[/]")
            else:
                sqlite = metric.sqlite_target
                also = f" (SQLite: {sqlite.text})" if sqlite is not None else ""
                out.print(f"{name:36} {metric.target.text:14} {metric.description}{also}")
        return 0
    url = args.database_url or os.environ.get("CCV_DATABASE_URL")
    if not url:
        err.print(
            "[red]error:[/] set CCV_DATABASE_URL (or --database-url) to a PostgreSQL server, "
            "e.g. postgresql://postgres@127.0.0.1:5432/postgres"
        )
        return 2
    try:
        backend = Backend(url, args.database_name)
        server = backend.check_server()
    except BackendError as exc:
        err.print(f"[red]error:[/] {exc}")
        return 2
    if not backend.is_postgres:
        err.print(
            "[dim]SQLite, the embedded default: the read figures count, against its own raw "
            "baselines (sqlite3); metrics that need PostgreSQL are n/a.[/]"
        )
    if not os.environ.get("CCV_REDIS_URL"):
        err.print("[dim]CCV_REDIS_URL is not set: the cache metrics will be n/a.[/]")
    selected = args.only or list(REGISTRY)
    names = sorted(selected, key=lambda n: RUN_ORDER.index(n) if n in RUN_ORDER else len(RUN_ORDER))
    pending = [] if args.only else [n for n in SPEC_METRICS if n not in REGISTRY]
    started_at = datetime.now(UTC)
    load_before = _loadavg()
    err.print(f"ccv benchmarks on {server}, database {backend.describe()}, scale {args.scale:,}")
    cpus = os.cpu_count() or 1
    if load_before and load_before[0] > 0.5 * cpus:
        err.print(
            f"[yellow]warning: load average {load_before[0]:.1f} on {cpus} CPUs: other work "
            "on this machine will show up in the latencies.[/]"
        )
    with tempfile.TemporaryDirectory(prefix="ccv-bench-") as tmp:
        workdir = Path(tmp)
        ctx = Context(backend=backend, workdir=workdir, log=err.print)
        if args.quick:
            ctx.reads, ctx.writes, ctx.traces = 300, 150, 40
        try:
            if any(REGISTRY[n].needs_dataset for n in names):
                from benchmarks.dataset import prepare

                began = time.perf_counter()
                ctx.dataset = prepare(
                    backend, args.scale, reuse=args.reuse, workdir=workdir, log=err.print
                )
                err.print(f"dataset ready in {time.perf_counter() - began:.1f}s")
            outcomes = {name: run_metric(ctx, name) for name in names}
            scales = read_scales(ctx, args.read_scales, workdir) if args.read_scales else None
        finally:
            ctx.close()
    ordered = [outcomes[n] for n in SPEC_METRICS if n in outcomes]
    ordered += [o for n, o in outcomes.items() if n not in SPEC_METRICS]
    title = f"ccv benchmarks — {server}, {args.scale:,} profiles"
    out.print(render(ordered, pending, title))
    if scales:
        out.print(render_scales(scales))
    report: dict[str, Any] = {
        "scale": args.scale,
        "metrics": {o.metric.name: o.as_json() for o in ordered},
        "backend": backend.kind,
        "counts": True,
        "server": server,
        "database": backend.describe(),
        "started_at": started_at.isoformat(),
        "quick": args.quick,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_before": load_before,
        "loadavg_after": _loadavg(),
    }
    if pending:
        report["pending"] = pending
    if scales:
        report["read_scales"] = scales
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    err.print(f"report written to {args.output}")
    failed = [o.metric.name for o in ordered if o.ok is False]
    if failed:
        err.print(f"[red]targets missed:[/] {', '.join(failed)}")
    return 1 if args.check and failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
