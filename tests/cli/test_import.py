"""`ccv profile import`: counts, per-record rejection with file:line, hostile input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .helpers import Ccv, assert_exit, flat, write_jsonl

SCHEMA = """\
tenant: acme
agent: support-bot
fields:
  - name: email
    value_type: email
    is_pii: true
  - name: card_last4
    value_type: string
    validation_regex: "^[0-9]{4}$"
  - name: refund_amount
    value_type: number
"""
COUNT_KEYS = ("records", "inserted", "superseded", "unchanged", "rejected", "warnings")


def _rec(
    customer: str = "c-1", name: str = "email", value: Any = "ana@example.com", **more: Any
) -> dict[str, Any]:
    return {"tenant": "acme", "customer": customer, "name": name, "value": value, **more}


def _counts(result: dict[str, Any]) -> dict[str, int]:
    return {key: result[key] for key in COUNT_KEYS}


@pytest.fixture
def acme(ccv: Ccv) -> Ccv:
    """`ccv` with the acme schema applied; the working directory is the test's tmp_path."""
    Path("acme.yaml").write_text(SCHEMA, encoding="utf-8")
    ccv.json("schema", "apply", "acme.yaml")
    return ccv


def test_import_json_has_the_spec_counts(acme: Ccv) -> None:
    write_jsonl(Path("in.jsonl"), [_rec(collected_at="2026-03-01T10:00:00Z")])
    result = acme.json("profile", "import", "in.jsonl")
    assert set(COUNT_KEYS) | {"errors"} <= result.keys()
    assert _counts(result) == dict.fromkeys(COUNT_KEYS, 0) | {"records": 1, "inserted": 1}
    assert result["errors"] == []


def test_rejected_records_exit_1_and_the_valid_ones_are_stored(acme: Ccv) -> None:
    write_jsonl(
        Path("in.jsonl"),
        [_rec("c-1"), _rec("c-2", value="not-an-email"), _rec("c-3", "card_last4", "1234")],
    )
    result = acme.json("profile", "import", "in.jsonl", code=1)
    assert (result["records"], result["inserted"], result["rejected"]) == (3, 2, 1)
    [error] = result["errors"]
    assert error["line"] == 2
    assert "email" in error["message"]
    assert acme.json("profile", "show", "c-3", "--tenant", "acme")["fields"]["card_last4"]
    acme.fails("profile", "show", "c-2", "--tenant", "acme", code=3)


def test_a_later_version_supersedes_and_a_late_arrival_goes_to_history(acme: Ccv) -> None:
    write_jsonl(Path("a.jsonl"), [_rec(value="v1@example.com", collected_at="2026-03-01")])
    acme.json("profile", "import", "a.jsonl")
    write_jsonl(
        Path("b.jsonl"),
        [
            _rec(value="v3@example.com", collected_at="2026-05-01"),
            _rec(value="v2@example.com", collected_at="2026-04-01"),
        ],
    )
    result = acme.json("profile", "import", "b.jsonl")
    assert (result["inserted"], result["superseded"]) == (2, 2)
    shown = acme.json("profile", "show", "c-1", "--tenant", "acme", "--reveal-pii", "--history")
    assert shown["fields"]["email"]["value"] == "v3@example.com"
    assert [v["value"] for v in shown["history"]["email"]] == [
        "v3@example.com",
        "v2@example.com",
        "v1@example.com",
    ]


def test_a_malformed_json_line_is_rejected_with_file_and_line(acme: Ccv) -> None:
    write_jsonl(
        Path("in.jsonl"), [_rec("c-1"), '{"tenant": "acme", "customer": "c-2", "na', _rec("c-3")]
    )
    result = acme("profile", "import", "in.jsonl")
    assert_exit(result, 1)
    assert "in.jsonl:2:" in result.stdout + result.stderr
    assert "JSON" in result.stdout
    as_json = acme.json("profile", "import", "in.jsonl", code=1)
    assert [e["line"] for e in as_json["errors"]] == [2]
    assert as_json["unchanged"] == 2


