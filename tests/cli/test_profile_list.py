"""`ccv profile list` (SPEC §12) on SQLite and PostgreSQL: keyset pages, `--where` on exact
active values (typed by the definitions), counts but never a value."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import Ccv, assert_exit, flat, write_jsonl

T = ("--tenant", "acme")
SCHEMA = """\
tenant: acme
agent: bot
fields:
  - name: email
    value_type: email
    is_pii: true
  - name: age
    value_type: integer
  - name: tier
"""


@pytest.fixture
def listed(ccv: Ccv, tmp_path: Path) -> Ccv:
    schema = tmp_path / "bot.yaml"
    schema.write_text(SCHEMA, encoding="utf-8")
    ccv.json("schema", "apply", schema)
    records = []
    for n in range(1, 6):
        customer = f"c-{n}"
        records.append({"tenant": "acme", "customer": customer, "name": "tier",
                        "value": "gold" if n % 2 else "silver"})  # fmt: skip
        records.append({"tenant": "acme", "customer": customer, "name": "age", "value": 30 + n})
    records += [
        {"tenant": "acme", "customer": "c-1", "name": "email", "value": "old@example.com",
         "collected_at": "2026-01-01T00:00:00Z"},
        {"tenant": "acme", "customer": "c-1", "name": "email", "value": "ana@example.com",
         "collected_at": "2026-02-01T00:00:00Z"},
        {"tenant": "acme", "customer": "c-2", "name": "email", "value": "gone@example.com",
         "expires_at": "2026-01-01T00:00:00Z"},
    ]  # fmt: skip
    imported = ccv.json("profile", "import", write_jsonl(tmp_path / "r.jsonl", records))
    assert imported["rejected"] == 0, imported["errors"]
    return ccv


def test_pages_of_customers_with_their_counts(listed: Ccv) -> None:
    first = listed.json("profile", "list", *T, "--limit", "2")
    assert [c["customer"] for c in first["customers"]] == ["c-1", "c-2"]
    assert (first["customers"][0]["fields"], first["customers"][0]["assets"]) == (3, 0)
    seen = [c["customer"] for c in first["customers"]]
    cursor = first["next_cursor"]
    while cursor:
        page = listed.json("profile", "list", *T, "--limit", "2", "--cursor", cursor)
        seen += [c["customer"] for c in page["customers"]]
        cursor = page["next_cursor"]
    assert seen == [f"c-{n}" for n in range(1, 6)]
    listed.fails("profile", "list", *T, "--cursor", "%%%", code=2)
    listed.fails("profile", "list", *T, "--limit", "0", code=2)


def test_where_finds_customers_by_exact_active_values(listed: Ccv) -> None:
    def found(*where: str) -> list[str]:
        args = [arg for w in where for arg in ("--where", w)]
        return [c["customer"] for c in listed.json("profile", "list", *T, *args)["customers"]]

    assert found("email=ana@example.com") == ["c-1"]
    assert found("email=old@example.com") == []  # superseded
    assert found("email=gone@example.com") == []  # expired
    assert found("email=ANA@example.com") == []  # exact
    assert found("tier=gold") == ["c-1", "c-3", "c-5"]
    assert found("age=33") == ["c-3"]  # the definition types it: the integer 33
    assert found("tier=gold", "age=35") == ["c-5"]
    assert found("nickname=x") == []
    bad = listed.fails("profile", "list", *T, "--where", "age=old", code=2)
    assert "--where age" in flat(bad.stderr)
    listed.fails("profile", "list", *T, "--where", "email", code=2)


def test_the_output_holds_no_value(listed: Ccv) -> None:
    shown = listed("profile", "list", *T, "--where", "email=ana@example.com")
    assert_exit(shown, 0)
    assert "c-1" in shown.stdout and "ana@example.com" not in shown.stdout
    as_json = listed("profile", "list", *T, "--json")
    assert "@example.com" not in as_json.stdout


def test_merged_customers_are_not_listed(listed: Ccv) -> None:
    listed.json("profile", "merge", "c-2", "--into", "c-1", *T, "--apply")
    customers = [c["customer"] for c in listed.json("profile", "list", *T)["customers"]]
    assert customers == ["c-1", "c-3", "c-4", "c-5"]
    silver = listed.json("profile", "list", *T, "--where", "tier=silver")["customers"]
    assert "c-2" not in [c["customer"] for c in silver]  # an alias, whatever won its tier
