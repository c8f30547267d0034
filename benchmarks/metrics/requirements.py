"""Scenario requirements: validating requirement files (the CI gate) and `gaps` reads.

requirements_validate_files_per_s: `validate_requirements` over 1,000 generated requirement
files and their schema, vs a plain `yaml.safe_load` of the same files.
gaps_p99_ms: `vault.gaps` of one scenario over the benchmark schema's fields, vs the raw profile
SELECT of profile_read_p99_ms.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from benchmarks.context import Context
from benchmarks.dataset import AGENT, FIELDS, TENANT, schema_yaml
from benchmarks.metrics.reads import raw_reader
from benchmarks.registry import Measurement, ccv_min, metric, ratio_max
from benchmarks.stats import paired_latencies, summary

FILES = 1000
REPEATS = 3
GAPS_WARMUP = 100
GAPS_READS = 1000
GAPS_BUDGET_S = 120.0
SCENARIO = "bench-onboarding"

# Conditions over the benchmark schema (SPEC §4), all well-typed: the files must be clean.
CONDITIONS = (
    "loyalty_points > 100",
    "account_tier in ['pro', 'enterprise']",
    "date_of_birth < '2008-01-01'",
    "marketing_opt_in == true",
    "country == 'DE' and account_tier != 'free'",
    "not (loyalty_points <= 10) or email != null",
)


def requirements_yaml(index: int, tenant: str = TENANT, agent: str = AGENT) -> str:
    """One scenario file: 6-10 requirements over the benchmark fields, with steps, rules,
    conditions, dependencies and collection orders varying with `index`."""
    names = [spec.name for spec in FIELDS]
    count = 6 + index % 5
    chosen = [names[(index + k * 3) % len(names)] for k in range(len(names))][:count]
    chosen = list(dict.fromkeys(chosen))
    lines = [
        f"# generated scenario {index}",
        f"tenant: {tenant}",
        f"agent: {agent}",
        f"scenario: scenario-{index:05d}",
        "description: >",
        f"  Generated scenario number {index}, collecting {len(chosen)} fields of a customer.",
        "rules:",
        "  - id: main-rule",
        "    text: Collect what the agent needs before acting.",
        "requires:",
    ]
    for position, name in enumerate(chosen):
        lines.append(f"  - field: {name}")
        if position % 3 == 0:
            lines.append(f"    step: step-{position // 3}")
        if position % 4 == 3:
            lines.append("    level: soft")
            lines.append("    fallback: skip")
        else:
            lines.append("    level: hard")
            lines.append("    fallback: ask")
        lines.append(f"    collection_order: {position + 1}")
        if position > 0 and position % 2 == 0:
            lines.append(f"    depends_on: [{chosen[position - 1]}]")
        if position % 3 == 1:
            lines.append(f'    when: "{CONDITIONS[(index + position) % len(CONDITIONS)]}"')
            lines.append("    rule: main-rule")
    return "\n".join(lines) + "\n"


def _write_files(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "schema.yaml").write_text(schema_yaml(), encoding="utf-8")
    paths = []
    for index in range(FILES):
        path = directory / f"scenario-{index:05d}.yaml"
        path.write_text(requirements_yaml(index), encoding="utf-8")
        paths.append(path)
    return paths


@metric(
    "requirements_validate_files_per_s",
    unit="files/s",
    target=ccv_min(500),
    needs_dataset=False,
)
def validate_files(ctx: Context) -> Measurement:
    """validate_requirements over 1,000 generated files vs yaml.safe_load of each (files/s)."""
    import yaml

    from ccv.service.requirements import validate_requirements

    directory = ctx.workdir / "bench-requirements"
    paths = _write_files(directory)
    result = validate_requirements([directory])
    if result.errors or result.warnings:
        first = (result.errors or result.warnings)[0]
        raise AssertionError(f"generated files are not clean: {first.file}: {first.message}")

    def run_ccv() -> float:
        started = time.perf_counter()
        validate_requirements([directory])
        return FILES / (time.perf_counter() - started)

    def run_raw() -> float:
        started = time.perf_counter()
        for path in paths:
            yaml.safe_load(path.read_text(encoding="utf-8"))
        return FILES / (time.perf_counter() - started)

    def run_c_loader() -> float:
        """For reference: libyaml's C loader, which ccv's own parser builds on."""
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        started = time.perf_counter()
        for path in paths:
            yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
        return FILES / (time.perf_counter() - started)

    ccv_runs = [run_ccv() for _ in range(REPEATS)]
    raw_runs = [run_raw() for _ in range(REPEATS)]
    c_loader_runs = [run_c_loader() for _ in range(REPEATS)]
    return Measurement(
        ccv=statistics.median(ccv_runs),
        raw=statistics.median(raw_runs),
        extra={
            "files": FILES,
            "checked": result.files,
            "repeats": REPEATS,
            "statistic": "median",
            "raw": "yaml.safe_load",
            "c_safe_loader_files_per_s": round(statistics.median(c_loader_runs), 1),
        },
    )


def gaps_scenario_yaml() -> str:
    """The gaps metric's scenario: every benchmark field, with conditions and dependencies."""
    return f"""\
tenant: {TENANT}
agent: {AGENT}
scenario: {SCENARIO}
description: Onboarding a customer of the benchmark tenant.
requires:
  - field: email
    collection_order: 1
  - field: phone
    collection_order: 2
    depends_on: [email]
  - field: first_name
    collection_order: 3
  - field: last_name
    collection_order: 3
    depends_on: [first_name]
  - field: country
    collection_order: 4
  - field: date_of_birth
    collection_order: 5
    when: "country in ['DE', 'FR', 'PT']"
  - field: account_tier
    collection_order: 6
  - field: loyalty_points
    collection_order: 7
    when: "account_tier != 'free'"
    depends_on: [account_tier]
  - field: marketing_opt_in
    level: soft
    fallback: skip
  - field: preferences
    level: soft
    fallback: skip
    when: "marketing_opt_in == true"
"""