def test_an_unknown_key_is_rejected_with_a_did_you_mean_hint(acme: Ccv) -> None:
    record = _rec()
    record["valeu"] = record.pop("value")
    write_jsonl(Path("in.jsonl"), [record])
    result = acme("profile", "import", "in.jsonl")
    assert_exit(result, 1)
    text = flat(result.stdout)
    assert "in.jsonl:1:" in text
    assert "valeu" in text
    assert "did you mean 'value'" in text


@pytest.mark.parametrize(
    ("record", "words"),
    [
        (_rec(value="not-an-email"), ["email"]),
        (_rec(name="card_last4", value="12345"), ["card_last4"]),
        (_rec(name="refund_amount", value="42"), ["refund_amount", "number"]),
    ],
    ids=["email", "regex", "json-type"],
)
def test_an_invalid_value_is_rejected_under_strict(
    acme: Ccv, record: Any, words: list[str]
) -> None:
    write_jsonl(Path("in.jsonl"), [record])
    result = acme.json("profile", "import", "in.jsonl", code=1)
    [error] = result["errors"]
    assert error["line"] == 1
    for word in words:
        assert word in error["message"]


def test_warn_stores_an_invalid_value_with_a_warning_and_validate_then_fails(acme: Ccv) -> None:
    write_jsonl(Path("in.jsonl"), [_rec(value="not-an-email")])
    result = acme.json("profile", "import", "in.jsonl", "--validation", "warn")
    assert (result["inserted"], result["rejected"], result["warnings"]) == (1, 0, 1)
    report = acme.json(
        "profile", "validate", "c-1", "--tenant", "acme", "--agent", "support-bot", code=1
    )
    assert report["valid"] is False


def test_disabled_stores_an_invalid_value_silently(acme: Ccv) -> None:
    write_jsonl(Path("in.jsonl"), [_rec(value="not-an-email")])
    result = acme.json("profile", "import", "in.jsonl", "--validation", "disabled")
    assert (result["inserted"], result["rejected"], result["warnings"]) == (1, 0, 0)


def test_a_valid_profile_validates_with_exit_0(acme: Ccv) -> None:
    write_jsonl(Path("in.jsonl"), [_rec(), _rec(name="card_last4", value="0042")])
    acme.json("profile", "import", "in.jsonl")
    report = acme.json("profile", "validate", "c-1", "--tenant", "acme", "--agent", "support-bot")
    assert report["valid"] is True


def test_unknown_names_on_a_tenant_without_schema_say_how_to_fix_it(ccv: Ccv) -> None:
    write_jsonl(Path("in.jsonl"), [_rec()])
    result = ccv.json("profile", "import", "in.jsonl", code=1)
    [error] = result["errors"]
    assert "ccv schema apply" in error["message"]
    assert "--validation warn" in error["message"]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"customer": "c-1\x07"}, ["customer", "control"]),
        ({"customer": "c\u0000"}, ["customer", "control"]),
        ({"customer": "c" * 200}, ["customer", "128"]),
        ({"customer": ""}, ["customer"]),
        ({"tenant": "ac\nme"}, ["tenant"]),
        ({"name": "Email"}, ["name"]),
        ({"name": "e mail"}, ["name"]),
        ({"name": "x" * 51}, ["name"]),
        ({"name": "'; DROP TABLE fields; --"}, ["name"]),
        ({"kind": "blob"}, ["kind"]),
        ({"source": "rumour"}, ["source"]),
        ({"confidence": 1.5}, ["confidence"]),
        ({"collected_at": "yesterday"}, ["collected_at"]),
    ],
    ids=[
        "bell-in-customer",
        "nul-in-customer",
        "200-char-customer",
        "empty-customer",
        "newline-in-tenant",
        "uppercase-name",
        "space-in-name",
        "51-char-name",
        "sql-name",
        "bad-kind",
        "bad-source",
        "confidence-above-1",
        "bad-time",
    ],
)
def test_a_hostile_record_is_rejected_with_a_clear_message(
    acme: Ccv, change: dict[str, Any], words: list[str]
) -> None:
    write_jsonl(Path("in.jsonl"), [_rec("c-ok"), _rec() | change])
    result = acme("profile", "import", "in.jsonl", "--validation", "disabled")
    assert_exit(result, 1)
    [line] = [ln for ln in result.stdout.splitlines() if "in.jsonl:2:" in ln]
    for word in words:
        assert word in line
    assert acme.json("profile", "show", "c-ok", "--tenant", "acme")["fields"]["email"]


