"""`ccv profile show`: the SPEC §5 JSON shape, history, --as-of and PII masking."""

from __future__ import annotations

import re

import pytest

from .helpers import TENANT, Ccv, assert_exit

FIELD_KEYS = {
    "id",
    "name",
    "value",
    "status",
    "source",
    "source_item_id",
    "source_item_type",
    "collected_at",
    "expires_at",
    "confidence",
}
OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d$")
EMAIL_V1 = "e5121482-3929-4d22-a255-accb1a466884"
EMAIL_V2 = "a51149bb-e060-4724-a411-4258751b4c83"
# c-1001's PII as written in fixtures/demo/profiles.jsonl.
C1001_PII = (
    "ana.b.lima@example.org",
    "ana.lima@example.com",
    "Ana Beatriz Lima",
    "1988-04-17",
    "BR-52998224725",
    "+5511987654321",
)


def test_show_json_has_the_spec_keys_and_no_history_without_the_flag(demo: Ccv) -> None:
    profile = demo.json("profile", "show", "c-1001", "--tenant", TENANT)
    assert {"tenant", "customer", "as_of", "fields", "assets"} <= profile.keys()
    assert "history" not in profile
    assert (profile["tenant"], profile["customer"]) == (TENANT, "c-1001")
    assert OFFSET.match(profile["as_of"])
    for name, field in profile["fields"].items():
        assert field.keys() >= FIELD_KEYS, name
        assert field["name"] == name
        assert field["status"] == "active"
        assert OFFSET.match(field["collected_at"])
    assert profile["fields"]["email"]["id"] == EMAIL_V2
    [card] = profile["assets"]
    assert {"id", "name", "status", "asset_type"} <= card.keys()
    assert card["name"] == "id_card_front"


def test_show_with_history_lists_every_version_newest_first(demo: Ccv) -> None:
    profile = demo.json("profile", "show", "c-1005", "--tenant", TENANT, "--history")
    emails = profile["history"]["email"]
    assert len(emails) == 3
    assert [v["status"] for v in emails] == ["active", "superseded", "superseded"]
    times = [v["collected_at"] for v in emails]
    assert times == sorted(times, reverse=True)
    assert profile["fields"]["email"]["id"] == emails[0]["id"]


def test_late_arrival_is_history_not_the_shown_value(demo: Ccv) -> None:
    profile = demo.json("profile", "show", "c-1004", "--tenant", TENANT, "--history")
    assert profile["fields"]["email"]["id"] == "22a60b44-ef5f-431c-a8fd-b92dab266981"
    late = {v["id"]: v["status"] for v in profile["history"]["email"]}
    assert late["9f5e454c-acc4-4b03-b0ee-17e316e13413"] == "superseded"


def test_orphaned_version_appears_only_under_history(demo: Ccv) -> None:
    orphan = "14388e02-5e93-4f99-a152-cfd19f71810e"
    now = demo.json("profile", "show", "c-1013", "--tenant", TENANT)
    assert "legal_name" not in now["fields"]
    full = demo.json("profile", "show", "c-1013", "--tenant", TENANT, "--history")
    assert [(v["id"], v["status"]) for v in full["history"]["legal_name"]] == [(orphan, "orphaned")]


def test_as_of_a_date_means_midnight_utc_and_serves_the_version_of_then(demo: Ccv) -> None:
    profile = demo.json("profile", "show", "c-1001", "--tenant", TENANT, "--as-of", "2026-03-01")
    assert profile["as_of"] == "2026-03-01T00:00:00+00:00"
    assert profile["fields"]["email"]["id"] == EMAIL_V1
    assert profile["fields"]["email"]["status"] == "superseded"  # its status today


def test_as_of_accepts_a_time_with_an_offset(demo: Ccv) -> None:
    profile = demo.json(
        "profile", "show", "c-1001", "--tenant", TENANT, "--as-of", "2026-06-18T13:43:00+02:00"
    )
    assert profile["as_of"] == "2026-06-18T11:43:00+00:00"
    assert profile["fields"]["email"]["id"] == EMAIL_V2  # collected 11:42:07 UTC


