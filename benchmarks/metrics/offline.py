"""Metrics that need no dataset: value validation cost and CLI start-up time."""

from __future__ import annotations

import importlib.util
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from benchmarks.context import Context
from benchmarks.dataset import FIELDS, TENANT, schema_yaml, value_json
from benchmarks.registry import Measurement, ccv_max, metric

VALUES = 200_000
REPEATS = 5
CLI_RUNS = 10

# Values that fail each field's definition (wrong JSON type, bad format, not allowed, no match).
INVALID: dict[str, list[Any]] = {
    "email": [42, "ana@", "no-at-sign.example.com", "ana@example"],
    "phone": ["0049 151 1234", 4915112345678, "+0123"],
    "first_name": [7, None, ["Ana"]],
    "last_name": [False, {"last": "Lima"}],
    "date_of_birth": ["1990-02-30", "17/05/1990", 19900517],
    "account_tier": ["platinum", "Pro", 1],
    "country": ["Germany", "de", 49],
    "loyalty_points": ["120", 12.5, True],
    "marketing_opt_in": ["yes", 1, None],
    "preferences": [float("nan"), {1: "x"}],
}
PY_TYPES: dict[str, Any] = {
    "email": str,
    "phone": str,
    "string": str,
    "date": str,
    "enum": str,
    "integer": int,
    "boolean": bool,
    "json": (dict, list, str, int, float, bool, type(None)),
}


def _values(count: int) -> list[tuple[str, Any]]:
    """Mixed values: every field type, about one in five invalid."""
    values: list[tuple[str, Any]] = []
    for n in range(count):
        index = n % len(FIELDS)
        name = FIELDS[index].name
        if n % 5 == 4:
            bad = INVALID[name]
            values.append((name, bad[(n // len(FIELDS)) % len(bad)]))
        else:
            values.append((name, orjson.loads(value_json(index, n, n * 2654435761))))
    return values


@metric("validate_us_per_field", unit="us", target=ccv_max(20), needs_dataset=False)
def validate_per_field(ctx: Context) -> Measurement:
    """FieldRules.check (compiled validators) per value vs a bare isinstance check."""
    from ccv.domain.definitions import compile_rules
    from ccv.service.schema import load_schema_file

    path = ctx.workdir / "bench-validate-schema.yaml"
    path.write_text(schema_yaml(TENANT), encoding="utf-8")
    definitions, findings = load_schema_file(path)
    if findings:
        raise AssertionError(f"the benchmark schema does not load: {findings[0].message}")
    rules = compile_rules(definitions)
    values = _values(VALUES)
    checks = [(rules[name].check, value) for name, value in values]
    types = {spec.name: PY_TYPES[spec.value_type] for spec in FIELDS}
    plain = [(types[name], value) for name, value in values]
    invalid = sum(check(value)[0] is not None for check, value in checks)

    def run_ccv() -> float:
        started = time.perf_counter_ns()
        for check, value in checks:
            check(value)
        return (time.perf_counter_ns() - started) / 1e3 / len(checks)

    def run_raw() -> float:
        started = time.perf_counter_ns()
        for kind, value in plain:
            isinstance(value, kind)
        return (time.perf_counter_ns() - started) / 1e3 / len(plain)

    ccv_us = [run_ccv() for _ in range(REPEATS)]
    raw_us = [run_raw() for _ in range(REPEATS)]
    by_type: dict[str, float] = {}
    for spec in FIELDS:
        subset = [(rules[n].check, v) for n, v in values if n == spec.name][:5000]
        started = time.perf_counter_ns()
        for check, value in subset:
            check(value)
        by_type[spec.value_type + ":" + spec.name] = round(
            (time.perf_counter_ns() - started) / 1e3 / len(subset), 3
        )
    return Measurement(
        ccv=statistics.median(ccv_us),
        raw=statistics.median(raw_us),
        extra={
            "values": len(values),
            "invalid": invalid,
            "repeats": REPEATS,
            "statistic": "median",
            "ccv_us_by_field": by_type,
        },
    )


def cli_command() -> tuple[list[str] | None, str | None]:
    """The installed `ccv` console script (or the same entry point through python)."""
    try:
        found = importlib.util.find_spec("ccv.cli.app") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        return None, "the CLI (ccv.cli.app) is not importable yet"
    script = Path(sys.executable).parent / "ccv"
    if script.exists():
        return [str(script)], None
    return [
        sys.executable,
        "-c",
        "import sys; from ccv.cli.app import main; sys.exit(main())",
    ], None


def _wall_ms(command: list[str]) -> tuple[float, subprocess.CompletedProcess[bytes]]:
    started = time.perf_counter_ns()
    done = subprocess.run(command, capture_output=True, check=False, timeout=60)
    return (time.perf_counter_ns() - started) / 1e6, done


@metric("cli_help_ms", unit="ms", target=ccv_max(250), needs_dataset=False)
def cli_help(ctx: Context) -> Measurement:
    """Wall time of `ccv --help` as a subprocess vs `python -c pass` (median of 10)."""
    baseline = [sys.executable, "-c", "pass"]
    _wall_ms(baseline)
    raw = statistics.median(_wall_ms(baseline)[0] for _ in range(CLI_RUNS))
    command, why = cli_command()
    if command is None:
        return Measurement(ccv=None, raw=raw, note=why)
    _, first = _wall_ms([*command, "--help"])
    if first.returncode != 0:
        lines = first.stderr.decode(errors="replace").strip().splitlines()
        return Measurement(
            ccv=None,
            raw=raw,
            note=f"`ccv --help` exits {first.returncode}: {lines[-1] if lines else 'no output'}",
        )
    ccv = statistics.median(_wall_ms([*command, "--help"])[0] for _ in range(CLI_RUNS))
    return Measurement(
        ccv=ccv, raw=raw, extra={"runs": CLI_RUNS, "statistic": "median", "command": command}
    )