@pytest.mark.parametrize(
    "customer",
    ["'; DROP TABLE fields; --", "Robert'); DELETE FROM profiles;--", "клиент-😀", "顧客 #1"],
)
def test_sql_like_and_unicode_customer_ids_are_stored_verbatim(acme: Ccv, customer: str) -> None:
    write_jsonl(Path("in.jsonl"), [_rec(customer, "card_last4", "1234"), _rec("c-other")])
    acme.json("profile", "import", "in.jsonl")
    shown = acme.json("profile", "show", customer, "--tenant", "acme")
    assert shown["customer"] == customer
    assert shown["fields"]["card_last4"]["value"] == "1234"
    assert acme.json("profile", "show", "c-other", "--tenant", "acme")["fields"]["email"]


def test_a_record_of_another_tenant_than_tenant_option_is_rejected(acme: Ccv) -> None:
    write_jsonl(Path("in.jsonl"), [_rec("c-1"), _rec("c-2") | {"tenant": "globex"}])
    result = acme.json("profile", "import", "in.jsonl", "--tenant", "acme", code=1)
    assert [e["line"] for e in result["errors"]] == [2]
    assert result["inserted"] == 1


def test_tenant_option_fills_records_that_name_none(acme: Ccv) -> None:
    record = _rec()
    del record["tenant"]
    write_jsonl(Path("in.jsonl"), [record])
    assert acme.json("profile", "import", "in.jsonl", "--tenant", "acme")["inserted"] == 1


def test_a_self_reference_is_rejected(acme: Ccv) -> None:
    item = "7b1e2c1a-5d3f-4a8e-9c0b-1d2e3f4a5b6c"
    write_jsonl(
        Path("in.jsonl"),
        [_rec(id=item, source_item_id=item, source_item_type="profile_field")],
    )
    result = acme.json("profile", "import", "in.jsonl", code=1)
    assert result["rejected"] == 1


def test_the_same_id_with_other_content_is_a_conflict(acme: Ccv) -> None:
    item = "7b1e2c1a-5d3f-4a8e-9c0b-1d2e3f4a5b6c"
    write_jsonl(Path("a.jsonl"), [_rec(id=item, value="a@example.com")])
    write_jsonl(Path("b.jsonl"), [_rec(id=item, value="b@example.com")])
    acme.json("profile", "import", "a.jsonl")
    result = acme.json("profile", "import", "b.jsonl", code=1)
    assert (result["rejected"], result["inserted"]) == (1, 0)
    again = acme.json("profile", "import", "a.jsonl")
    assert again["unchanged"] == 1


def test_dry_run_reports_without_storing(acme: Ccv) -> None:
    write_jsonl(Path("in.jsonl"), [_rec()])
    result = acme.json("profile", "import", "in.jsonl", "--dry-run")
    assert result["records"] == 1
    acme.fails("profile", "show", "c-1", "--tenant", "acme", code=3)


def test_a_json_array_file_is_imported(acme: Ccv) -> None:
    Path("in.json").write_text(json.dumps([_rec("c-1"), _rec("c-2")]), encoding="utf-8")
    assert acme.json("profile", "import", "in.json")["inserted"] == 2


def test_a_missing_file_is_a_usage_error(acme: Ccv) -> None:
    result = acme.fails("profile", "import", "nowhere.jsonl", code=2)
    assert "nowhere.jsonl" in result.stderr