@metric("gaps_p99_ms", unit="ms", target=ratio_max(2))
def gaps(ctx: Context) -> Measurement:
    """vault.gaps of a 10-requirement scenario vs the raw profile SELECT (fields + assets)."""
    from benchmarks.probe import statements

    vault, tenant = ctx.vault, ctx.data.tenant
    path = ctx.workdir / f"{SCENARIO}.yaml"
    path.write_text(gaps_scenario_yaml(), encoding="utf-8")
    applied = vault.apply_requirements([path])
    raw = raw_reader(ctx, identities=False)
    customers = ctx.sample_customers(GAPS_READS + GAPS_WARMUP)
    first = vault.gaps(tenant, customers[0], SCENARIO)
    judged = len(first.missing) + len(first.satisfied)
    if judged == 0:
        raise AssertionError(f"gaps judged no requirement for {customers[0]}")
    ccv_ms, raw_ms = paired_latencies(
        customers,
        lambda c: vault.gaps(tenant, c, SCENARIO),
        raw,
        warmup=GAPS_WARMUP,
        budget_s=GAPS_BUDGET_S,
    )
    reasons: dict[str, int] = {}
    for customer in customers[:200]:
        for entry in vault.gaps(tenant, customer, SCENARIO).missing:
            reasons[entry.reason] = reasons.get(entry.reason, 0) + 1
    ccv_s, raw_s = summary(ccv_ms), summary(raw_ms)
    return Measurement(
        ccv=ccv_s["p99"],
        raw=raw_s["p99"],
        extra={
            "ccv_ms": ccv_s,
            "raw_ms": raw_s,
            "profiles": ctx.data.scale,
            "requirements": applied.created + applied.updated + applied.unchanged,
            "missing_reasons_first_200": reasons,
            # Reads run on the read engine (autocommit on PostgreSQL).
            "ccv_sql_one_call": statements(
                vault.db.read_engine, lambda: vault.gaps(tenant, customers[1], SCENARIO)
            ),
        },
    )