@pytest.mark.parametrize(
    ("as_of", "served"),
    [("2026-01-20", True), ("2026-01-31T23:59:59Z", True), ("2026-02-01", False)],
)
def test_as_of_hides_a_value_that_had_expired_by_then(demo: Ccv, as_of: str, served: bool) -> None:
    # c-1006's risk_score expires at 2026-02-01T00:00:00Z; expired means expires_at <= TIME.
    profile = demo.json("profile", "show", "c-1006", "--tenant", TENANT, "--as-of", as_of)
    assert ("risk_score" in profile["fields"]) is served


def test_pii_is_masked_unless_revealed(demo: Ccv) -> None:
    masked = demo.json("profile", "show", "c-1001", "--tenant", TENANT)["fields"]
    assert re.fullmatch(r"a\*\*\*@example\.org", masked["email"]["value"])
    for name in ("legal_name", "date_of_birth", "national_id_number", "phone"):
        assert masked[name]["value"] == "***", name
    assert masked["account_tier"]["value"] == "plus"  # not PII: shown as is

    revealed = demo.json("profile", "show", "c-1001", "--tenant", TENANT, "--reveal-pii")
    fields = revealed["fields"]
    assert fields["email"]["value"] == "ana.b.lima@example.org"
    assert fields["legal_name"]["value"] == "Ana Beatriz Lima"
    assert fields["phone"]["value"] == "+5511987654321"


def test_history_versions_are_masked_too(demo: Ccv) -> None:
    profile = demo.json("profile", "show", "c-1001", "--tenant", TENANT, "--history")
    assert [v["value"] for v in profile["history"]["email"]] == [
        "a***@example.org",
        "a***@example.com",
    ]


def test_text_output_never_prints_pii_without_reveal(demo: Ccv) -> None:
    result = demo("profile", "show", "c-1001", "--tenant", TENANT, "--history")
    assert_exit(result, 0)
    assert "a***@example.org" in result.stdout
    leaked = [value for value in C1001_PII if value in result.stdout]
    assert leaked == []


def test_json_output_never_prints_pii_without_reveal(demo: Ccv) -> None:
    result = demo("profile", "show", "c-1001", "--tenant", TENANT, "--history", "--json")
    assert_exit(result, 0)
    leaked = [value for value in C1001_PII if value in result.stdout]
    assert leaked == []


def test_trace_output_never_prints_pii(demo: Ccv) -> None:
    for args in (["--json"], []):
        result = demo(
            "profile", "trace", "d7a7a3cc-8c3d-4f16-9293-de8fc88b2875", "--tenant", TENANT, *args
        )
        assert_exit(result, 0)
        assert [value for value in C1001_PII if value in result.stdout] == []


@pytest.mark.parametrize("customer", ["c-9999", "C-1001", "c-1001 "])
def test_show_of_an_unknown_customer_exits_3(demo: Ccv, customer: str) -> None:
    result = demo.fails("profile", "show", customer, "--tenant", TENANT, code=3)
    assert "not found" in result.stderr


def test_show_in_another_tenant_does_not_see_the_customer(demo: Ccv) -> None:
    demo.fails("profile", "show", "c-1001", "--tenant", "other-bank", code=3)


@pytest.mark.parametrize(
    "customer",
    ["c" * 200, "c-1001\x07", "c-\x1b[31m1001", ""],
    ids=["200-chars", "bell", "ansi-escape", "empty"],
)
def test_show_refuses_an_invalid_customer_id_as_a_usage_error(demo: Ccv, customer: str) -> None:
    result = demo.fails("profile", "show", customer, "--tenant", TENANT, code=2)
    assert "customer" in result.stderr


def test_show_refuses_a_tenant_with_control_characters(demo: Ccv) -> None:
    demo.fails("profile", "show", "c-1001", "--tenant", "north\x00wind", code=2)
