"""`ccv metrics serve` scraped over HTTP on loopback, and the process metrics of the library."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from ccv.config import Settings
from ccv.vault import Vault

from .helpers import TENANT, Ccv

PROCESS_FAMILIES = {
    "ccv_cache_requests",
    "ccv_status_transitions",
    "ccv_validation_failures",
    "ccv_lineage_depth",
    "ccv_fill_outcomes",
    "ccv_extraction_outcomes",
    "ccv_operation_seconds",
}


@pytest.fixture
def served(demo: Ccv) -> Iterator[str]:
    """`ccv metrics serve --port 0` in a process of its own; yields its /metrics URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCV_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "ccv", "--database-url", demo.database_url, "metrics", "serve"]
        + ["--port", "0"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)/metrics", line)
        assert found, line + process.stderr.read()
        yield found.group(0)
    finally:
        process.terminate()
        process.wait(timeout=30)


def _scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Samples by sample name (a histogram's `_count`, `_bucket`, ... apart), and by family."""
    with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 - loopback http
        assert answer.status == 200
        body = answer.read().decode()
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(body):
        found.setdefault(family.name, [])
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def test_a_scrape_has_the_report_gauges_and_the_process_metrics(served: str, demo: Ccv) -> None:
    first = _scrape(served)
    report = demo.json("report", "--tenant", TENANT)["tenants"][TENANT]
    assert first["ccv_report_up"] == [({}, 1.0)]
    assert first["ccv_customers"] == [({"tenant": TENANT}, report["customers"])]
    fields = {labels["status"]: value for labels, value in first["ccv_field_versions"]}
    assert fields == report["fields"]
    assert first.keys() >= PROCESS_FAMILIES
    # The server times its own report: the second scrape has seen the first one's.
    second = _scrape(served)
    timed = {labels["operation"]: value for labels, value in second["ccv_operation_seconds_count"]}
    assert timed["report"] >= 1


def _sample(name: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_an_embedding_process_counts_in_the_default_registry(tmp_path: Path) -> None:
    schema = tmp_path / "bot.yaml"
    schema.write_text(
        "tenant: acme\nagent: bot\nfields:\n  - name: tier\n"
        "    value_type: enum\n    allowed_values: [gold]\n",
        encoding="utf-8",
    )
    records = tmp_path / "in.jsonl"
    records.write_text(
        '{"tenant": "acme", "customer": "c-1", "name": "tier", "value": "gold",'
        ' "collected_at": "2026-01-01T00:00:00Z"}\n'
        '{"tenant": "acme", "customer": "c-1", "name": "tier", "value": "lead",'
        ' "collected_at": "2026-02-01T00:00:00Z"}\n',
        encoding="utf-8",
    )
    failures = _sample("ccv_validation_failures_total", field="tier", code="allowed_values")
    reads = _sample("ccv_operation_seconds_count", operation="get_profile")
    with Vault(Settings(database_url=f"sqlite:///{tmp_path / 'v.db'}")) as vault:
        vault.apply_schema([schema])
        assert vault.import_files([records]).rejected == 1
        vault.get_profile("acme", "c-1")
        vault.get_profile("acme", "c-1")
    assert _sample("ccv_validation_failures_total", field="tier", code="allowed_values") == (
        failures + 1
    )
    assert _sample("ccv_operation_seconds_count", operation="get_profile") == reads + 2
