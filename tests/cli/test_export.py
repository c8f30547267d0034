"""`ccv profile export` (SPEC §12): import records of every version, identity and alias, values
in clear, audited per customer; importing an export into an empty vault of the other dialect and
sweeping gives the same `profile show --history`, SQLite -> PostgreSQL and back."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from .helpers import (
    DEMO,
    DEMO_SCHEMAS,
    TENANT,
    Ccv,
    assert_exit,
    empty_pg_database,
    flat,
    load_demo,
    write_jsonl,
)

T = ("--tenant", TENANT)


def _lifecycle_cases(ccv: Ccv, tmp_path: Path) -> None:
    """On top of the demo: the states an import alone would not reproduce from the values."""
    records = [
        # A newer version deleted later: the older one stays superseded (nothing reactivates).
        {"customer": "x-1", "id": "00000000-0000-4000-8000-000000000001", "name": "nickname",
         "value": "Bia", "collected_at": "2026-01-01T00:00:00Z"},
        {"customer": "x-1", "id": "00000000-0000-4000-8000-000000000002", "name": "nickname",
         "value": "Bea", "collected_at": "2026-02-01T00:00:00Z"},
        # A field derived from an asset that is then deleted: the field is orphaned and the
        # version it superseded stays superseded.
        {"customer": "x-2", "id": "00000000-0000-4000-8000-000000000003", "name": "legal_name",
         "value": "Ana Lima", "collected_at": "2026-01-01T00:00:00Z"},
        {"kind": "asset", "customer": "x-2", "id": "00000000-0000-4000-8000-000000000004",
         "name": "id_card_front", "asset_type": "image", "storage_uri": "s3://kyc/x-2.jpg",
         "collected_at": "2026-01-05T00:00:00Z"},
        {"customer": "x-2", "id": "00000000-0000-4000-8000-000000000005", "name": "legal_name",
         "value": "Ana M. Lima", "source": "document_extracted",
         "source_item_id": "00000000-0000-4000-8000-000000000004",
         "source_metadata": {"tool": "ocr", "page": 1, "boxes": [{"x": 1, "y": 2}]},
         "confidence": 0.9, "collected_at": "2026-01-06T00:00:00Z"},
        # Past its expiry: expired by the sweep.
        {"customer": "x-3", "id": "00000000-0000-4000-8000-000000000006", "name": "nickname",
         "value": "Zé", "collected_at": "2026-01-01T00:00:00Z",
         "expires_at": "2026-01-02T00:00:00Z"},
        # Two customers that turn out to be one person, and one merged before them.
        {"customer": "m-1", "name": "nickname", "value": "Cris",
         "collected_at": "2026-03-01T00:00:00Z"},
        {"customer": "m-2", "name": "nickname", "value": "Cristina",
         "collected_at": "2026-04-01T00:00:00Z"},
        {"customer": "m-0", "name": "nickname", "value": "Tina",
         "collected_at": "2026-02-01T00:00:00Z"},
        {"kind": "identity", "customer": "m-1", "channel": "email",
         "channel_user_id": "cris@example.com", "verified": True},
        {"kind": "identity", "customer": "m-2", "channel": "whatsapp",
         "channel_user_id": "+5511987654321"},
    ]  # fmt: skip
    path = write_jsonl(tmp_path / "cases.jsonl", [{"tenant": TENANT, **r} for r in records])
    imported = ccv.json("profile", "import", path, "--validation", "warn")
    assert imported["rejected"] == 0, imported["errors"]
    ccv.json("profile", "delete", "00000000-0000-4000-8000-000000000002", *T)
    ccv.json("profile", "delete", "00000000-0000-4000-8000-000000000004", *T, "--force")
    ccv.json("profile", "merge", "m-0", "--into", "m-1", *T, "--apply")
    ccv.json("profile", "merge", "m-1", "--into", "m-2", *T, "--apply")
    ccv.json("identity", "link", "c-1002", *T, "--channel", "web", "--id", "cookie-77")


def _source_vault(ccv: Ccv, tmp_path: Path) -> Ccv:
    load_demo(ccv)
    imported = ccv.json("profile", "import", DEMO / "customers.csv", *T)
    assert imported["rejected"] == 0, imported["errors"]
    _lifecycle_cases(ccv, tmp_path)
    ccv.json("profile", "expire", *T, "--apply")
    ccv.json("profile", "orphans", *T, "--apply")
    return ccv


def _customers(ccv: Ccv) -> list[str]:
    found: list[str] = []
    cursor: str | None = None
    while True:
        page = ccv.json(
            "profile", "list", *T, "--limit", "1000", *(["--cursor", cursor] if cursor else [])
        )
        found += [c["customer"] for c in page["customers"]]
        cursor = page["next_cursor"]
        if not cursor:
            return found


def _normal(version: dict[str, Any]) -> dict[str, Any]:
    """A version as `show --history` prints it, less what belongs to the vault that stores it:
    when the row was written there, and the id of that vault's definition."""
    version = dict(version)
    version.pop("updated_at")
    if "field_definition_id" in version:
        version["field_definition_id"] = version["field_definition_id"] is not None
    return version


