"""`ccv report` (SPEC §11): counts, formats, and the invalid-value stamps behind them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text

from .helpers import TENANT, Ccv, write_jsonl

STATUSES = {"active", "superseded", "expired", "orphaned"}
TENANT_KEYS = {
    "customers",
    "identities",
    "fields",
    "assets",
    "overdue",
    "expiring",
    "requires_confirmation",
    "lineage",
    "invalid",
}
SCHEMA = """\
tenant: acme
agent: bot
fields:
  - name: tier
    value_type: enum
    allowed_values: [gold, silver]
    validation_mode: {mode}
  - name: nickname
    validation_mode: {mode}
"""


def _sql_counts(url: str, sql: str) -> dict[Any, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {tuple(row[:-1]): int(row[-1]) for row in conn.execute(text(sql))}
    finally:
        engine.dispose()


def _depth(trace: dict[str, Any]) -> int:
    """The vault items above the traced one (as `ccv report` counts lineage depth)."""
    return sum(1 for link in trace["chain"] if link["kind"] != "external")


def test_the_demo_report_agrees_with_the_stored_rows_and_every_trace(demo: Ccv) -> None:
    report = demo.json("report", "--tenant", TENANT)
    assert set(report) == {"now", "tenants"}
    found = report["tenants"][TENANT]
    assert set(found) == TENANT_KEYS
    assert set(found["fields"]) == STATUSES == set(found["assets"])
    for table in ("fields", "assets"):
        stored = _sql_counts(
            demo.database_url,
            f"SELECT status, count(*) FROM {table} WHERE tenant = '{TENANT}' GROUP BY status",
        )
        assert {(s,): n for s, n in found[table].items() if n} == stored
    assert (
        found["customers"]
        == _sql_counts(
            demo.database_url, f"SELECT 1, count(*) FROM profiles WHERE tenant = '{TENANT}'"
        )[(1,)]
    )
    assert found["identities"] == 0

    # Lineage depth of every active item, from `profile trace`: the same histogram.
    active = _sql_counts(
        demo.database_url,
        f"SELECT id, 1 FROM fields WHERE tenant = '{TENANT}' AND status = 'active'"
        f" UNION ALL SELECT id, 1 FROM assets WHERE tenant = '{TENANT}' AND status = 'active'",
    )
    histogram: dict[str, int] = {}
    for (item_id,) in active:
        depth = str(_depth(demo.json("profile", "trace", item_id, "--tenant", TENANT)))
        histogram[depth] = histogram.get(depth, 0) + 1
    assert found["lineage"]["histogram"] == dict(sorted(histogram.items()))
    assert found["lineage"]["max_depth"] == max(int(d) for d in histogram) >= 2


def test_all_tenants_and_usage_errors(demo: Ccv) -> None:
    everyone = demo.json("report", "--all-tenants")
    assert list(everyone["tenants"]) == [TENANT]
    assert (
        everyone["tenants"]
        == demo.json("report", "--tenant", TENANT, "--now", everyone["now"])["tenants"]
    )
    # A tenant with nothing stored yet reports zeros (a dashboard for a new tenant).
    empty = demo.json("report", "--tenant", "nobody")["tenants"]["nobody"]
    assert empty["customers"] == 0 and set(empty["fields"].values()) == {0}
    assert empty["lineage"] == {"max_depth": 0, "histogram": {"0": 0}}
    demo.fails("report", code=2)
    demo.fails("report", "--tenant", TENANT, "--all-tenants", code=2)
    demo.fails("report", "--tenant", TENANT, "--format", "xml", code=2)
    demo.fails("report", "--tenant", TENANT, "--now", "soon", code=2)


def _acme(ccv: Ccv, mode: str = "warn") -> None:
    Path("bot.yaml").write_text(SCHEMA.format(mode=mode), encoding="utf-8")
    ccv.json("schema", "apply", "bot.yaml")


def _record(customer: str, name: str, value: Any, collected: str, **more: Any) -> dict[str, Any]:
    return {
        "tenant": "acme",
        "customer": customer,
        "name": name,
        "value": value,
        "collected_at": collected,
        **more,
    }


def test_overdue_expiring_and_confirmation_counts_follow_now(ccv: Ccv) -> None:
    _acme(ccv)
    records = [
        _record("c-1", "nickname", "a", "2026-01-01T00:00:00Z", expires_at="2026-03-01T00:00:00Z"),
        _record("c-2", "nickname", "b", "2026-01-01T00:00:00Z", expires_at="2026-03-01T12:00:00Z"),
        _record("c-3", "nickname", "c", "2026-01-01T00:00:00Z", expires_at="2026-03-05T00:00:00Z"),
        _record("c-4", "nickname", "d", "2026-01-01T00:00:00Z", requires_confirmation=True),
        _record(
            "c-4",
            "asset_scan",
            None,
            "2026-01-01T00:00:00Z",
            kind="asset",
            asset_type="image",
            expires_at="2026-03-01T06:00:00Z",
        ),
    ]
    for record in records:
        if record.get("kind") == "asset":
            record.pop("value")
    write_jsonl(Path("in.jsonl"), records)
    assert ccv.json("profile", "import", "in.jsonl")["rejected"] == 0

    def counts(now: str) -> tuple[int, int, int, int]:
        found = ccv.json("report", "--tenant", "acme", "--now", now)["tenants"]["acme"]
        return (
            found["overdue"],
            found["expiring"]["1d"],
            found["expiring"]["7d"],
            found["requires_confirmation"],
        )

    assert counts("2026-02-20T00:00:00Z") == (0, 0, 0, 1)
    assert counts("2026-02-28T13:00:00Z") == (0, 3, 4, 1)
    assert counts("2026-03-01T00:00:00Z") == (1, 2, 3, 1)  # expired at expires_at <= now
    assert counts("2026-03-02T00:00:00Z") == (3, 0, 1, 1)
    ccv.json("profile", "expire", "--tenant", "acme", "--apply", "--now", "2026-03-02")
    after = ccv.json("report", "--tenant", "acme", "--now", "2026-03-02")["tenants"]["acme"]
    assert after["overdue"] == 0
    assert (after["fields"]["expired"], after["assets"]["expired"]) == (2, 1)


def test_invalid_values_are_judged_by_the_current_definitions(ccv: Ccv) -> None:
    _acme(ccv, mode="warn")
    write_jsonl(
        Path("in.jsonl"),
        [
            _record("c-1", "tier", "bronze", "2026-01-01T00:00:00Z"),
            _record("c-2", "tier", "gold", "2026-01-01T00:00:00Z"),
            _record("c-3", "tier", "platinum", "2026-01-01T00:00:00Z"),
            _record("c-3", "tier", "silver", "2026-02-01T00:00:00Z"),  # supersedes platinum
            _record("c-4", "nickname", 42, "2026-01-01T00:00:00Z"),  # not a string
        ],
    )
    imported = ccv.json("profile", "import", "in.jsonl")
    assert (imported["rejected"], imported["warnings"]) == (0, 3)

    def invalid() -> dict[str, int]:
        result: dict[str, int] = ccv.json("report", "--tenant", "acme")["tenants"]["acme"][
            "invalid"
        ]
        return result

    assert invalid() == {"nickname": 1, "tier": 1}
    # The definitions change: stored values are judged again by the new ones.
    Path("bot.yaml").write_text(
        SCHEMA.format(mode="warn").replace("[gold, silver]", "[gold, silver, bronze]"),
        encoding="utf-8",
    )
    ccv.json("schema", "apply", "bot.yaml")
    assert invalid() == {"nickname": 1}
    Path("bot.yaml").write_text(
        SCHEMA.format(mode="warn").replace("[gold, silver]", "[gold]"), encoding="utf-8"
    )
    ccv.json("schema", "apply", "bot.yaml")
    assert invalid() == {"nickname": 1, "tier": 2}  # bronze and silver; platinum is history
    # A later valid version replaces an invalid one.
    write_jsonl(Path("fix.jsonl"), [_record("c-4", "nickname", "Dee", "2026-03-01T00:00:00Z")])
    ccv.json("profile", "import", "fix.jsonl")
    assert invalid() == {"tier": 2}


def test_prometheus_format_carries_the_json_counts(demo: Ccv) -> None:
    report = demo.json("report", "--tenant", TENANT)
    found = report["tenants"][TENANT]
    result = demo("report", "--tenant", TENANT, "--now", report["now"], "--format", "prometheus")
    assert result.exit_code == 0, result.stderr
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(result.stdout)
        for s in family.samples
    }
    tenant = ("tenant", TENANT)
    assert samples[("ccv_customers", (tenant,))] == found["customers"]
    for status, count in found["fields"].items():
        assert samples[("ccv_field_versions", (("status", status), tenant))] == count
    assert samples[("ccv_overdue_items", (tenant,))] == found["overdue"]
    assert samples[("ccv_expiring_items", (tenant, ("within", "7d")))] == found["expiring"]["7d"]
    assert samples[("ccv_lineage_max_depth", (tenant,))] == found["lineage"]["max_depth"]
    for depth, count in found["lineage"]["histogram"].items():
        assert samples[("ccv_lineage_depth_items", (("depth", depth), tenant))] == count
    assert ("ccv_report_timestamp_seconds", ()) in samples


def test_a_strict_import_stores_no_invalid_value(ccv: Ccv) -> None:
    _acme(ccv, mode="strict")
    write_jsonl(Path("in.jsonl"), [_record("c-1", "tier", "bronze", "2026-01-01T00:00:00Z")])
    assert ccv.json("profile", "import", "in.jsonl", code=1)["rejected"] == 1
    assert ccv.json("report", "--tenant", "acme")["tenants"]["acme"]["invalid"] == {}
