"""Pure domain rules: lifecycle (SPEC §2), record structure (§3), identifiers, times, YAML files."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from ccv.domain.enums import ItemKind, Source, SourceItemType, Status, ValidationMode, ValueType
from ccv.domain.identifiers import (
    check_field_name,
    check_item_id,
    check_key,
    check_slug,
    is_uuid,
)
from ccv.domain.lifecycle import (
    Version,
    effective_status,
    find_cycle_members,
    is_expired,
    pick_as_of,
    plan_supersession,
    version_key,
)
from ccv.domain.records import RecordError, parse_record
from ccv.domain.schema_file import parse_schema
from ccv.domain.timeutil import ensure_utc, format_time, parse_time
from ccv.domain.yamldoc import YamlError, parse_yaml

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def ver(item_id: str, minutes: int, status: Status = Status.ACTIVE) -> Version:
    return Version(item_id, at(minutes), status)


# --- plan_supersession -----------------------------------------------------------------------


def test_first_version_of_a_field_becomes_active() -> None:
    plan = plan_supersession([], [ver("a", 0)])
    assert plan.incoming == {"a": (Status.ACTIVE, None)}
    assert plan.displaced == {}


def test_late_dangling_arrival_goes_to_history_as_superseded() -> None:
    # Precedence superseded > orphaned: an older dangling version is history, not orphaned.
    plan = plan_supersession([ver("active", 10)], [ver("late", 0, Status.ORPHANED)])
    assert plan.incoming == {"late": (Status.SUPERSEDED, "active")}
    assert plan.displaced == {}


def test_newer_dangling_arrival_is_orphaned_and_displaces_nothing() -> None:
    plan = plan_supersession([ver("active", 0)], [ver("dangling", 10, Status.ORPHANED)])
    assert plan.incoming == {"dangling": (Status.ORPHANED, None)}
    assert plan.displaced == {}


def test_newer_incoming_version_displaces_the_active_one() -> None:
    plan = plan_supersession([ver("old", 0)], [ver("new", 5)])
    assert plan.incoming == {"new": (Status.ACTIVE, None)}
    assert plan.displaced == {"old": "new"}


def test_equal_collected_at_is_won_by_the_larger_id() -> None:
    larger_incoming = plan_supersession([ver("aaa", 0)], [ver("bbb", 0)])
    assert larger_incoming.incoming == {"bbb": (Status.ACTIVE, None)}
    assert larger_incoming.displaced == {"aaa": "bbb"}

    smaller_incoming = plan_supersession([ver("bbb", 0)], [ver("aaa", 0)])
    assert smaller_incoming.incoming == {"aaa": (Status.SUPERSEDED, "bbb")}
    assert smaller_incoming.displaced == {}


def test_late_arrival_goes_to_history_superseded_by_the_newer_stored_version() -> None:
    plan = plan_supersession([ver("current", 10)], [ver("late", 1)])
    assert plan.incoming == {"late": (Status.SUPERSEDED, "current")}
    assert plan.displaced == {}


def test_late_arrivals_are_superseded_by_the_next_newer_version() -> None:
    plan = plan_supersession([ver("head", 10)], [ver("v1", 1), ver("v3", 3), ver("v2", 2)])
    assert plan.incoming == {
        "v1": (Status.SUPERSEDED, "v2"),
        "v2": (Status.SUPERSEDED, "v3"),
        "v3": (Status.SUPERSEDED, "head"),
    }
    assert plan.displaced == {}


def test_newest_of_a_batch_wins_and_the_rest_chain_into_history() -> None:
    plan = plan_supersession([ver("stored", 5)], [ver("n9", 9), ver("n1", 1), ver("n7", 7)])
    assert plan.incoming == {
        "n1": (Status.SUPERSEDED, "stored"),
        "n7": (Status.SUPERSEDED, "n9"),
        "n9": (Status.ACTIVE, None),
    }
    assert plan.displaced == {"stored": "n9"}


def test_orphaned_arrival_displaces_nothing() -> None:
    plan = plan_supersession([ver("current", 0)], [ver("dangling", 9, Status.ORPHANED)])
    assert plan.incoming == {"dangling": (Status.ORPHANED, None)}
    assert plan.displaced == {}


def test_orphaned_arrival_is_not_a_head_for_later_arrivals() -> None:
    plan = plan_supersession([ver("dangling", 9, Status.ORPHANED)], [ver("fresh", 1)])
    assert plan.incoming == {"fresh": (Status.ACTIVE, None)}
    assert plan.displaced == {}


def test_expired_head_still_blocks_older_arrivals() -> None:
    plan = plan_supersession([ver("expired", 10, Status.EXPIRED)], [ver("older", 1)])
    assert plan.incoming == {"older": (Status.SUPERSEDED, "expired")}
    assert plan.displaced == {}


def test_superseded_newest_version_still_blocks_older_arrivals() -> None:
    plan = plan_supersession([ver("newest", 10, Status.SUPERSEDED)], [ver("older", 1)])
    assert plan.incoming == {"older": (Status.SUPERSEDED, "newest")}


def test_newer_arrival_displaces_an_expired_version_into_superseded() -> None:
    plan = plan_supersession([ver("expired", 1, Status.EXPIRED)], [ver("new", 5)])
    assert plan.incoming == {"new": (Status.ACTIVE, None)}
    assert plan.displaced == {"expired": "new"}


def test_already_superseded_versions_are_not_displaced_again() -> None:
    existing = [ver("old", 0, Status.SUPERSEDED), ver("current", 5)]
    plan = plan_supersession(existing, [ver("new", 9)])
    assert plan.displaced == {"current": "new"}


def test_version_key_orders_by_collected_at_then_id() -> None:
    assert version_key(at(0), "b") > version_key(at(0), "a")
    assert version_key(at(1), "a") > version_key(at(0), "z")


# --- pick_as_of ------------------------------------------------------------------------------


def test_as_of_picks_the_latest_version_collected_at_or_before_time() -> None:
    versions = [ver("v1", 0, Status.SUPERSEDED), ver("v2", 10)]
    assert pick_as_of(versions, {}, at(5)) == versions[0]
    assert pick_as_of(versions, {}, at(10)) == versions[1]
    assert pick_as_of(versions, {}, at(-1)) is None


def test_as_of_tie_on_collected_at_is_won_by_the_larger_id() -> None:
    versions = [ver("b", 0), ver("a", 0, Status.SUPERSEDED)]
    assert pick_as_of(versions, {}, at(0)) == versions[0]


def test_as_of_an_expired_version_does_not_resurface_an_older_one() -> None:
    versions = [ver("v1", 0, Status.SUPERSEDED), ver("v2", 10)]
    expires = {"v1": None, "v2": at(20)}
    assert pick_as_of(versions, expires, at(19)) == versions[1]
    assert pick_as_of(versions, expires, at(20)) is None
    assert pick_as_of(versions, expires, at(30)) is None


def test_as_of_never_serves_an_orphaned_version() -> None:
    versions = [ver("v1", 0, Status.SUPERSEDED), ver("dangling", 10, Status.ORPHANED)]
    assert pick_as_of(versions, {}, at(20)) == versions[0]
    assert pick_as_of([versions[1]], {}, at(20)) is None


# --- find_cycle_members ----------------------------------------------------------------------


def test_chain_without_cycle_has_no_members() -> None:
    assert find_cycle_members({"c": "b", "b": "a", "a": None, "d": "outside"}) == set()


def test_self_reference_is_a_cycle() -> None:
    assert find_cycle_members({"a": "a", "b": None}) == {"a"}


def test_two_and_three_cycles_are_found_but_not_their_tails() -> None:
    edges: dict[str, str | None] = {
        "x": "y",
        "y": "x",
        "p": "q",
        "q": "r",
        "r": "p",
        "tail": "p",
        "tail2": "tail",
    }
    assert find_cycle_members(edges) == {"x", "y", "p", "q", "r"}


def test_cycle_is_found_whichever_node_the_walk_starts_from() -> None:
    edges: dict[str, str | None] = {"tail": "a", "a": "b", "b": "c", "c": "a"}
    assert find_cycle_members(edges) == {"a", "b", "c"}
    assert find_cycle_members(dict(reversed(edges.items()))) == {"a", "b", "c"}


# --- effective_status and is_expired ---------------------------------------------------------


@pytest.mark.parametrize(
    ("superseded", "expired", "orphaned", "expected"),
    [
        (False, False, False, Status.ACTIVE),
        (False, False, True, Status.ORPHANED),
        (False, True, False, Status.EXPIRED),
        (False, True, True, Status.EXPIRED),
        (True, False, False, Status.SUPERSEDED),
        (True, False, True, Status.SUPERSEDED),
        (True, True, False, Status.SUPERSEDED),
        (True, True, True, Status.SUPERSEDED),
    ],
)
def test_status_precedence_is_superseded_then_expired_then_orphaned(
    superseded: bool, expired: bool, orphaned: bool, expected: Status
) -> None:
    assert effective_status(superseded=superseded, expired=expired, orphaned=orphaned) is expected


def test_item_is_expired_when_expires_at_is_at_or_before_time() -> None:
    assert is_expired(at(0), at(0))
    assert is_expired(at(0), at(1))
    assert not is_expired(at(0), at(0) - timedelta(microseconds=1))
    assert not is_expired(None, at(1000))


# --- parse_record ----------------------------------------------------------------------------

UUID_A = "2f1c6f0e-8c1a-4d2b-9a51-3c1f0d7e2b44"


def field_record(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"customer": "c-1", "name": "email", "value": "ana@example.com"}
    record.update(overrides)
    return record


def reject(record: Any, default_tenant: str | None = "acme") -> str:
    with pytest.raises(RecordError) as caught:
        parse_record(record, default_tenant)
    return str(caught.value)


def test_minimal_field_record_gets_defaults() -> None:
    parsed = parse_record(field_record(), "acme")
    assert parsed.kind is ItemKind.FIELD
    assert parsed.tenant == "acme"
    assert parsed.id is None
    assert parsed.collected_at is None
    assert parsed.columns["source"] == Source.IMPORTED.value
    assert parsed.columns["confidence"] == 1.0
    assert parsed.columns["source_metadata"] == {}


def test_unknown_key_is_rejected_with_a_did_you_mean_hint() -> None:
    message = reject(field_record(colected_at="2026-03-01"))
    assert "unknown key 'colected_at'" in message
    assert "did you mean 'collected_at'" in message


def test_unknown_key_without_a_close_match_has_no_hint() -> None:
    message = reject(field_record(zzz=1))
    assert "unknown key 'zzz'" in message
    assert "did you mean" not in message


def test_asset_key_on_a_field_record_is_unknown() -> None:
    assert "unknown key 'storage_uri'" in reject(field_record(storage_uri="s3://x"))


@pytest.mark.parametrize("name", ["Email", "1st_name", "e-mail", "", "a" * 51, 7])
def test_bad_field_name_is_rejected(name: Any) -> None:
    assert "name must match" in reject(field_record(name=name))


def test_field_name_of_fifty_characters_is_accepted() -> None:
    assert parse_record(field_record(name="a" * 50), "acme").name == "a" * 50


def test_bad_source_is_rejected_listing_the_allowed_values() -> None:
    message = reject(field_record(source="guessed"))
    assert "source 'guessed' is not one of" in message
    assert "user_provided" in message


def test_bad_kind_is_rejected() -> None:
    assert "kind 'document' is not one of: field, asset" in reject(field_record(kind="document"))


def test_bad_source_item_type_is_rejected() -> None:
    message = reject(field_record(source_item_id="x", source_item_type="crm"))
    assert "source_item_type 'crm' is not one of" in message


def test_source_item_type_without_source_item_id_is_rejected() -> None:
    assert "without source_item_id" in reject(field_record(source_item_type="session"))


def test_tenant_differing_from_default_tenant_is_rejected() -> None:
    assert "differs from --tenant acme" in reject(field_record(tenant="other"), "acme")


def test_tenant_comes_from_the_record_or_the_default() -> None:
    assert parse_record(field_record(tenant="acme"), "acme").tenant == "acme"
    assert parse_record(field_record(tenant="zeta"), None).tenant == "zeta"
    assert "no tenant" in reject(field_record(), None)


@pytest.mark.parametrize("confidence", [-0.01, 1.01, True, "0.5", float("nan"), float("inf")])
def test_confidence_outside_zero_to_one_is_rejected(confidence: Any) -> None:
    assert "confidence must be a number from 0 to 1" in reject(field_record(confidence=confidence))


@pytest.mark.parametrize("confidence", [0, 1, 0.5])
def test_confidence_bounds_are_accepted(confidence: float) -> None:
    assert parse_record(field_record(confidence=confidence), "acme").columns["confidence"] == (
        float(confidence)
    )


def test_missing_customer_name_or_value_is_rejected() -> None:
    assert "missing key 'customer'" in reject({"name": "email", "value": 1})
    assert "missing key 'name'" in reject({"customer": "c", "value": 1})
    assert "missing key 'value'" in reject({"customer": "c", "name": "email"})


def test_non_object_record_is_rejected() -> None:
    assert "JSON object" in reject(["customer", "c"])


def test_item_id_must_be_a_uuid_and_is_canonicalised() -> None:
    assert "id is not a UUID" in reject(field_record(id="not-a-uuid"))
    parsed = parse_record(field_record(id=UUID_A.upper()), "acme")
    assert parsed.id == UUID_A


def test_collected_at_date_means_midnight_utc_and_bad_times_are_rejected() -> None:
    parsed = parse_record(field_record(collected_at="2026-03-01"), "acme")
    assert parsed.collected_at == datetime(2026, 3, 1, tzinfo=UTC)
    assert "collected_at" in reject(field_record(collected_at="yesterday"))
    assert "expires_at must be an ISO 8601 time string" in reject(field_record(expires_at=5))


def test_asset_checksum_must_be_sha256_hex_and_is_lowercased() -> None:
    asset: dict[str, Any] = {
        "kind": "asset",
        "customer": "c-1",
        "name": "id_card_front",
        "asset_type": "image",
    }
    good = "AB" * 32
    assert parse_record(asset | {"checksum": good}, "acme").columns["checksum"] == good.lower()
    for bad in ("ab" * 31 + "a", "zz" * 32, "ab" * 33):
        assert "checksum" in reject(asset | {"checksum": bad})


def test_asset_needs_a_known_asset_type_and_non_negative_size() -> None:
    asset: dict[str, Any] = {"kind": "asset", "customer": "c-1", "name": "scan"}
    assert "asset_type" in reject(asset | {"asset_type": "video"})
    assert "size_bytes" in reject(asset | {"asset_type": "pdf", "size_bytes": -1})
    assert "unknown key 'value'" in reject(asset | {"asset_type": "pdf", "value": 1})


def test_lineage_fields_are_kept_as_given() -> None:
    parsed = parse_record(field_record(source_item_id="sess-1", source_item_type="session"), "acme")
    assert parsed.source_item_id == "sess-1"
    assert parsed.source_item_type is SourceItemType.SESSION


# --- identifiers -----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["a", "x" * 128, "acme:eu west", "Zürich 'HQ' 100%_", "日本"])
def test_tenant_and_customer_keys_accept_any_printable_text(value: str) -> None:
    assert check_key(value, "tenant") == value


@pytest.mark.parametrize("value", ["", "x" * 129, "tab\there", "nul\x00", "del\x7f", "c1\x85", 5])
def test_tenant_and_customer_keys_reject_empty_long_and_control_characters(value: Any) -> None:
    with pytest.raises(ValueError, match="customer"):
        check_key(value, "customer")


def test_slugs_follow_the_spec_pattern() -> None:
    assert check_slug("support-bot.v2_x", "agent") == "support-bot.v2_x"
    assert check_slug("a" * 64, "agent") == "a" * 64
    for bad in ("Support", "-bot", "a" * 65, "bot!", ""):
        with pytest.raises(ValueError, match="agent must be a slug"):
            check_slug(bad, "agent")


def test_field_names_follow_the_spec_pattern() -> None:
    assert check_field_name("_private1") == "_private1"
    for bad in ("9lives", "Name", "a-b", "a" * 51):
        with pytest.raises(ValueError):
            check_field_name(bad)


def test_item_ids_are_stored_as_canonical_lowercase_uuids() -> None:
    raw = uuid.uuid4()
    assert check_item_id(str(raw).upper()) == str(raw)
    assert check_item_id(raw.hex) == str(raw)
    assert is_uuid(str(raw))
    assert not is_uuid("sess-123")
    with pytest.raises(ValueError):
        check_item_id(12)


# --- timeutil --------------------------------------------------------------------------------


def test_a_date_means_midnight_utc_that_day() -> None:
    assert parse_time("2026-03-01") == datetime(2026, 3, 1, 0, 0, tzinfo=UTC)


def test_times_with_z_offset_or_none_are_read_as_utc() -> None:
    assert parse_time("2026-03-01T10:00:00Z") == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert parse_time("2026-03-01T12:00:00+02:00") == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert parse_time("2026-03-01T10:00:00") == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert parse_time(" 2026-03-01T10:00:00z ").tzinfo is UTC


@pytest.mark.parametrize("text", ["", "  ", "yesterday", "2026-13-01", "2026-02-30T10:00Z"])
def test_unreadable_times_raise_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_time(text)


def test_output_times_carry_an_offset() -> None:
    local = datetime(2026, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert format_time(local) == "2026-03-01T10:00:00+00:00"
    assert format_time(None) is None
    assert ensure_utc(datetime(2026, 3, 1, 10)) == datetime(2026, 3, 1, 10, tzinfo=UTC)


# --- yamldoc ---------------------------------------------------------------------------------

SCHEMA_TEXT = """\
tenant: acme
agent: support-bot
fields:
  - name: email
    value_type: email
    is_pii: true
  - name: account_tier
    value_type: enum
    allowed_values: [free, pro]
