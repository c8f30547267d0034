"""The metric registry: each metric is a small function registered under its SPEC §8 name.

A metric function takes the run's `Context` and returns a `Measurement` (ccv figure, raw figure,
extras). Its unit, target and whether it needs the benchmark dataset are declared once, here, with
the `metric` decorator, so a new metric (cached reads, gaps, ...) is one function in one module.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from benchmarks.context import Context

# Every metric name SPEC §8 defines, in the order the table shows them.
SPEC_METRICS = (
    "profile_read_p99_ms",
    "save_field_p99_ms",
    "import_rows_per_s",
    "expire_dry_run_s",
    "expire_apply_s",
    "trace_depth100_ms",
    "validate_us_per_field",
    "cli_help_ms",
    "cached_read_p99_ms",
    "cache_hit_rate",
    "requirements_validate_files_per_s",
    "gaps_p99_ms",
)


@dataclass(frozen=True)
class Target:
    """What `ok` means for one metric.

    kind: `ratio_max` (ccv/raw <= value: latencies), `ratio_min` (ccv/raw >= value: throughputs),
    `ccv_max` (an absolute bound on the ccv figure, strict `<`) or `ccv_min` (an absolute floor
    on the ccv figure, `>=`: throughputs with a fixed target).
    """

    kind: str
    value: float

    @property
    def text(self) -> str:
        if self.kind == "ratio_max":
            return f"ratio <= {self.value:g}"
        if self.kind == "ratio_min":
            return f"ratio >= {self.value:g}"
        if self.kind == "ccv_min":
            return f"ccv >= {self.value:g}"
        if self.kind == "reported":
            return "reported"
        return f"ccv < {self.value:g}"

    def check(self, ccv: float | None, ratio: float | None) -> bool | None:
        if self.kind == "reported":
            return None
        if self.kind == "ccv_max":
            return None if ccv is None else ccv < self.value
        if self.kind == "ccv_min":
            return None if ccv is None else ccv >= self.value
        if ratio is None or math.isnan(ratio):
            return None
        if self.kind == "ratio_max":
            return ratio <= self.value
        return ratio >= self.value


def ratio_max(value: float) -> Target:
    return Target("ratio_max", value)


def ratio_min(value: float) -> Target:
    return Target("ratio_min", value)


def ccv_max(value: float) -> Target:
    return Target("ccv_max", value)


def ccv_min(value: float) -> Target:
    return Target("ccv_min", value)


# A figure shown without a verdict: on SQLite, the write, import and sweep metrics, whose
# targets were set for PostgreSQL (the embedded default's targets are the reads').
REPORTED = Target("reported", 0.0)


@dataclass
class Measurement:
    """What a metric function returns. `ccv=None` means "n/a" (with a `note` saying why)."""

    ccv: float | None
    raw: float | None
    extra: dict[str, Any] = field(default_factory=dict)
    note: str | None = None


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    target: Target
    function: Callable[[Context], Measurement]
    needs_dataset: bool = True
    description: str = ""
    # The embedded default's own target where it differs (SQLite figures count too).
    sqlite_target: Target | None = None

    def target_for(self, backend: str) -> Target:
        if backend == "sqlite" and self.sqlite_target is not None:
            return self.sqlite_target
        return self.target


REGISTRY: dict[str, Metric] = {}


def metric(
    name: str,
    *,
    unit: str,
    target: Target,
    needs_dataset: bool = True,
    sqlite_target: Target | None = None,
) -> Callable[[Callable[[Context], Measurement]], Callable[[Context], Measurement]]:
    """Register a metric function under `name` (run order is registration order)."""

    def register(function: Callable[[Context], Measurement]) -> Callable[[Context], Measurement]:
        if name in REGISTRY:
            raise ValueError(f"metric {name} is registered twice")
        REGISTRY[name] = Metric(
            name=name,
            unit=unit,
            target=target,
            function=function,
            needs_dataset=needs_dataset,
            sqlite_target=sqlite_target,
            description=(function.__doc__ or "").strip().splitlines()[0]
            if function.__doc__
            else "",
        )
        return function

    return register


@dataclass
class Outcome:
    """One row of the report: a measurement judged against its target."""

    metric: Metric
    measurement: Measurement
    seconds: float
    backend: str = "postgresql"

    @property
    def target(self) -> Target:
        return self.metric.target_for(self.backend)

    @property
    def ratio(self) -> float | None:
        ccv, raw = self.measurement.ccv, self.measurement.raw
        if ccv is None or raw is None or raw == 0:
            return None
        return ccv / raw

    @property
    def ok(self) -> bool | None:
        return self.target.check(self.measurement.ccv, self.ratio)

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "ccv": self.measurement.ccv,
            "raw": self.measurement.raw,
            "ratio": self.ratio,
            "unit": self.metric.unit,
            "target": self.target.text,
            "ok": self.ok,
        }
        if self.measurement.note:
            data["note"] = self.measurement.note
        if self.measurement.extra:
            data["extra"] = self.measurement.extra
        data["elapsed_s"] = round(self.seconds, 3)
        return data
