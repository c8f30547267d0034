"""`ccv requirements apply` and `ccv profile gaps`: the SPEC §5 JSON shape and exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import DEMO, TENANT, Ccv, assert_exit, error_lines, flat

REQUIREMENTS = DEMO / "requirements"
MISSING_KEYS = {"field", "level", "fallback", "collection_prompt", "collection_order", "reason"}
REASONS = {"absent", "expired", "stale", "invalid", "unverified", "condition_unknown"}
# The demo's values were collected during 2026 and several definitions carry freshness_seconds:
# tests judge at fixed times (`--now`) so what is fresh does not depend on the day they run.
BEFORE_ORDER_STALE = "2026-09-22T00:00:00Z"  # c-1008's order (2026-09-21) is a day old
OCTOBER = "2026-10-26T00:00:00Z"  # c-1024's order (2026-10-25) is a day old


@pytest.fixture(scope="module")
def applied(demo: Ccv) -> Ccv:
    """The demo database with the demo requirements applied (this module's own database)."""
    result = demo.json("requirements", "apply", REQUIREMENTS)
    assert result["created"] == 27, result
    return demo


def test_gaps_json_has_the_spec_shape(applied: Ccv) -> None:
    gaps = applied.json(
        "profile",
        "gaps",
        "c-1008",
        "--tenant",
        TENANT,
        "--scenario",
        "refund-request",
        "--now",
        BEFORE_ORDER_STALE,
    )
    assert {"scenario", "customer", "missing", "satisfied"} <= gaps.keys()
    assert (gaps["scenario"], gaps["customer"]) == ("refund-request", "c-1008")
    assert len(gaps["missing"]) == 1
    assert {key: gaps["missing"][0].get(key) for key in MISSING_KEYS} == {
        "field": "risk_score",
        "level": "soft",
        "fallback": "extract",
        "collection_prompt": "Run risk.score_customer; never ask the customer for this.",
        "collection_order": 8,
        "reason": "expired",
    }
    assert all(isinstance(name, str) for name in gaps["satisfied"])
    assert "order_id" in gaps["satisfied"]


def test_gaps_exit_0_for_an_unknown_customer_with_the_rules_of_any_customer(
    applied: Ccv,
) -> None:
    gaps = applied.json(
        "profile", "gaps", "c-unknown", "--tenant", TENANT, "--scenario", "refund-request"
    )
    # SPEC §2: a customer with nothing stored is judged like any other: a requirement waiting
    # on an absent `depends_on` field does not apply yet; each one that applies is `absent`.
    assert [(m["field"], m["reason"]) for m in gaps["missing"]] == [
        ("order_id", "absent"),
        ("email", "absent"),
        ("preferred_language", "absent"),
    ]
    assert [m["collection_order"] for m in gaps["missing"]] == [1, 4, None]
    assert gaps["satisfied"] == []
    for entry in gaps["missing"]:
        assert entry.keys() >= MISSING_KEYS
        assert entry["reason"] in REASONS


def test_an_unknown_customer_and_a_customer_with_other_values_follow_one_rule(
    applied: Ccv,
) -> None:
    # c-1001 holds values but no order: refund_amount and card_last4 wait for order_id there
    # and for the customer with nothing stored alike.
    waiting = {"refund_amount", "card_last4"}
    for customer in ("c-unknown", "c-1001"):
        gaps = applied.json(
            "profile", "gaps", customer, "--tenant", TENANT, "--scenario", "refund-request"
        )
        assert [m["field"] for m in gaps["missing"]][0] == "order_id", customer
        listed = {m["field"] for m in gaps["missing"]} | set(gaps["satisfied"])
        assert not listed & waiting, customer


def test_a_value_older_than_its_freshness_is_missing_as_stale_and_still_shown(
    applied: Ccv,
) -> None:
    # order_id and refund_amount have freshness_seconds of 30 days; c-1008's are from
    # 2026-09-21: fresh the next day, stale a month later. show still serves them.
    fresh = applied.json(
        "profile",
        "gaps",
        "c-1008",
        "--tenant",
        TENANT,
        "--scenario",
        "refund-request",
        "--now",
        BEFORE_ORDER_STALE,
    )
    later = applied.json(
        "profile",
        "gaps",
        "c-1008",
        "--tenant",
        TENANT,
        "--scenario",
        "refund-request",
        "--now",
        OCTOBER,
    )
    assert {"order_id", "refund_amount"} <= set(fresh["satisfied"])
    assert [(m["field"], m["reason"]) for m in later["missing"]] == [
        ("order_id", "stale"),
        ("refund_amount", "stale"),
        ("risk_score", "expired"),
    ]
    # Stale values still decide conditions and dependencies: the refund is over 500.
    assert "date_of_birth" in later["satisfied"]
    shown = applied.json("profile", "show", "c-1008", "--tenant", TENANT)
    assert {"order_id", "refund_amount"} <= shown["fields"].keys()


def test_gaps_now_must_be_a_time(applied: Ccv) -> None:
    result = applied(
        "profile",
        "gaps",
        "c-1008",
        "--tenant",
        TENANT,
        "--scenario",
        "refund-request",
        "--now",
        "yesterday",
    )
    assert_exit(result, 2)
    assert "--now" in flat(result.stderr)


def test_gaps_with_nothing_missing_exits_0(applied: Ccv) -> None:
    gaps = applied.json(
        "profile",
        "gaps",
        "c-1001",
        "--tenant",
        TENANT,
        "--scenario",
        "identity-verification",
        "--now",
        OCTOBER,
    )
    assert gaps["missing"] == []
    assert gaps["satisfied"] == [
        "document_type",
        "legal_name",
        "date_of_birth",
        "national_id_number",
        "document_expiry",
        "kyc_status",
    ]


def test_gaps_of_an_unknown_scenario_exits_3(applied: Ccv) -> None:
    result = applied.fails(
        "profile", "gaps", "c-1001", "--tenant", TENANT, "--scenario", "no-such", code=3
    )
    assert "no-such" in flat(result.stderr)


def test_gaps_of_a_scenario_of_another_tenant_exits_3(applied: Ccv) -> None:
    applied.fails(
        "profile", "gaps", "c-1001", "--tenant", "acme", "--scenario", "refund-request", code=3
    )


def test_gaps_needs_a_scenario(applied: Ccv) -> None:
    result = applied("profile", "gaps", "c-1001", "--tenant", TENANT)
    assert_exit(result, 2)


def test_gaps_text_output_shows_reasons_and_prompts(applied: Ccv) -> None:
    result = applied(
        "profile",
        "gaps",
        "c-1024",
        "--tenant",
        TENANT,
        "--scenario",
        "refund-request",
        "--now",
        OCTOBER,
    )
    assert_exit(result, 0)
    text = flat(result.stdout)
    assert "email" in text
    assert "absent" in text
    assert "What email address should we use to contact you?" in text
    assert "satisfied: order_id, refund_amount, card_last4, preferred_language" in text


def test_requirements_apply_again_reports_everything_unchanged(applied: Ccv) -> None:
    result = applied.json("requirements", "apply", REQUIREMENTS)
    assert (result["created"], result["updated"], result["unchanged"], result["removed"]) == (
        0,
        0,
        27,
        0,
    )
    assert result["files"] == 4
    assert {s["status"] for s in result["scenarios"]} == {"unchanged"}


def test_requirements_apply_text_output_counts_per_scenario(applied: Ccv) -> None:
    result = applied("requirements", "apply", REQUIREMENTS)
    assert_exit(result, 0)
    text = flat(result.stdout)
    assert "northwind-bank/refund-request (unchanged): 0 created, 0 updated, 9 unchanged" in text
    assert "4 scenarios from 4 files" in text


def test_requirements_apply_with_errors_exits_1_and_stores_nothing(
    applied: Ccv, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        (REQUIREMENTS / "refund-request.yaml")
        .read_text(encoding="utf-8")
        .replace("scenario: refund-request", "scenario: refund-v2")
        .replace("field: card_last4", "field: card_last_four"),
        encoding="utf-8",
    )
    result = applied.fails("requirements", "apply", broken, code=1)
    lines = error_lines(result)
    assert any(f"{broken}:" in line and "unknown-field" in line for line in lines), lines
    applied.fails(
        "profile", "gaps", "c-1001", "--tenant", TENANT, "--scenario", "refund-v2", code=3
    )


def test_requirements_apply_prints_warnings_on_stderr_and_stores(
    applied: Ccv, tmp_path: Path
) -> None:
    """No schema for the agent anywhere: a warning, and the scenario is stored all the same."""
    path = tmp_path / "ghost.yaml"
    path.write_text(
        "tenant: ghost-tenant\nagent: ghost-bot\nscenario: haunt\nrequires:\n  - field: name\n",
        encoding="utf-8",
    )
    result = applied("requirements", "apply", path, "--json")
    assert_exit(result, 0)
    assert "no-schema" in result.stderr
    gaps = applied.json("profile", "gaps", "c-1", "--tenant", "ghost-tenant", "--scenario", "haunt")
    assert [(m["field"], m["collection_prompt"], m["reason"]) for m in gaps["missing"]] == [
        ("name", None, "absent")
    ]
