"""`ccv schema apply | show`: definitions per agent, and broken or conflicting files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .helpers import DEMO_SCHEMAS, Ccv, assert_exit, flat


def _write(name: str, text: str) -> Path:
    path = Path(name)
    path.write_text(text, encoding="utf-8")
    return path


def _agent(agent: str, name: str = "score", value_type: str = "number") -> str:
    return (
        f"tenant: acme\nagent: {agent}\nfields:\n  - name: {name}\n    value_type: {value_type}\n"
    )


def test_schema_show_lists_definitions_per_agent(ccv: Ccv) -> None:
    ccv.json("schema", "apply", *DEMO_SCHEMAS)
    everything = ccv.json("schema", "show", "--tenant", "northwind-bank")["definitions"]
    kyc = ccv.json("schema", "show", "--tenant", "northwind-bank", "--agent", "kyc-bot")
    assert len(everything) == 20
    assert {d["agent"] for d in kyc["definitions"]} == {"kyc-bot"}
    assert {d["name"] for d in kyc["definitions"]} >= {"document_type", "document_expiry"}
    assert len(kyc["definitions"]) == 6


def test_a_schema_file_is_the_whole_truth_for_its_agent(ccv: Ccv) -> None:
    _write("a1.yaml", _agent("a1", "score"))
    ccv.json("schema", "apply", "a1.yaml")
    _write("a1.yaml", _agent("a1", "rating"))
    applied = ccv.json("schema", "apply", "a1.yaml")
    assert (applied["created"], applied["disabled"]) == (1, 1)
    shown = ccv.json("schema", "show", "--tenant", "acme")["definitions"]
    # The definition the file dropped is disabled, not deleted (its PII flag keeps masking).
    assert {d["name"]: d["enabled"] for d in shown} == {"rating": True, "score": False}


def test_a_retired_pii_definition_keeps_masking_stored_values(ccv: Ccv) -> None:
    _write(
        "a1.yaml",
        "tenant: acme\nagent: a1\nfields:\n  - name: email\n    value_type: email\n"
        "    is_pii: true\n",
    )
    ccv.json("schema", "apply", "a1.yaml")
    _write(
        "r.jsonl",
        '{"tenant": "acme", "customer": "c-1", "name": "email", "value": "ana@example.com"}\n',
    )
    ccv.json("profile", "import", "r.jsonl")
    _write("a1.yaml", "tenant: acme\nagent: a1\nfields: []\n")
    ccv.json("schema", "apply", "a1.yaml")
    shown = ccv.json("profile", "show", "c-1", "--tenant", "acme")
    assert shown["fields"]["email"]["value"] == "a***@example.com"


def test_broken_yaml_is_exit_1_with_file_and_line(ccv: Ccv) -> None:
    path = _write(
        "broken.yaml",
        "tenant: acme\nagent: a1\nfields:\n  - name: email\n    value_type: email\n"
        "   bad_indent: [\n",
    )
    result = ccv.fails("schema", "apply", path, code=1)
    assert re.search(r"broken\.yaml:[56]\b", result.stderr)
    assert "YAML" in result.stderr


def test_an_unknown_key_in_a_definition_suggests_the_right_one(ccv: Ccv) -> None:
    path = _write("typo.yaml", _agent("a1").replace("value_type", "value_typ"))
    result = ccv.fails("schema", "apply", path, code=1)
    message = flat(result.stderr)
    assert "typo.yaml:5" in message
    assert "value_typ" in message
    assert "did you mean 'value_type'" in message


def test_an_unknown_top_level_key_is_an_error(ccv: Ccv) -> None:
    path = _write("top.yaml", _agent("a1").replace("fields:", "feilds:"))
    result = ccv.fails("schema", "apply", path, code=1)
    assert "did you mean 'fields'" in flat(result.stderr)


@pytest.mark.parametrize(
    ("change", "word"),
    [
        (("value_type: number", "value_type: decimal"), "value_type"),
        (("name: score", "name: Score Card"), "name"),
        (("agent: a1", "agent: A1 Bot"), "agent"),
        (("tenant: acme", 'tenant: "ac\\x07me"'), "tenant"),
    ],
    ids=["bad-value-type", "bad-name", "bad-agent", "control-char-tenant"],
)
def test_an_invalid_value_in_a_schema_file_is_exit_1(
    ccv: Ccv, change: tuple[str, str], word: str
) -> None:
    path = _write("bad.yaml", _agent("a1").replace(*change))
    result = ccv.fails("schema", "apply", path, code=1)
    assert "bad.yaml:" in result.stderr
    assert word in result.stderr


def test_conflicting_value_types_of_two_agents_name_both_files(ccv: Ccv) -> None:
    first = _write("first.yaml", _agent("a1", value_type="number"))
    second = _write("second.yaml", _agent("a2", value_type="string"))
    result = ccv.fails("schema", "apply", first, second, code=1)
    message = flat(result.stderr)
    assert "first.yaml" in message
    assert "second.yaml" in message
    # All files are checked before anything is stored.
    assert ccv.json("schema", "show", "--tenant", "acme")["definitions"] == []


def test_a_file_conflicting_with_a_stored_agent_is_refused(ccv: Ccv) -> None:
    ccv.json("schema", "apply", _write("first.yaml", _agent("a1", value_type="number")))
    result = ccv.fails(
        "schema", "apply", _write("second.yaml", _agent("a2", value_type="boolean")), code=1
    )
    message = flat(result.stderr)
    assert "first.yaml" in message
    assert "second.yaml" in message
    agents = {d["agent"] for d in ccv.json("schema", "show", "--tenant", "acme")["definitions"]}
    assert agents == {"a1"}


def test_a_missing_schema_file_is_a_usage_error(ccv: Ccv) -> None:
    result = ccv.fails("schema", "apply", "missing.yaml", code=2)
    assert "missing.yaml" in result.stderr


def test_a_schema_error_has_no_traceback_in_text_mode(ccv: Ccv) -> None:
    result = ccv("schema", "apply", _write("top.yaml", "- just\n- a list\n"))
    assert_exit(result, 1)
    assert "top.yaml" in result.stderr


def test_apply_dry_run_says_per_definition_what_would_change(ccv: Ccv, tmp_path: Path) -> None:
    path = tmp_path / "bot.yaml"
    path.write_text(
        "tenant: acme\nagent: bot\nfields:\n  - name: email\n    value_type: email\n"
        "  - name: tier\n",
        encoding="utf-8",
    )
    first = ccv.json("schema", "apply", path, "--dry-run")
    assert first["dry_run"] is True and first["created"] == 2
    assert [(c["name"], c["change"]) for c in first["changes"]] == [
        ("email", "created"),
        ("tier", "created"),
    ]
    assert ccv.json("schema", "show", "--tenant", "acme")["definitions"] == []  # nothing stored
    assert ccv.json("schema", "apply", path)["created"] == 2
    path.write_text(
        "tenant: acme\nagent: bot\nfields:\n  - name: email\n    value_type: email\n"
        "    is_pii: true\n    retention_days: 30\n  - name: nick\n",
        encoding="utf-8",
    )
    plan = ccv.json("schema", "apply", path, "--dry-run")
    assert [(c["name"], c["change"], c["attributes"]) for c in plan["changes"]] == [
        ("email", "updated", ["is_pii", "retention_days"]),
        ("nick", "created", []),
        ("tier", "disabled", []),
    ]
    shown = ccv.json("schema", "show", "--tenant", "acme")["definitions"]
    assert {(d["name"], d["is_pii"], d["enabled"]) for d in shown} == {
        ("email", False, True),
        ("tier", False, True),
    }
    as_text = ccv("schema", "apply", path, "--dry-run")
    assert "updated acme/bot/email (is_pii, retention_days)" in as_text.stdout
    assert "dry run: nothing stored" in as_text.stdout
    applied = ccv.json("schema", "apply", path)
    assert (applied["dry_run"], len(applied["changes"])) == (False, 3)
    assert ccv.json("schema", "apply", path)["changes"] == []  # idempotent
