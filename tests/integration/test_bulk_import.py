"""Large imports on PostgreSQL take a streaming COPY path; they must store exactly what the
general path stores. The same file goes into SQLite (general path) and PostgreSQL (bulk path at
the default threshold), and the results, stored rows and audit events are compared."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from ccv.config import Settings
from ccv.domain.models import ImportResult
from ccv.service import importing
from ccv.store.tables import assets, audit_events, field_definitions, fields
from ccv.vault import Vault

TENANT = "acme"
T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
NAMES = ("email", "nickname", "score", "tier", "note")
SCHEMA = """\
tenant: acme
agent: bot
fields:
  - name: email
    value_type: email
  - name: nickname
    value_type: string
  - name: score
    value_type: integer
  - name: tier
    value_type: enum
    allowed_values: [free, pro]
  - name: note
    value_type: json
  - name: kyc_status
    value_type: string
    retention_days: 30
"""
# Strings COPY text must escape, and others it must leave alone.
AWKWARD = ["tab\there", "new\nline", "back\\slash", "cr\rlf", "\\N", "naïve ünïcödé ✓", ""]


def uid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012x}"


def iso(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


def value_for(name: str, n: int) -> Any:
    return {
        "email": f"user{n}@example.com",
        "nickname": AWKWARD[n % len(AWKWARD)] + f" {n}",
        "score": n,
        "tier": "pro" if n % 2 else "free",
        "note": {"text": AWKWARD[n % len(AWKWARD)], "list": [n, None, True]},
    }[name]


def new_customers(count: int) -> Iterator[dict[str, Any]]:
    """First versions of new customers: the records the bulk path streams."""
    for c in range(count):
        for i, name in enumerate(NAMES):
            n = c * len(NAMES) + i
            record: dict[str, Any] = {
                "tenant": TENANT,
                "customer": f"new-{c}" if c % 7 else f"new\\{c} back\\slash",
                "name": name,
                "value": value_for(name, n),
                "collected_at": iso(n),
            }
            if n % 3:
                record["id"] = uid(10_000 + n)
            if n % 5 == 0:
                record |= {
                    "source": "document_extracted",
                    "confidence": 0.5,
                    "requires_confirmation": True,
                    "verified": True,
                    "verification_method": AWKWARD[n % len(AWKWARD)] or None,
                    "source_metadata": {"page": n, "note": AWKWARD[n % len(AWKWARD)]},
                    "source_item_id": f"session-{n}",
                    "source_item_type": "session",
                }
            yield record


def field(customer: str, name: str, value: Any, n: int, minute: float, **extra: Any) -> dict:
    return {
        "tenant": TENANT,
        "customer": customer,
        "name": name,
        "value": value,
        "id": uid(n),
        "collected_at": iso(minute),
    } | extra


def tricky_records() -> list[dict[str, Any]]:
    """Everything the bulk path must hand to the general path, or judge on its own."""
    return [
        # two versions of one new key in the file: one active, one superseded
        field("twice", "email", "old@example.com", 1, 0),
        field("twice", "email", "new@example.com", 2, 5),
        # an existing customer: displaces the stored version (audited)
        field("old-1", "email", "newer@example.com", 3, 100),
        # a late arrival for an existing customer goes straight to history
        field("old-1", "nickname", "late", 4, -100),
        # the same id twice: same content (unchanged), then other content (rejected)
        field("dup", "score", 7, 5, 0),
        field("dup", "score", 7, 5, 0),
        field("dup", "tier", "pro", 5, 0),
        # a given id stored under another customer: conflict
        field("thief", "email", "x@example.com", 900, 0),
        # the same content as stored: unchanged
        field("old-1", "score", 1, 901, 0),
        # lineage: a derived field before its asset (forward reference), a dangling reference
        field("kyc", "kyc_status", "verified", 6, 10, source_item_id=uid(7)),
        {
            "kind": "asset",
            "tenant": TENANT,
            "customer": "kyc",
            "id": uid(7),
            "name": "id_card",
            "asset_type": "image",
            "storage_uri": "s3://kyc/7.jpg",
            "collected_at": iso(0),
        },
        field("kyc", "nickname", "orphan", 8, 0, source_item_id=uid(999_999)),
        # rejected: invalid value, unknown field
        field("bad", "score", "seven", 9, 0),
        field("bad", "favourite_colour", "blue", 10, 0),
        # a new customer whose only record is rejected still gets no items
        field("rejected-only", "tier", "platinum", 11, 0),
    ]


def stored_state(url: str) -> dict[str, Any]:
    engine = create_engine(url)
    state: dict[str, Any] = {}
    with engine.connect() as conn:
        # Definition ids are random per database: compare the definitions' names instead.
        definitions = dict(
            conn.execute(select(field_definitions.c.id, field_definitions.c.name)).all()
        )
        for table in (fields, assets):
            rows = conn.execute(select(table).where(table.c.tenant == TENANT)).mappings().all()
            state[table.name] = sorted(
                (
                    tuple(
                        _plain(row[name])
                        for name in (column.name for column in table.columns)
                        # times of the run itself differ between the two runs
                        if name not in ("updated_at", "superseded_at", "field_definition_id")
                    )
                    + (
                        row["superseded_at"] is None,
                        definitions.get(row.get("field_definition_id")),
                    )
                    for row in rows
                ),
                key=lambda r: r[1],
            )
        events = conn.execute(
            select(
                audit_events.c.item_id,
                audit_events.c.event,
                audit_events.c.from_status,
                audit_events.c.to_status,
                audit_events.c.details,
            ).where(audit_events.c.tenant == TENANT)
        ).all()
        state["audit"] = sorted(json.dumps([_plain(v) for v in row]) for row in events)
    engine.dispose()
    return state


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, float):
        return round(value, 9)
    return value


def run_import(url: str, tmp_path: Path, copies: list[int]) -> tuple[ImportResult, Any]:
    """Apply the schema, store the 'old' data, then import the big file."""
    schema = tmp_path / "schema.yaml"
    schema.write_text(SCHEMA, encoding="utf-8")
    with Vault(Settings(database_url=url)) as vault:
        vault.apply_schema([schema])
        first = tmp_path / "first.jsonl"
        first.write_text(
            "\n".join(
                json.dumps(r)
                for r in [
                    field("old-1", "email", "old@example.com", 900, 0),
                    field("old-1", "nickname", "current", 902, 0),
                    field("old-1", "score", 1, 901, 0),
                ]
            )
            + "\n",
            encoding="utf-8",
        )
        assert vault.import_files([first], actor="test").inserted == 3
        records = list(new_customers(120)) + tricky_records()
        big = tmp_path / "big.jsonl"
        big.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
        result = vault.import_files([big], actor="test")
        copies.append(len(records))
    return result, stored_state(url)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_bulk_path_stores_what_the_general_path_stores(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    streamed: list[int] = []
    original = importing.store.copy_lines

    def counting(*args: Any, **kwargs: Any) -> int:
        sent = original(*args, **kwargs)
        streamed.append(sent)
        return sent

    monkeypatch.setattr(importing.store, "copy_lines", counting)
    sqlite_url = f"sqlite:///{tmp_path / 'general.db'}"
    (tmp_path / "sqlite").mkdir()
    (tmp_path / "pg").mkdir()
    general, general_state = run_import(sqlite_url, tmp_path / "sqlite", [])
    assert streamed == []  # SQLite never streams
    total: list[int] = []
    bulk, bulk_state = run_import(database_url, tmp_path / "pg", total)

    assert total[0] >= importing.STREAM_THRESHOLD
    # the 600 first versions of new customers went through COPY, the rest did not
    assert streamed == [600]
    assert outcome(bulk, tmp_path / "pg") == outcome(general, tmp_path / "sqlite")
    # tricky_records: two versions of "twice", two for old-1, one "dup", kyc's asset and two
    # fields; the rest are unchanged, conflicts or rejections
    assert (bulk.inserted, bulk.unchanged, bulk.rejected) == (600 + 8, 2, 5)
    assert bulk_state == general_state


def outcome(result: ImportResult, folder: Path) -> str:
    return result.model_dump_json().replace(str(folder), "<dir>")
