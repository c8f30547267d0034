"""`ccv identity resolve / link / unlink / list`, identity records in imports, identities in
`profile show` and `erase` (SPEC §10), through the CLI on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from .helpers import Ccv, assert_exit, error_lines, flat, write_jsonl

T = ("--tenant", "acme")
PHONE = "+4915112345678"
EMAIL = "ana@example.com"
SCHEMA = """\
tenant: acme
agent: bot
fields:
  - name: email
    value_type: email
    is_pii: true
  - name: nickname
"""


@pytest.fixture
def acme(ccv: Ccv, tmp_path: Path) -> Ccv:
    """Two customers with a value each, and the schema that makes `email` PII."""
    schema = tmp_path / "bot.yaml"
    schema.write_text(SCHEMA, encoding="utf-8")
    ccv.json("schema", "apply", schema)
    records = write_jsonl(
        tmp_path / "values.jsonl",
        [
            {"tenant": "acme", "customer": "c-1", "name": "nickname", "value": "Ana"},
            {"tenant": "acme", "customer": "c-2", "name": "nickname", "value": "Bo"},
        ],
    )
    assert ccv.json("profile", "import", records)["inserted"] == 2
    return ccv


def _rows(ccv: Ccv, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine(ccv.database_url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql))]
    finally:
        engine.dispose()


def test_resolve_create_gets_or_creates_one_customer(acme: Ccv) -> None:
    acme.fails("identity", "resolve", *T, "--channel", "whatsapp", "--id", PHONE, code=3)
    created = acme.json(
        "identity", "resolve", *T, "--channel", "whatsapp", "--id", PHONE, "--create"
    )
    assert created["outcome"] == "created" and created["created"] is True
    customer = created["customer"]
    assert str(uuid.UUID(customer)) == customer
    assert created["identity"]["channel_user_id"] == "***78"  # a number: masked
    assert created["identity"]["masked"] is True
    for extra in ((), ("--create",)):
        again = acme.json("identity", "resolve", *T, "--channel", "whatsapp", "--id", PHONE, *extra)
        assert (again["customer"], again["outcome"], again["created"]) == (customer, "found", False)
    # The new customer exists: it has an identity and nothing else yet.
    shown = acme.json("profile", "show", customer, *T)
    assert shown["fields"] == {} and [i["channel"] for i in shown["identities"]] == ["whatsapp"]
    assert _rows(acme, "SELECT count(*) FROM identities") == [(1,)]


def test_resolve_create_for_a_named_customer_and_its_conflicts(acme: Ccv) -> None:
    made = acme.json(
        "identity", "resolve", *T, "--channel", "web", "--id", "cookie-7f3a",
        "--create", "--customer", "c-1",
    )  # fmt: skip
    assert (made["customer"], made["outcome"]) == ("c-1", "created")
    assert made["identity"]["channel_user_id"] == "cookie-7f3a"  # not PII: shown
    same = acme.json(
        "identity", "resolve", *T, "--channel", "web", "--id", "cookie-7f3a",
        "--create", "--customer", "c-1",
    )  # fmt: skip
    assert same["outcome"] == "found"
    refused = acme.fails(
        "identity", "resolve", *T, "--channel", "web", "--id", "cookie-7f3a",
        "--create", "--customer", "c-2", code=4,
    )  # fmt: skip
    assert "belongs to customer c-1" in flat(refused.stderr)
    usage = acme.fails(
        "identity", "resolve", *T, "--channel", "web", "--id", "x", "--customer", "c-2", code=2
    )
    assert "--create" in flat(usage.stderr)


def test_link_unlink_and_list(acme: Ccv) -> None:
    link = ("identity", "link")
    acme.fails(*link, "nobody", *T, "--channel", "email", "--id", EMAIL, code=3)
    first = acme.json(*link, "c-1", *T, "--channel", "email", "--id", EMAIL)
    assert (first["outcome"], first["identity"]["verified"]) == ("linked", False)
    assert acme.json(*link, "c-1", *T, "--channel", "email", "--id", EMAIL)["outcome"] == (
        "unchanged"
    )
    verified = acme.json(*link, "c-1", *T, "--channel", "email", "--id", EMAIL, "--verified")
    assert (verified["outcome"], verified["identity"]["verified"]) == ("updated", True)

    refused = acme.fails(*link, "c-2", *T, "--channel", "email", "--id", EMAIL, code=4)
    message = flat(refused.stderr)
    assert "belongs to customer c-1" in message and "--move" in message
    assert EMAIL not in refused.stderr  # the id is PII: masked in the message too
    moved = acme.json(*link, "c-2", *T, "--channel", "email", "--id", EMAIL, "--move")
    assert (moved["outcome"], moved["moved_from"], moved["customer"]) == ("moved", "c-1", "c-2")

    listed = acme.json("identity", "list", "c-2", *T)
    assert [(i["channel"], i["channel_user_id"], i["masked"]) for i in listed["identities"]] == [
        ("email", "a***@example.com", True)
    ]
    assert acme.json("identity", "list", "c-1", *T)["identities"] == []
    acme.fails("identity", "list", "nobody", *T, code=3)

    gone = acme.json("identity", "unlink", *T, "--channel", "email", "--id", EMAIL)
    assert (gone["outcome"], gone["customer"]) == ("unlinked", "c-2")
    acme.fails("identity", "unlink", *T, "--channel", "email", "--id", EMAIL, code=3)
    events = acme.json("audit", *T, "--event", "identity_move")["events"]
    assert [(e["customer"], e["name"], e["detail"]["moved_from"]) for e in events] == [
        ("c-2", "email", "c-1")
    ]
    audited = {e["event"] for e in acme.json("audit", *T)["events"]}
    assert {"identity_link", "identity_verify", "identity_move", "identity_unlink"} <= audited
    assert EMAIL not in str(_rows(acme, "SELECT * FROM audit_events"))


def test_reveal_shows_identity_ids_and_is_audited(acme: Ccv) -> None:
    acme.json("identity", "link", "c-1", *T, "--channel", "sms", "--id", PHONE)
    masked = acme.json("profile", "show", "c-1", *T)["identities"]
    assert [i["channel_user_id"] for i in masked] == ["***78"]
    text_view = acme("profile", "show", "c-1", *T)
    assert_exit(text_view, 0)
    assert PHONE not in text_view.stdout and "***78" in text_view.stdout
    shown = acme.json("profile", "show", "c-1", *T, "--reveal-pii")["identities"]
    assert [(i["channel_user_id"], i["masked"]) for i in shown] == [(PHONE, False)]
    listed = acme.json("identity", "list", "c-1", *T, "--reveal-pii")["identities"]
    assert [i["channel_user_id"] for i in listed] == [PHONE]
    reveals = acme.json("audit", *T, "--event", "reveal_pii")["events"]
    assert [e["detail"]["identities"] for e in reveals] == [["sms"], ["sms"]]


def test_identity_records_import_idempotently_and_conflicts_name_their_line(
    acme: Ccv, tmp_path: Path
) -> None:
    records = [
        {"kind": "identity", "tenant": "acme", "customer": "c-1", "channel": "email",
         "channel_user_id": EMAIL, "verified": True, "linked_at": "2026-03-01T10:00:00Z"},
        {"kind": "identity", "tenant": "acme", "customer": "c-2", "channel": "web",
         "channel_user_id": "cookie-1"},
    ]  # fmt: skip
    path = write_jsonl(tmp_path / "ids.jsonl", records)
    first = acme.json("profile", "import", path)
    assert (first["inserted"], first["rejected"]) == (2, 0)
    again = acme.json("profile", "import", path)
    assert (again["inserted"], again["unchanged"], again["rejected"]) == (0, 2, 0)
    stored = acme.json("identity", "list", "c-1", *T, "--reveal-pii")["identities"]
    assert [(i["channel_user_id"], i["verified"], i["source"]) for i in stored] == [
        (EMAIL, True, "import")
    ]
    assert stored[0]["linked_at"] == "2026-03-01T10:00:00+00:00"

    conflict = write_jsonl(
        tmp_path / "conflict.jsonl",
        [
            {"tenant": "acme", "customer": "c-3", "name": "nickname", "value": "Cy"},
            {"kind": "identity", "tenant": "acme", "customer": "c-2", "channel": "email",
             "channel_user_id": EMAIL},
            {"kind": "identity", "tenant": "acme", "customer": "c-3", "channel": "web",
             "channel_user_id": "cookie-9", "colour": "red"},
            {"kind": "identity", "tenant": "acme", "customer": "c-3", "channel": "Not A Slug",
             "channel_user_id": "x"},
        ],
    )  # fmt: skip
    result = acme.json("profile", "import", conflict, code=1)
    errors = {e["line"]: e["message"] for e in result["errors"]}
    assert sorted(errors) == [2, 3, 4]
    assert "belongs to customer c-1 (conflict)" in errors[2] and EMAIL not in errors[2]
    assert "unknown key 'colour' for an identity" in errors[3]
    assert errors[4].startswith("channel must be a slug")
    assert result["inserted"] == 1  # the valid record of the file is stored, as for values
    assert (
        acme.json("identity", "resolve", *T, "--channel", "email", "--id", EMAIL)["customer"]
        == "c-1"
    )


def test_one_identity_twice_in_one_file(acme: Ccv, tmp_path: Path) -> None:
    twice = write_jsonl(
        tmp_path / "twice.jsonl",
        [
            {"kind": "identity", "tenant": "acme", "customer": "c-1", "channel": "web",
             "channel_user_id": "k"},
            {"kind": "identity", "tenant": "acme", "customer": "c-1", "channel": "web",
             "channel_user_id": "k"},
            {"kind": "identity", "tenant": "acme", "customer": "c-2", "channel": "web",
             "channel_user_id": "k"},
        ],
    )  # fmt: skip
    result = acme.json("profile", "import", twice, code=1)
    assert (result["inserted"], result["unchanged"], result["rejected"]) == (1, 1, 1)
    assert result["errors"][0]["line"] == 3
    assert "linked to customer c-1 at line 1" in result["errors"][0]["message"]


def test_a_dry_run_stores_no_identity(acme: Ccv, tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "ids.jsonl",
        [{"kind": "identity", "tenant": "acme", "customer": "c-1", "channel": "web",
          "channel_user_id": "k"}],
    )  # fmt: skip
    assert acme.json("profile", "import", path, "--dry-run")["inserted"] == 1
    assert _rows(acme, "SELECT count(*) FROM identities") == [(0,)]


def test_erase_removes_the_customers_identities(acme: Ccv) -> None:
    acme.json("identity", "link", "c-1", *T, "--channel", "email", "--id", EMAIL)
    acme.json("identity", "link", "c-1", *T, "--channel", "web", "--id", "cookie-1")
    erased = acme.json("profile", "erase", "c-1", *T, "--yes")
    assert erased["identities"] == 2
    acme.fails("identity", "resolve", *T, "--channel", "email", "--id", EMAIL, code=3)
    assert _rows(acme, "SELECT count(*) FROM identities") == [(0,)]
    events = acme.json("audit", *T, "--customer", "c-1", "--event", "erase")["events"]
    assert sorted(e["name"] for e in events if e["kind"] == "identity") == ["email", "web"]


def test_a_customer_with_only_an_identity_can_be_erased(acme: Ccv) -> None:
    made = acme.json("identity", "resolve", *T, "--channel", "web", "--id", "k", "--create")
    assert acme.json("profile", "erase", made["customer"], *T, "--yes")["identities"] == 1
    acme.fails("profile", "show", made["customer"], *T, code=3)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--channel", "WhatsApp", "--id", "x"), "channel must be a slug"),
        (("--channel", "web", "--id", ""), "channel_user_id must be 1-256 characters"),
        (("--channel", "web", "--id", "x" * 257), "channel_user_id must be 1-256 characters"),
        (("--channel", "web", "--id", "a\tb"), "without control characters"),
    ],
)
def test_bad_identities_are_usage_errors(acme: Ccv, args: tuple[str, ...], needle: str) -> None:
    result = acme.fails("identity", "resolve", *T, *args, "--create", code=2)
    assert needle in flat(" ".join(error_lines(result)))


def test_report_counts_identities(acme: Ccv) -> None:
    acme.json("identity", "link", "c-1", *T, "--channel", "web", "--id", "k1")
    acme.json("identity", "link", "c-1", *T, "--channel", "web", "--id", "k2")
    report = acme.json("report", *T)["tenants"]["acme"]
    assert (report["customers"], report["identities"]) == (2, 2)