def test_an_unknown_validation_mode_is_a_usage_error(acme: Ccv) -> None:
    write_jsonl(Path("in.jsonl"), [_rec()])
    acme.fails("profile", "import", "in.jsonl", "--validation", "lenient", code=2)
    acme.fails("profile", "show", "c-1", "--tenant", "acme", code=3)


def test_an_unknown_key_in_an_asset_record_suggests_the_right_one(acme: Ccv) -> None:
    asset = {"kind": "asset", "tenant": "acme", "customer": "c-1", "name": "id_card"}
    write_jsonl(Path("in.jsonl"), [asset | {"asset_type": "image", "sizebytes": 3}])
    result = acme.json("profile", "import", "in.jsonl", code=1)
    [error] = result["errors"]
    assert "did you mean 'size_bytes'" in error["message"]


def test_a_json_array_broken_part_way_keeps_earlier_records_and_reports_the_line(
    acme: Ccv,
) -> None:
    Path("in.json").write_text(
        "[\n"
        '  {"tenant": "acme", "customer": "c-1", "name": "email", "value": "a@example.com"},\n'
        '  {"tenant": "acme", "customer": "c-2", "name": "email", "value": "b@example.com"},\n'
        '  {"tenant": "acme", "customer" "c-3"},\n'
        '  {"tenant": "acme", "customer": "c-4", "name": "email", "value": "d@example.com"}\n'
        "]\n",
        encoding="utf-8",
    )
    result = acme.json("profile", "import", "in.json", code=1)
    assert result["inserted"] == 2
    assert [e["line"] for e in result["errors"]] == [4]
    acme.fails("profile", "show", "c-4", "--tenant", "acme", code=3)


def test_wide_csv_cells_are_converted_and_bad_cells_rejected_by_line(acme: Ccv) -> None:
    Path("in.csv").write_text(
        "customer,card_last4,refund_amount\nc-1,0042,12.5\nc-2,12345,\n", encoding="utf-8"
    )
    result = acme.json("profile", "import", "in.csv", "--tenant", "acme", code=1)
    assert (result["records"], result["inserted"], result["rejected"]) == (3, 2, 1)
    assert [e["line"] for e in result["errors"]] == [3]
    fields = acme.json("profile", "show", "c-1", "--tenant", "acme")["fields"]
    assert fields["card_last4"]["value"] == "0042"
    assert fields["refund_amount"]["value"] == 12.5
    assert fields["refund_amount"]["source"] == "imported"


def test_a_record_may_reference_an_item_in_a_later_file_of_the_same_run(acme: Ccv) -> None:
    asset_id = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
    write_jsonl(
        Path("derived.jsonl"),
        [
            _rec(
                name="card_last4",
                value="1234",
                source="document_extracted",
                source_item_id=asset_id,
            )
        ],
    )
    asset = {"kind": "asset", "tenant": "acme", "customer": "c-1", "id": asset_id}
    write_jsonl(Path("asset.jsonl"), [asset | {"name": "card_photo", "asset_type": "image"}])
    result = acme.json("profile", "import", "derived.jsonl", "asset.jsonl")
    assert (result["inserted"], result["warnings"]) == (2, 0)
    field = acme.json("profile", "show", "c-1", "--tenant", "acme")["fields"]["card_last4"]
    assert field["source_item_type"] == "profile_asset"  # inferred
    chain = acme.json("profile", "trace", field["id"], "--tenant", "acme")["chain"]
    assert (chain[0]["id"], chain[0]["kind"]) == (asset_id, "asset")


def test_rejection_messages_never_echo_a_pii_value(acme: Ccv) -> None:
    secret = "SECRET-7f3a@@example"
    write_jsonl(Path("in.jsonl"), [_rec(value=secret)])
    for mode in ("strict", "warn"):
        for extra in (["--json"], []):
            result = acme(
                "profile", "import", "in.jsonl", "--dry-run", "--validation", mode, *extra
            )
            assert_exit(result, 1 if mode == "strict" else 0)
            assert "email" in result.output
            assert "SECRET-7f3a" not in result.output