def _histories(ccv: Ccv, customers: list[str]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for customer in customers:
        profile = ccv.json("profile", "show", customer, *T, "--history", "--reveal-pii")
        profile.pop("as_of")
        for key in ("history", "asset_history"):
            profile[key] = {
                name: [_normal(v) for v in versions] for name, versions in profile[key].items()
            }
        profile["fields"] = {name: _normal(v) for name, v in profile["fields"].items()}
        profile["assets"] = [_normal(a) for a in profile["assets"]]
        seen[customer] = profile
    return seen


def _move(source: Ccv, target: Ccv, tmp_path: Path, name: str) -> list[dict[str, Any]]:
    """Export every customer of `source`, import into the empty `target` with the same schema
    and sweep it; returns the exported records."""
    dump = tmp_path / name
    summary = source.json("profile", "export", "--all", *T, "--output", dump)
    data = gzip.decompress(dump.read_bytes()) if name.endswith(".gz") else dump.read_bytes()
    records = [json.loads(line) for line in data.splitlines()]
    assert summary["records"] == len(records)
    target.json("schema", "apply", *DEMO_SCHEMAS)
    imported = target.json("profile", "import", dump, "--validation", "warn")
    assert imported["rejected"] == 0, imported["errors"]
    assert imported["inserted"] == len(records)
    target.json("profile", "expire", *T, "--apply")
    target.json("profile", "orphans", *T, "--apply")
    return records


@pytest.mark.postgres
def test_round_trip_sqlite_to_postgresql_and_back(tmp_path: Path) -> None:
    source = _source_vault(Ccv(f"sqlite:///{tmp_path / 'source.db'}"), tmp_path)
    customers = _customers(source) + ["m-0", "m-1"]  # aliases read their final customer
    before = _histories(source, customers)
    # The cases above are in it: the merged customer with both identities, an alias chain.
    assert before["m-0"]["merged_into"] == "m-2"
    assert {i["channel"] for i in before["m-2"]["identities"]} == {"email", "whatsapp"}
    assert [v["status"] for v in before["x-1"]["history"]["nickname"]] == ["superseded"]
    assert [v["status"] for v in before["x-2"]["history"]["legal_name"]] == [
        "orphaned",
        "superseded",
    ]
    assert [v["status"] for v in before["x-3"]["history"]["nickname"]] == ["expired"]

    with empty_pg_database() as pg_url:
        postgres = Ccv(pg_url)
        postgres.json("db", "upgrade")
        there = _move(source, postgres, tmp_path, "to-pg.jsonl.gz")
        assert _histories(postgres, customers) == before
        back = Ccv(f"sqlite:///{tmp_path / 'back.db'}")
        again = _move(postgres, back, tmp_path, "back.jsonl")
    assert _histories(back, customers) == before
    assert again == there  # the same records, whichever dialect wrote them
    kinds = {r["kind"] for r in there}
    assert kinds == {"field", "asset", "identity", "alias"}
    aliases = sorted((r["customer"], r["merged_into"]) for r in there if r["kind"] == "alias")
    assert aliases == [("m-0", "m-2"), ("m-1", "m-2")]


def test_values_in_clear_and_an_audit_event_per_customer(ccv: Ccv, tmp_path: Path) -> None:
    load_demo(ccv)
    result = ccv("profile", "export", "c-1001", "c-1002", *T)
    assert_exit(result, 0)
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert {r["customer"] for r in records} == {"c-1001", "c-1002"}
    shown = ccv.json("profile", "show", "c-1001", *T, "--history", "--reveal-pii")
    emails = [r for r in records if r["customer"] == "c-1001" and r["name"] == "email"]
    assert emails and emails[-1]["value"] == shown["fields"]["email"]["value"]  # in clear
    assert "exported 2 customers" in flat(result.stderr)
    events = ccv.json("audit", *T, "--event", "export")["events"]
    assert sorted(e["customer"] for e in events) == ["c-1001", "c-1002"]
    for event in events:
        assert event["actor"].endswith("via cli:profile export")
        assert set(event["detail"]) == {"fields", "assets", "identities", "output"}
        assert shown["fields"]["email"]["value"] not in json.dumps(event)


def test_usage_errors_and_not_found_write_nothing(ccv: Ccv, tmp_path: Path) -> None:
    load_demo(ccv)
    out = tmp_path / "out.jsonl"
    ccv.fails("profile", "export", *T, "--output", out, code=2)  # neither
    ccv.fails("profile", "export", "c-1001", "--all", *T, "--output", out, code=2)  # both
    ccv.fails("profile", "export", "c-1001", "nobody", *T, "--output", out, code=3)
    ccv.fails("profile", "export", "--all", *T, "--output", tmp_path / "no" / "x.jsonl", code=2)
    assert not out.exists()
    assert list(tmp_path.glob(".*part")) == []
    assert ccv.json("audit", *T, "--event", "export")["events"] == []


def test_an_alias_exports_its_final_customer(ccv: Ccv, tmp_path: Path) -> None:
    records = [
        {"tenant": "t", "customer": "a", "name": "nickname", "value": "A"},
        {"tenant": "t", "customer": "b", "name": "nickname", "value": "B",
         "collected_at": "2026-05-01T00:00:00Z"},
    ]  # fmt: skip
    ccv.json(
        "profile", "import", write_jsonl(tmp_path / "r.jsonl", records), "--validation", "warn"
    )
    ccv.json("profile", "merge", "a", "--into", "b", "--tenant", "t", "--apply")
    out = tmp_path / "a.jsonl"
    summary = ccv.json("profile", "export", "a", "--tenant", "t", "--output", out)
    assert (summary["customers"], summary["fields"], summary["aliases"]) == (1, 2, 1)
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert {r["customer"] for r in lines if r["kind"] == "field"} == {"b"}
    assert lines[-1] == {
        "kind": "alias",
        "tenant": "t",
        "customer": "a",
        "merged_into": "b",
        "merged_at": lines[-1]["merged_at"],
    }
    # Importing it again changes nothing; an alias of another customer is a conflict.
    again = ccv.json("profile", "import", out, "--validation", "warn")
    assert (again["unchanged"], again["rejected"]) == (3, 0)
    other = {"kind": "alias", "tenant": "t", "customer": "a", "merged_into": "c"}
    held = {"kind": "alias", "tenant": "t", "customer": "b", "merged_into": "c"}
    result = ccv("profile", "import", write_jsonl(tmp_path / "x.jsonl", [other, held]), "--json")
    assert_exit(result, 1)
    messages = [e["message"] for e in json.loads(result.stdout)["errors"]]
    assert messages == [
        "customer a is an alias of customer b (conflict)",
        "customer b holds versions or identities: merge it with `ccv profile merge`",
    ]


def test_history_keys_are_checked(ccv: Ccv, tmp_path: Path) -> None:
    base = {"tenant": "t", "customer": "c", "name": "nickname", "value": "x"}
    bad = [
        {**base, "status": "gone"},
        {**base, "status": "expired"},
        {**base, "status": "active", "superseded_by_id": "00000000-0000-4000-8000-000000000009"},
        {**base, "status": "superseded", "superseded_by_id": "nope"},
        {**base, "id": "00000000-0000-4000-8000-000000000009", "status": "superseded",
         "superseded_by_id": "00000000-0000-4000-8000-000000000009"},
    ]  # fmt: skip
    result = ccv("profile", "import", write_jsonl(tmp_path / "bad.jsonl", bad), "--json",
                 "--validation", "warn")  # fmt: skip
    assert_exit(result, 1)
    messages = [e["message"] for e in json.loads(result.stdout)["errors"]]
    assert messages == [
        "status 'gone' is not one of: active, superseded, expired, orphaned",
        "an expired record needs expires_at",
        "superseded_by_id and superseded_at belong to a superseded record",
        "superseded_by_id is not a UUID",
        "a record cannot be superseded by itself",
    ]
    # History as given never displaces the active version, however new it is.
    good = [
        {**base, "collected_at": "2026-01-01T00:00:00Z"},
        {**base, "value": "y", "status": "superseded", "collected_at": "2026-09-01T00:00:00Z",
         "superseded_at": "2026-09-02T00:00:00Z"},
    ]  # fmt: skip
    ccv.json(
        "profile", "import", write_jsonl(tmp_path / "good.jsonl", good), "--validation", "warn"
    )
    shown = ccv.json("profile", "show", "c", "--tenant", "t", "--history")
    assert shown["fields"]["nickname"]["value"] == "x"
    newest, active = shown["history"]["nickname"]
    assert active["status"] == "active"
    assert newest["status"] == "superseded"
    assert newest["superseded_at"] == "2026-09-02T00:00:00+00:00"
