"""Unit tests for ccv.domain.requirements_file: one file into ScenarioRequirement models."""

from __future__ import annotations

from ccv.domain.enums import Fallback, Level, ValueType
from ccv.domain.models import FieldDefinition
from ccv.domain.requirements_file import AgentSchema, RequirementsCheck, parse_requirements
from ccv.domain.yamldoc import parse_yaml

SCHEMA = AgentSchema(
    "acme",
    "shop-bot",
    [
        FieldDefinition(tenant="acme", agent="shop-bot", name="order_id", collection_prompt="?"),
        FieldDefinition(
            tenant="acme",
            agent="shop-bot",
            name="refund_amount",
            value_type=ValueType.NUMBER,
            collection_prompt="?",
            extraction_hint="a number",
        ),
        FieldDefinition(
            tenant="acme",
            agent="shop-bot",
            name="old_field",
            collection_prompt="?",
            enabled=False,
        ),
    ],
)
SCHEMAS = {("acme", "shop-bot"): SCHEMA}

FILE = """\
tenant: acme
agent: shop-bot
scenario: refund
description: Refunds.
rules:
  - id: big
    text: Big refunds are checked.
requires:
  - field: order_id
    collection_order: 1
  - field: refund_amount
    step: check
    rule: big
    level: soft
    fallback: extract
    when: "  order_id != null  "
    depends_on: [order_id, order_id]
    needs_human_review: true
    confidence: 1
"""


def _check(
    text: str, schemas: dict[tuple[str, str], AgentSchema | None] | None = None
) -> RequirementsCheck:
    chosen = SCHEMAS if schemas is None else schemas
    return parse_requirements("f.yaml", parse_yaml(text), chosen, text)


def test_a_valid_file_becomes_scenario_requirements() -> None:
    check = _check(FILE)
    assert check.errors == [] and check.warnings == []
    assert check.scenario is not None
    assert (check.scenario.tenant, check.scenario.agent, check.scenario.scenario) == (
        "acme",
        "shop-bot",
        "refund",
    )
    assert [rule.id for rule in check.scenario.rules] == ["big"]
    first, second = check.scenario.requirements
    assert (first.field, first.level, first.fallback, first.collection_order) == (
        "order_id",
        Level.HARD,
        Fallback.ASK,
        1,
    )
    assert second.model_dump(exclude={"tenant", "agent", "scenario"}) == {
        "step": "check",
        "rule": "big",
        "field": "refund_amount",
        "level": Level.SOFT,
        "fallback": Fallback.EXTRACT,
        "when": "order_id != null",
        "depends_on": ["order_id"],
        "collection_order": None,
        "needs_human_review": True,
        "confidence": 1.0,
    }
    assert check.scenario_at == (3, 1)


def test_a_requirement_with_an_error_is_left_out_of_the_models() -> None:
    check = _check(FILE.replace("level: soft", "level: sometimes"))
    assert [f.code for f in check.errors] == ["invalid-value"]
    assert check.scenario is not None
    assert [r.field for r in check.scenario.requirements] == ["order_id"]


def test_a_disabled_definition_counts_as_undefined() -> None:
    [finding] = _check(FILE + "  - field: old_field\n").errors
    assert (finding.code, finding.line) == ("unknown-field", 20)
    assert "disables" in finding.message


def test_an_agent_whose_schema_is_broken_skips_schema_checks_silently() -> None:
    check = _check(FILE.replace("order_id", "whatever"), {("acme", "shop-bot"): None})
    assert check.errors == [] and check.warnings == []


def test_an_agent_without_schema_is_a_warning_and_the_file_still_parses() -> None:
    check = _check(FILE, {})
    assert [(f.code, f.line) for f in check.warnings] == [("no-schema", 2)]
    assert check.scenario is not None and len(check.scenario.requirements) == 2


def test_when_findings_point_inside_the_condition() -> None:
    check = _check(FILE.replace("order_id != null", "order_id != null and refund_amount > 'x'"))
    [finding] = check.errors
    assert (finding.code, finding.line) == ("when-type", 16)
    assert finding.column == len('    when: "  order_id != null and ') + 1


def test_a_self_dependency_is_a_cycle() -> None:
    text = FILE.replace("depends_on: [order_id, order_id]", "depends_on: [refund_amount]")
    [finding] = _check(text).errors
    assert finding.code == "depends-on-cycle"
    assert "refund_amount -> refund_amount" in finding.message


def test_a_longer_cycle_is_reported_once() -> None:
    text = """\
tenant: acme
agent: shop-bot
scenario: loop
requires:
  - field: order_id
    depends_on: [refund_amount]
  - field: refund_amount
    depends_on: [order_id]
    fallback: extract
"""
    findings = _check(text).errors
    assert [(f.code, f.line) for f in findings] == [("depends-on-cycle", 6)]
