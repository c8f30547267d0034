"""Small timing helpers: percentiles and the paired ccv/raw latency loop."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between closest ranks."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(samples_ms: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(samples_ms),
        "p50": round(percentile(samples_ms, 50), 4),
        "p90": round(percentile(samples_ms, 90), 4),
        "p99": round(percentile(samples_ms, 99), 4),
        "max": round(max(samples_ms), 4) if samples_ms else math.nan,
        "mean": round(statistics.fmean(samples_ms), 4) if samples_ms else math.nan,
    }


def probe_statements(vault: Any, function: Callable[[], Any]) -> dict[str, Any] | None:
    """The SQL one ccv call runs (see benchmarks.probe), or None if the vault hides its engine."""
    engine = getattr(getattr(vault, "db", None), "engine", None)
    if engine is None:
        return None
    from benchmarks.probe import statements

    return statements(engine, function)


def time_call(function: Callable[[], Any]) -> float:
    """Wall time of one call in milliseconds."""
    start = time.perf_counter_ns()
    function()
    return (time.perf_counter_ns() - start) / 1e6


def alternating(
    runs: int, ccv: Callable[[int], Any], raw: Callable[[int], Any]
) -> tuple[list[float], list[float]]:
    """Seconds of `ccv(run)` and `raw(run)` for each run, which side goes first alternating
    (a warm cache or a busy moment does not always favour the same side)."""
    ccv_s: list[float] = []
    raw_s: list[float] = []
    for run in range(runs):
        pair = [(ccv, ccv_s), (raw, raw_s)]
        for function, sink in pair if run % 2 == 0 else reversed(pair):
            started = time.perf_counter()
            function(run)
            sink.append(time.perf_counter() - started)
    return ccv_s, raw_s


def _time_one(function: Callable[[T], Any], item: T) -> float:
    start = time.perf_counter_ns()
    function(item)
    return (time.perf_counter_ns() - start) / 1e6


def paired_latencies(
    items: Sequence[T],
    ccv: Callable[[T], Any],
    raw: Callable[[T], Any],
    *,
    warmup: int,
    budget_s: float | None = None,
    min_samples: int = 20,
) -> tuple[list[float], list[float]]:
    """Run ccv and raw on every item, alternating which goes first, after a warm-up.

    Alternating the order keeps a cache warmed by one side from always favouring the other.
    With `budget_s`, stops early once that much time went by and `min_samples` pairs are in
    (a pathologically slow call must not stall the suite). Returns per-call latencies in
    milliseconds, warm-up excluded.
    """
    for item in items[:warmup]:
        ccv(item)
        raw(item)
    ccv_ms: list[float] = []
    raw_ms: list[float] = []
    deadline = time.perf_counter() + budget_s if budget_s is not None else None
    for index, item in enumerate(items[warmup:]):
        if deadline is not None and index >= min_samples and time.perf_counter() > deadline:
            break
        if index % 2 == 0:
            ccv_ms.append(_time_one(ccv, item))
            raw_ms.append(_time_one(raw, item))
        else:
            raw_ms.append(_time_one(raw, item))
            ccv_ms.append(_time_one(ccv, item))
    return ccv_ms, raw_ms