"""


def test_yaml_document_remembers_line_and_column_of_keys() -> None:
    doc = parse_yaml(SCHEMA_TEXT)
    assert doc.data["agent"] == "support-bot"
    assert doc.where("agent") == (2, 1)
    assert doc.where("fields", 0) == (4, 5)
    assert doc.where("fields", 1, "value_type") == (8, 5)
    assert doc.where("fields", 1, "allowed_values") == (9, 5)


def test_yaml_position_falls_back_to_the_longest_known_prefix() -> None:
    doc = parse_yaml(SCHEMA_TEXT)
    assert doc.where("fields", 0, "no_such_key") == (4, 5)
    assert doc.where("nothing") == (1, 1)


def test_yaml_syntax_error_reports_its_position() -> None:
    with pytest.raises(YamlError) as caught:
        parse_yaml("tenant: acme\nfields: [1, 2\nagent: x\n")
    assert "YAML syntax error" in str(caught.value)
    assert (caught.value.line, caught.value.column) == (3, 6)


def test_yaml_duplicate_key_is_an_error_at_the_second_key() -> None:
    with pytest.raises(YamlError) as caught:
        parse_yaml("tenant: acme\nfields:\n  - name: a\n    name: b\n")
    assert str(caught.value) == "duplicate key 'name'"
    assert (caught.value.line, caught.value.column) == (4, 5)


def test_empty_yaml_document_is_none() -> None:
    assert parse_yaml("").data is None


# --- schema_file -----------------------------------------------------------------------------


def schema(text: str) -> tuple[list[Any], list[Any]]:
    return parse_schema("agent.yaml", parse_yaml(text))


def test_valid_schema_file_gives_its_definitions() -> None:
    definitions, findings = schema(SCHEMA_TEXT)
    assert findings == []
    assert [(d.tenant, d.agent, d.name) for d in definitions] == [
        ("acme", "support-bot", "email"),
        ("acme", "support-bot", "account_tier"),
    ]
    email, tier = definitions
    assert email.value_type is ValueType.EMAIL and email.is_pii
    assert email.validation_mode is ValidationMode.STRICT
    assert tier.allowed_values == ["free", "pro"]
    assert email.source_file == "agent.yaml"


def test_unknown_definition_key_is_reported_where_it_stands_with_a_hint() -> None:
    definitions, findings = schema(SCHEMA_TEXT.replace("    is_pii: true", "    is_pi: true"))
    assert definitions == []
    (finding,) = findings
    assert finding.code == "unknown-key"
    assert "did you mean 'is_pii'" in finding.message
    assert (finding.file, finding.line, finding.column) == ("agent.yaml", 6, 5)


def test_unknown_top_level_key_and_missing_keys_are_findings() -> None:
    _, findings = schema("tenant: acme\nagnet: bot\nfields: []\n")
    codes = sorted((f.code, f.line) for f in findings)
    assert codes == [("missing-key", 1), ("unknown-key", 2)]
    assert any("did you mean 'agent'" in f.message for f in findings)


@pytest.mark.parametrize(
    ("definition", "code", "where", "line"),
    [
        ("  - name: Email\n", "invalid-name", "name", 4),
        ("  - name: x\n    value_type: text\n", "invalid-value", "value_type", 5),
        ("  - name: x\n    value_type: enum\n", "missing-key", "enum", 4),
        ("  - name: x\n    validation_regex: '[a-'\n", "invalid-value", "validation_regex", 5),
        ("  - name: x\n    retention_days: 0\n", "invalid-value", "retention_days", 5),
        ("  - name: x\n    validation_mode: loose\n", "invalid-value", "validation_mode", 5),
        ("  - name: x\n    is_pii: 'yes'\n", "invalid-value", "is_pii", 5),
        ("  - value_type: string\n", "missing-key", "name", 4),
    ],
)
def test_bad_definitions_are_findings_at_the_offending_line(
    definition: str, code: str, where: str, line: int
) -> None:
    definitions, findings = schema("tenant: acme\nagent: bot\nfields:\n" + definition)
    assert definitions == []
    assert [f.code for f in findings] == [code]
    assert where in findings[0].message
    assert findings[0].line == line


def test_field_defined_twice_is_a_finding_pointing_at_the_first() -> None:
    _, findings = schema("tenant: acme\nagent: bot\nfields:\n  - name: x\n  - name: x\n")
    (finding,) = findings
    assert finding.code == "duplicate-field"
    assert "first at line 4" in finding.message
    assert finding.line == 5


def test_bad_agent_slug_and_non_list_fields_are_findings() -> None:
    _, findings = schema("tenant: acme\nagent: Support Bot\nfields: {}\n")
    assert sorted(f.code for f in findings) == ["invalid-name", "invalid-value"]


def test_a_schema_must_be_a_mapping() -> None:
    _, findings = schema("- just\n- a list\n")
    assert [f.code for f in findings] == ["invalid-file"]


def test_time_leaving_the_calendar_in_utc_is_a_record_error() -> None:
    with pytest.raises(ValueError):
        parse_time("0001-01-01T00:00:00+01:00")
    assert "collected_at" in reject(field_record(collected_at="0001-01-01T00:00:00+01:00"))
