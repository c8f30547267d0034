"""What ccv tells operators while it runs: log events and Prometheus process metrics.

Log events go to the `ccv` logger: one record per event, its message the event name, its fields
ids, names, codes and counts (never a value: callers pass no value, and the PII test greps for
them). `configure_logging` puts them on stderr as text or one JSON object per line (`ts`,
`level`, `event`, `tenant`, the event's fields); a library user's own logging config applies
otherwise.

Process metrics live in prometheus_client's default registry when it is installed (extra
`ccv[metrics]`), so an agent runtime that embeds ccv exposes them on its own `/metrics`:

- `ccv_cache_requests_total{result}`: hit, miss, error (this process's lookups);
- `ccv_status_transitions_total{kind,from_status,to_status}`;
- `ccv_validation_failures_total{field,code}`;
- `ccv_lineage_depth` (histogram of traced chains);
- `ccv_fill_outcomes_total{outcome}`, `ccv_extraction_outcomes_total{outcome}`;
- `ccv_operation_seconds{operation}` (histogram of library operations).

No metric is labelled by tenant or customer: their number is unbounded (`ccv report` labels its
gauges by tenant; it counts what the database holds, once per scrape).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("ccv")
log.addHandler(logging.NullHandler())

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")


def event(
    name: str,
    tenant: str | None = None,
    *,
    level: int = logging.INFO,
    logger: logging.Logger = log,
    **fields: Any,
) -> None:
    """Log one event (its fields: ids, names, codes, counts; never a value) on `logger` (a
    child of `ccv`)."""
    if logger.isEnabledFor(level):
        extra = {"ccv_event": name, "ccv_tenant": tenant, "ccv_fields": fields}
        logger.log(level, name, extra=extra)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, event, tenant and the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "event": getattr(record, "ccv_event", None) or "message",
            "tenant": getattr(record, "ccv_tenant", None),
        }
        fields = getattr(record, "ccv_fields", None)
        if fields:
            entry.update({k: v for k, v in fields.items() if k not in entry})
        else:
            entry["message"] = record.getMessage()
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`ts level event tenant=T key=value ...` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="seconds")
        parts = [ts, record.levelname.lower()]
        name = getattr(record, "ccv_event", None)
        if name is None:
            parts.append(record.getMessage())
        else:
            parts.append(name)
            tenant = getattr(record, "ccv_tenant", None)
            if tenant is not None:
                parts.append(f"tenant={tenant}")
            fields = getattr(record, "ccv_fields", None) or {}
            parts.extend(f"{k}={json.dumps(v, default=str)}" for k, v in fields.items())
        return " ".join(parts)


def configure_logging(fmt: str = "text", level: str = "warning") -> None:
    """Send ccv's events to stderr in `fmt` from `level` up (the CLI's --log-format/--log-level)."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}")
    if level not in LOG_LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LOG_LEVELS)}")
    for handler in list(log.handlers):
        if getattr(handler, "ccv_stderr", False):
            log.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.ccv_stderr = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    log.addHandler(handler)
    log.setLevel(level.upper())


# --- process metrics ----------------------------------------------------------------------------


class _Metrics:
    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        self.cache = Counter(
            "ccv_cache_requests", "Read cache lookups of this process by result.", ["result"]
        )
        self.transitions = Counter(
            "ccv_status_transitions",
            "Item status transitions made by this process.",
            ["kind", "from_status", "to_status"],
        )
        self.validation = Counter(
            "ccv_validation_failures",
            "Values that failed their definitions, by field and failure code.",
            ["field", "code"],
        )
        self.lineage = Histogram(
            "ccv_lineage_depth",
            "Length of the lineage chains traced (vault items above the traced item).",
            buckets=(0, 1, 2, 3, 4, 6, 8, 16, 32, 64),
        )
        self.fill = Counter("ccv_fill_outcomes", "LLM gap-fill outcomes per field.", ["outcome"])
        self.extraction = Counter(
            "ccv_extraction_outcomes", "Requirement extraction outcomes per file.", ["outcome"]
        )
        self.latency = Histogram(
            "ccv_operation_seconds",
            "Latency of ccv library operations.",
            ["operation"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30),
        )


_metrics: _Metrics | None = None
_disabled = False
_enabling = threading.Lock()


def enable() -> _Metrics | None:
    """The process metrics, registered once in the default registry; None without the extra.
    Threads of one process may get here first together: one registers, the others wait."""
    global _metrics, _disabled
    if _metrics is None and not _disabled:
        with _enabling:
            if _metrics is None and not _disabled:
                try:
                    _metrics = _Metrics()
                except ImportError:
                    _disabled = True
    return _metrics


def cache_lookups(result: str, count: int = 1) -> None:
    if count and (metrics := enable()) is not None:
        _child(metrics, "cache", result).inc(count)


def transitions(kind: str, from_status: str | None, to_status: str, count: int = 1) -> None:
    if count and (metrics := enable()) is not None:
        metrics.transitions.labels(kind, from_status or "new", to_status).inc(count)


def validation_failure(field: str, code: str) -> None:
    if (metrics := enable()) is not None:
        metrics.validation.labels(field, code).inc()


def lineage_depth(depth: int) -> None:
    if (metrics := enable()) is not None:
        metrics.lineage.observe(depth)


def fill_outcome(outcome: str, count: int = 1) -> None:
    if count and (metrics := enable()) is not None:
        metrics.fill.labels(outcome).inc(count)


def extraction_outcome(outcome: str, count: int = 1) -> None:
    if count and (metrics := enable()) is not None:
        metrics.extraction.labels(outcome).inc(count)


@contextlib.contextmanager
def timed(operation: str) -> Iterator[None]:
    """Observe the block's latency in `ccv_operation_seconds{operation}` (errors included)."""
    metrics = enable()
    if metrics is None:
        yield
        return
    child = _child(metrics, "latency", operation)
    started = time.perf_counter()
    try:
        yield
    finally:
        child.observe(time.perf_counter() - started)


# Labelled children of the hot paths' metrics (every read counts a cache lookup and times
# itself), looked up once per metrics object: labels() costs a few microseconds each time.
_children: dict[tuple[str, str], tuple[Any, Any]] = {}


def _child(metrics: Any, family: str, label: str) -> Any:
    known = _children.get((family, label))
    if known is None or known[0] is not metrics:
        known = _children[(family, label)] = (metrics, getattr(metrics, family).labels(label))
    return known[1]
