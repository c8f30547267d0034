"""`ccv profile merge` (SPEC §10) through the CLI on SQLite and PostgreSQL: the dry run, the
lifecycle of the merged versions, the alias every later command and import follows, audit
events, and a merge that fails half-way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from .helpers import Ccv, assert_exit, flat, write_jsonl

T = ("--tenant", "acme")
SCHEMA = """\
tenant: acme
agent: bot
fields:
  - name: nickname
  - name: tier
  - name: phone
    is_pii: true
  - name: document_number
"""


def _id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def _field(customer: str, n: int, name: str, value: str, at: str, **extra: Any) -> dict[str, Any]:
    return {
        "tenant": "acme",
        "customer": customer,
        "id": _id(n),
        "name": name,
        "value": value,
        "source": "user_provided",
        "collected_at": at,
        **extra,
    }


RECORDS = [
    # c-1, the customer that stays
    _field("c-1", 1, "nickname", "Ana", "2026-03-01T10:00:00Z"),
    _field("c-1", 2, "tier", "gold", "2026-03-05T10:00:00Z"),
    # c-2, the same person under another id
    _field("c-2", 11, "nickname", "Annie", "2026-04-01T10:00:00Z"),  # newer: wins
    _field("c-2", 12, "tier", "silver", "2026-02-01T10:00:00Z"),  # older: goes to history
    _field("c-2", 13, "phone", "+4915112345678", "2026-02-01T10:00:00Z"),  # only c-2 has one
    {
        "kind": "asset",
        "tenant": "acme",
        "customer": "c-2",
        "id": _id(14),
        "name": "id_card",
        "asset_type": "image",
        "collected_at": "2026-02-01T10:00:00Z",
    },
    _field(
        "c-2",
        15,
        "document_number",
        "X123",
        "2026-02-01T11:00:00Z",
        source="document_extracted",
        source_item_id=_id(14),
    ),  # fmt: skip
    {
        "kind": "identity",
        "tenant": "acme",
        "customer": "c-2",
        "channel": "whatsapp",
        "channel_user_id": "+4915112345678",
    },
]


@pytest.fixture
def pair(ccv: Ccv, tmp_path: Path) -> Ccv:
    schema = tmp_path / "bot.yaml"
    schema.write_text(SCHEMA, encoding="utf-8")
    ccv.json("schema", "apply", schema)
    imported = ccv.json("profile", "import", write_jsonl(tmp_path / "pair.jsonl", RECORDS))
    assert imported["rejected"] == 0, imported["errors"]
    return ccv


def _history(ccv: Ccv, customer: str) -> dict[str, Any]:
    shown = ccv.json("profile", "show", customer, *T, "--history")
    shown.pop("as_of")
    return shown


def _sql(ccv: Ccv, statement: str) -> None:
    engine = create_engine(ccv.database_url)
    try:
        with engine.begin() as conn:
            for part in statement.split(";;"):
                conn.execute(text(part))
    finally:
        engine.dispose()


def test_the_dry_run_shows_the_merge_and_changes_nothing(pair: Ccv) -> None:
    before = (_history(pair, "c-1"), _history(pair, "c-2"))
    plan = pair.json("profile", "merge", "c-2", "--into", "c-1", *T)
    assert (plan["applied"], plan["source"], plan["target"]) == (False, "c-2", "c-1")
    assert (plan["fields"], plan["assets"], plan["identities"]) == (4, 1, 1)
    assert plan["names"] == ["document_number", "id_card", "nickname", "phone", "tier"]
    assert sorted((c["name"], c["customer"], c["id"], c["superseded_by_id"])
                  for c in plan["superseded"]) == [
        ("nickname", "c-1", _id(1), _id(11)),
        ("tier", "c-2", _id(12), _id(2)),
    ]  # fmt: skip
    assert (_history(pair, "c-1"), _history(pair, "c-2")) == before
    assert pair.json("audit", *T, "--event", "merge")["events"] == []
    text_view = pair("profile", "merge", "c-2", "--into", "c-1", *T)
    assert_exit(text_view, 0)
    assert "would merge c-2 into c-1" in flat(text_view.stdout)
    assert "dry run: pass --apply" in text_view.stdout


def test_apply_moves_everything_by_the_lifecycle_rules(pair: Ccv) -> None:
    merged = pair.json("profile", "merge", "c-2", "--into", "c-1", *T, "--apply")
    assert merged["applied"] is True
    profile = _history(pair, "c-1")
    current = {name: (f["id"], f["value"]) for name, f in profile["fields"].items()}
    assert current == {
        "nickname": (_id(11), "Annie"),
        "tier": (_id(2), "gold"),
        "phone": (_id(13), "***"),
        "document_number": (_id(15), "X123"),
    }
    assert [a["id"] for a in profile["assets"]] == [_id(14)]
    assert profile["assets"][0]["analysis_field_ids"] == [_id(15)]  # lineage as it was
    history = {
        name: [(v["id"], v["status"], v["superseded_by_id"]) for v in versions]
        for name, versions in profile["history"].items()
    }
    assert history["nickname"] == [(_id(11), "active", None), (_id(1), "superseded", _id(11))]
    assert history["tier"] == [(_id(2), "active", None), (_id(12), "superseded", _id(2))]
    assert [i["channel"] for i in profile["identities"]] == ["whatsapp"]
    trace = pair.json("profile", "trace", _id(15), *T)
    assert [(i["id"], i["customer"]) for i in trace["chain"]] == [(_id(14), "c-1")]

    events = pair.json("audit", *T, "--limit", "100")["events"]
    moves = {e["item_id"]: (e["from_status"], e["to_status"], e["customer"], e["detail"])
             for e in events if e["event"] == "merge" and e["item_id"]}  # fmt: skip
    assert set(moves) == {_id(n) for n in (11, 12, 13, 14, 15)}
    assert moves[_id(12)] == ("active", "superseded", "c-1", {"merged_from": "c-2"})
    assert moves[_id(11)][:2] == ("active", "active")
    summary = [e for e in events if e["event"] == "merge" and not e["item_id"]]
    assert [(e["customer"], e["detail"]) for e in summary] == [
        ("c-2", {"merged_into": "c-1", "fields": 4, "assets": 1, "identities": 1})
    ]
    displaced = {e["item_id"]: e["detail"] for e in events if e["event"] == "status_change"}
    assert displaced == {
        _id(1): {"superseded_by_id": _id(11), "reason": "merge"},
        _id(12): {"superseded_by_id": _id(2), "reason": "merge"},
    }
    report = pair.json("report", *T)["tenants"]["acme"]
    assert (report["customers"], report["identities"]) == (1, 1)
    assert report["fields"]["active"] == 4


def test_the_source_is_an_alias_every_command_and_import_follows(pair: Ccv, tmp_path: Path) -> None:
    pair.json("profile", "merge", "c-2", "--into", "c-1", *T, "--apply")
    shown = pair.json("profile", "show", "c-2", *T)
    assert (shown["customer"], shown["merged_into"]) == ("c-1", "c-1")
    assert shown["fields"]["nickname"]["value"] == "Annie"
    assert pair.json("profile", "show", "c-1", *T)["merged_into"] is None
    as_text = pair("profile", "show", "c-2", *T)
    assert_exit(as_text, 0)
    assert "c-2 was merged into c-1" in flat(as_text.stderr)
    assert pair.json("profile", "show", "c-2", *T, "--history")["merged_into"] == "c-1"
    listed = pair.json("identity", "list", "c-2", *T)
    assert (listed["customer"], listed["merged_into"]) == ("c-1", "c-1")
    resolved = pair.json(
        "identity", "resolve", *T, "--channel", "whatsapp", "--id", "+4915112345678"
    )
    assert resolved["customer"] == "c-1"
    validated = pair.json("profile", "validate", "c-2", *T, "--agent", "bot")
    assert (validated["customer"], validated["merged_into"]) == ("c-1", "c-1")

    later = write_jsonl(
        tmp_path / "later.jsonl",
        [_field("c-2", 21, "nickname", "Ann", "2026-05-01T10:00:00Z")],
    )
    assert pair.json("profile", "import", later)["superseded"] == 1  # c-1's Annie
    assert pair.json("profile", "show", "c-1", *T)["fields"]["nickname"]["value"] == "Ann"
    again = pair.json("profile", "import", later)
    assert (again["inserted"], again["unchanged"]) == (0, 1)
    linked = pair.json("identity", "link", "c-2", *T, "--channel", "web", "--id", "k")
    assert linked["customer"] == "c-1"
    erased = pair.json("profile", "erase", "c-2", *T, "--yes")  # erases the merged customer
    assert (erased["customer"], erased["aliases"]) == ("c-1", ["c-2"])
    for customer in ("c-1", "c-2"):
        pair.fails("profile", "show", customer, *T, code=3)


def test_aliases_chain(pair: Ccv, tmp_path: Path) -> None:
    third = write_jsonl(
        tmp_path / "third.jsonl", [_field("c-3", 31, "nickname", "A.", "2026-01-01T10:00:00Z")]
    )
    pair.json("profile", "import", third)
    pair.json("profile", "merge", "c-2", "--into", "c-1", *T, "--apply")
    chained = pair.json("profile", "merge", "c-1", "--into", "c-3", *T, "--apply")
    assert chained["aliases"] == ["c-2"]
    for alias in ("c-1", "c-2"):
        shown = pair.json("profile", "show", alias, *T)
        assert (shown["customer"], shown["merged_into"]) == ("c-3", "c-3")
        assert shown["fields"]["nickname"]["value"] == "Annie"
    # Merging through an alias acts on the customer it names.
    refused = pair.fails("profile", "merge", "c-2", "--into", "c-3", *T, "--apply", code=2)
    assert "already merged into c-3" in flat(refused.stderr)


@pytest.mark.parametrize(
    ("source", "target", "code", "needle"),
    [
        ("c-1", "c-1", 2, "into itself"),
        ("nobody", "c-1", 3, "customer nobody not found"),
        ("c-1", "nobody", 3, "customer nobody not found"),
    ],
)
def test_merge_errors(pair: Ccv, source: str, target: str, code: int, needle: str) -> None:
    result = pair.fails("profile", "merge", source, "--into", target, *T, "--apply", code=code)
    assert needle in flat(result.stderr)
    assert pair.json("profile", "show", "c-2", *T)["merged_into"] is None


def test_a_merge_that_fails_half_way_moves_nothing(pair: Ccv) -> None:
    before = (_history(pair, "c-1"), _history(pair, "c-2"))
    # The database refuses the merge's audit events: the last statements of the transaction,
    # after every version, identity and alias has been written.
    if pair.database_url.startswith("sqlite"):
        trigger = (
            "CREATE TRIGGER refuse_merge BEFORE INSERT ON audit_events WHEN NEW.event = 'merge'"
            " BEGIN SELECT RAISE(ABORT, 'merges are refused'); END"
        )
        drop = "DROP TRIGGER refuse_merge"
    else:
        trigger = (
            "CREATE FUNCTION refuse_merge() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " IF NEW.event = 'merge' THEN RAISE EXCEPTION 'merges are refused'; END IF;"
            " RETURN NEW; END $$;;"
            "CREATE TRIGGER refuse_merge BEFORE INSERT ON audit_events"
            " FOR EACH ROW EXECUTE FUNCTION refuse_merge()"
        )
        drop = "DROP TRIGGER refuse_merge ON audit_events;;DROP FUNCTION refuse_merge()"
    _sql(pair, trigger)
    try:
        result = pair("profile", "merge", "c-2", "--into", "c-1", *T, "--apply")
        assert_exit(result, 5)
        assert "Traceback" not in result.stderr
    finally:
        _sql(pair, drop)
    assert (_history(pair, "c-1"), _history(pair, "c-2")) == before
    assert pair.json("audit", *T, "--event", "status_change")["events"] == []
    merged = pair.json("profile", "merge", "c-2", "--into", "c-1", *T, "--apply")
    assert merged["fields"] == 4  # nothing had moved: all of it moves now


def test_a_merge_invalidates_both_customers_cached_profiles(
    pair: Ccv, redis_target: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CCV_REDIS_URL", redis_target.url)
    monkeypatch.setenv("CCV_CACHE_PREFIX", redis_target.prefix)
    monkeypatch.setenv("CCV_REDIS_TIMEOUT_SECONDS", "2")
    for _ in range(2):  # the second read of each is served from Redis
        assert pair.json("profile", "show", "c-1", *T)["fields"]["nickname"]["value"] == "Ana"
        assert pair.json("profile", "show", "c-2", *T)["merged_into"] is None
    assert pair.json("cache", "stats")["hits"] == 2
    pair.json("profile", "merge", "c-2", "--into", "c-1", *T, "--apply")
    for _ in range(2):
        target = pair.json("profile", "show", "c-1", *T)
        assert target["fields"]["nickname"]["value"] == "Annie"
        assert [i["channel"] for i in target["identities"]] == ["whatsapp"]
        alias = pair.json("profile", "show", "c-2", *T)
        assert (alias["customer"], alias["merged_into"]) == ("c-1", "c-1")
        assert alias["fields"] == target["fields"]
    # A later write to the target reaches readers of the alias too.
    pair.json("identity", "link", "c-1", *T, "--channel", "web", "--id", "k")
    alias = pair.json("profile", "show", "c-2", *T)
    assert sorted(i["channel"] for i in alias["identities"]) == ["web", "whatsapp"]


def test_gaps_of_an_alias_are_the_gaps_of_the_customer_it_names(pair: Ccv, tmp_path: Path) -> None:
    scenario = tmp_path / "requirements" / "upgrade.yaml"
    scenario.parent.mkdir()
    scenario.write_text(
        "tenant: acme\nagent: bot\nscenario: upgrade\nrequires:\n"
        "  - field: phone\n  - field: tier\n",
        encoding="utf-8",
    )
    pair.json("requirements", "apply", scenario.parent, tmp_path / "bot.yaml")
    before = pair.json("profile", "gaps", "c-1", *T, "--scenario", "upgrade")
    assert [m["field"] for m in before["missing"]] == ["phone"]
    pair.json("profile", "merge", "c-2", "--into", "c-1", *T, "--apply")
    for customer in ("c-1", "c-2"):
        gaps = pair.json("profile", "gaps", customer, *T, "--scenario", "upgrade")
        assert (gaps["customer"], gaps["missing"]) == ("c-1", [])
        assert gaps["merged_into"] == (None if customer == "c-1" else "c-1")
