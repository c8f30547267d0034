"""The library contract of SPEC §2 (lifecycle rules and observable decisions), on both dialects.

Every test goes through the public `Vault` API; the database is inspected directly only where
the contract is about what is stored (statuses, audit events, the partial unique index).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.exc import IntegrityError

from ccv.domain.enums import Status, ValidationMode
from ccv.domain.lifecycle import MAX_LINEAGE_DEPTH
from ccv.domain.models import ImportResult
from ccv.errors import FindingsError, NotFoundError, RefusedError, UsageError
from ccv.store.tables import assets, fields
from ccv.vault import Vault

# Every contract test also runs with the bulk import path forced (see the database_url fixture).
pytestmark = pytest.mark.parametrize(
    "database_url", ["sqlite", "postgresql", "postgresql-bulk"], indirect=True
)

TENANT = "acme"
T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
PAST = "2026-03-02T00:00:00Z"  # before any run of this suite
FUTURE = "2999-01-01T00:00:00Z"

SCHEMA = """\
tenant: acme
agent: bot
fields:
  - name: email
    value_type: email
    is_pii: true
  - name: legal_name
    value_type: string
    is_pii: true
  - name: nickname
    value_type: string
  - name: score
    value_type: integer
  - name: tier
    value_type: enum
    allowed_values: [free, pro]
  - name: risk
    value_type: number
    validation_mode: warn
  - name: kyc_status
    value_type: enum
    allowed_values: [pending, verified]
    retention_days: 30
"""

# Demo ids (fixtures/README.md).
DEMO = "northwind-bank"
DEMO_PROFILES = Path(__file__).resolve().parents[2] / "fixtures" / "demo" / "profiles.jsonl"
C1001_ID_CARD = "d7a7a3cc-8c3d-4f16-9293-de8fc88b2875"
C1001_DOB = "1919e93a-d117-45ad-8988-93101c593af5"
C1001_IS_ADULT = "5b4c8012-ede7-4d0c-bfb8-8309fadb8908"
C1004_ACTIVE_EMAIL = "22a60b44-ef5f-431c-a8fd-b92dab266981"
C1004_LATE_EMAIL = "9f5e454c-acc4-4b03-b0ee-17e316e13413"
C1013_DANGLING = "14388e02-5e93-4f99-a152-cfd19f71810e"
C1013_MISSING_ASSET = "46e3897a-83d3-45a6-b506-e7d2ca6e3fc8"
C1002_ID_CARD = "067f0cfc-ce1f-43d9-849a-cfb58350a73f"
C1002_LEGAL_NAME = "f675299b-0c83-4786-9171-1cbd2106119e"
C1020_TIER = "c459318e-446e-48af-905a-31178577297c"
C1021_TIER = "f9f73efb-66a2-4c00-aa79-7f9dfd6cb580"


def uid(n: int) -> str:
    """Deterministic UUIDs whose order follows n (for id tie-breaks)."""
    return f"00000000-0000-4000-8000-{n:012x}"


def iso(minutes: float = 0) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


def fld(
    name: str, value: Any, n: int | None = None, *, minute: float = 0, **extra: Any
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "tenant": TENANT,
        "customer": "c-1",
        "name": name,
        "value": value,
        "collected_at": iso(minute),
    }
    if n is not None:
        record["id"] = uid(n)
    return record | extra


def asset(name: str, n: int, *, minute: float = 0, **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "kind": "asset",
        "tenant": TENANT,
        "customer": "c-1",
        "id": uid(n),
        "name": name,
        "asset_type": "image",
        "storage_uri": f"s3://kyc/{n}.jpg",
        "collected_at": iso(minute),
    }
    return record | extra


class Importer:
    """Writes records to a fresh JSONL file under tmp_path and imports it."""

    def __init__(self, vault: Vault, tmp_path: Path) -> None:
        self.vault = vault
        self.tmp_path = tmp_path
        self.count = 0

    def write(self, *records: Any, suffix: str = ".jsonl") -> Path:
        self.count += 1
        path = self.tmp_path / f"batch-{self.count}{suffix}"
        lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def __call__(self, *records: Any, **options: Any) -> ImportResult:
        return self.vault.import_files([self.write(*records)], **options)


@pytest.fixture
def acme(vault: Vault, tmp_path: Path) -> Vault:
    schema = tmp_path / "bot.yaml"
    schema.write_text(SCHEMA, encoding="utf-8")
    vault.apply_schema([schema])
    return vault


@pytest.fixture
def imp(acme: Vault, tmp_path: Path) -> Importer:
    return Importer(acme, tmp_path)


@pytest.fixture
def db(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


def stored(engine: Engine, item_id: str, tenant: str = TENANT) -> dict[str, Any] | None:
    """The stored row of a field or asset, or None."""
    with engine.connect() as conn:
        for table in (fields, assets):
            query = select(table).where(table.c.tenant == tenant, table.c.id == item_id)
            row = conn.execute(query).first()
            if row is not None:
                return dict(row._mapping)
    return None


def status(engine: Engine, item_id: str, tenant: str = TENANT) -> str | None:
    row = stored(engine, item_id, tenant)
    return None if row is None else row["status"]


def audit(engine: Engine, tenant: str = TENANT) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT * FROM audit_events WHERE tenant = :t ORDER BY id"), {"t": tenant}
        )
        return [dict(row._mapping) for row in rows]


def ok(result: ImportResult) -> ImportResult:
    assert result.rejected == 0, result.errors
    return result


# --- Rule 1: one active version, enforced by the database ------------------------------------


def test_database_refuses_a_second_active_version_of_a_field(imp: Importer, db: Engine) -> None:
    ok(imp(fld("nickname", "Ana", 1)))
    with db.connect() as conn:
        row = dict(conn.execute(select(fields).where(fields.c.id == uid(1))).one()._mapping)
    with pytest.raises(IntegrityError), db.begin() as conn:
        conn.execute(fields.insert(), row | {"id": uid(2), "value": "Bob"})
    with db.begin() as conn:  # the index is partial: a superseded twin is fine
        conn.execute(fields.insert(), row | {"id": uid(2), "status": "superseded"})


# --- Rule 2: supersession by collected_at, id tie-break, late arrivals -----------------------


def test_newer_version_supersedes_the_active_one(imp: Importer, db: Engine) -> None:
    ok(imp(fld("nickname", "Ana", 1, minute=0)))
    result = ok(imp(fld("nickname", "Annie", 2, minute=5)))
    assert (result.inserted, result.superseded) == (1, 1)
    old = stored(db, uid(1))
    assert old is not None
    assert old["status"] == "superseded"
    assert old["superseded_by_id"] == uid(2)
    assert old["superseded_at"] is not None
    assert imp.vault.get_profile(TENANT, "c-1").fields["nickname"].id == uid(2)
    transitions = [(e["item_id"], e["event"], e["from_status"], e["to_status"]) for e in audit(db)]
    assert (uid(1), "status_change", "active", "superseded") in transitions


def test_equal_collected_at_is_won_by_the_larger_id(imp: Importer, db: Engine) -> None:
    ok(imp(fld("nickname", "big", 9)))
    result = ok(imp(fld("nickname", "small", 3)))
    assert result.superseded == 1
    assert status(db, uid(3)) == "superseded"
    assert status(db, uid(9)) == "active"
    ok(imp(fld("nickname", "bigger", 12)))
    assert status(db, uid(9)) == "superseded"
    assert imp.vault.get_profile(TENANT, "c-1").fields["nickname"].value == "bigger"


def test_late_arrival_is_stored_superseded_and_counted(imp: Importer, db: Engine) -> None:
    ok(imp(fld("nickname", "new", 1, minute=60)))
    result = ok(imp(fld("nickname", "old", 2, minute=0)))
    assert (result.inserted, result.superseded) == (1, 1)
    late = stored(db, uid(2))
    assert late is not None
    assert late["status"] == "superseded"
    assert late["superseded_by_id"] == uid(1)
    assert status(db, uid(1)) == "active"
    assert imp.vault.get_profile(TENANT, "c-1").fields["nickname"].value == "new"


def test_file_order_does_not_matter_only_collected_at(imp: Importer, db: Engine) -> None:
    result = ok(
        imp(
            fld("nickname", "v3", 1, minute=30),
            fld("nickname", "v1", 2, minute=10),
            fld("nickname", "v2", 3, minute=20),
        )
    )
    assert (result.inserted, result.superseded) == (3, 2)
    assert [v.value for v in imp.vault.history(TENANT, "c-1", "nickname")] == ["v3", "v2", "v1"]
    assert stored(db, uid(2))["superseded_by_id"] == uid(3)  # type: ignore[index]
    assert stored(db, uid(3))["superseded_by_id"] == uid(1)  # type: ignore[index]


def test_late_arrival_in_demo_data_goes_straight_to_history(demo_vault: Vault) -> None:
    history = demo_vault.history(DEMO, "c-1004", "email")
    by_id = {v.id: v for v in history}
    assert by_id[C1004_LATE_EMAIL].status is Status.SUPERSEDED
    assert by_id[C1004_LATE_EMAIL].superseded_by_id == C1004_ACTIVE_EMAIL
    assert demo_vault.get_profile(DEMO, "c-1004").fields["email"].id == C1004_ACTIVE_EMAIL


def test_save_field_applies_supersession_and_late_arrival(acme: Vault) -> None:
    first = acme.save_field(TENANT, "c-1", "nickname", "Ana", collected_at=T0)
    newer = acme.save_field(TENANT, "c-1", "nickname", "Annie", collected_at=T0 + timedelta(1))
    late = acme.save_field(TENANT, "c-1", "nickname", "A.", collected_at=T0 - timedelta(1))
    assert first.status is Status.ACTIVE
    assert newer.status is Status.ACTIVE
    assert late.status is Status.SUPERSEDED
    assert late.superseded_by_id in {first.id, newer.id}  # SPEC: some newer version
    history = {v.id: v.status for v in acme.history(TENANT, "c-1", "nickname")}
    assert history == {
        newer.id: Status.ACTIVE,
        first.id: Status.SUPERSEDED,
        late.id: Status.SUPERSEDED,
    }


def test_save_field_retried_with_the_same_id_and_content_returns_the_stored_version(
    acme: Vault, db: Engine
) -> None:
    first = acme.save_field(TENANT, "c-1", "nickname", "Ana", collected_at=T0, item_id=uid(1))
    newer = acme.save_field(TENANT, "c-1", "nickname", "Annie", collected_at=T0 + timedelta(1))
    again = acme.save_field(TENANT, "c-1", "nickname", "Ana", collected_at=T0, item_id=uid(1))
    assert again.id == first.id
    assert again.status is Status.SUPERSEDED  # as stored now, not as first returned
    assert again.superseded_by_id == newer.id
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM fields")).scalar() == 2
    with pytest.raises(FindingsError, match="already stored with different content"):
        acme.save_field(TENANT, "c-1", "nickname", "Other", collected_at=T0, item_id=uid(1))


def test_save_field_rejects_an_invalid_value_under_strict(acme: Vault) -> None:
    with pytest.raises(FindingsError, match="not a valid email"):
        acme.save_field(TENANT, "c-1", "email", "not-an-email")
    saved = acme.save_field(
        TENANT, "c-1", "email", "not-an-email", validation_mode=ValidationMode.WARN
    )
    assert saved.status is Status.ACTIVE


def test_history_is_newest_first_with_id_breaking_ties(imp: Importer) -> None:
    ok(
        imp(
            fld("nickname", "a", 1, minute=0),
            fld("nickname", "b", 2, minute=0),
            fld("nickname", "c", 3, minute=-5),
            fld("nickname", "d", 4, minute=10),
        )
    )
    history = imp.vault.history(TENANT, "c-1", "nickname")
    assert [v.id for v in history] == [uid(4), uid(2), uid(1), uid(3)]


# --- Rule 3: TTL on read, before the sweep ----------------------------------------------------


def test_expired_value_is_not_served_before_the_sweep(imp: Importer, db: Engine) -> None:
    ok(imp(fld("nickname", "gone", 1, expires_at=PAST), fld("tier", "pro", 2, expires_at=FUTURE)))
    assert status(db, uid(1)) == "active"  # stored as given; the sweep has not run
    profile = imp.vault.get_profile(TENANT, "c-1")
    assert "nickname" not in profile.fields
    assert profile.fields["tier"].value == "pro"
    assert [v.id for v in imp.vault.history(TENANT, "c-1", "nickname")] == [uid(1)]
    report = imp.vault.validate_profile(TENANT, "c-1", "bot")
    assert [r.field for r in report.results] == ["tier"]


def test_no_read_reports_a_version_past_expires_at_as_active(imp: Importer) -> None:
    ok(imp(fld("nickname", "gone", 1, expires_at=PAST)))
    assert [v.status for v in imp.vault.history(TENANT, "c-1", "nickname")] == [Status.EXPIRED]
    assert imp.vault.trace(TENANT, uid(1)).item.status is Status.EXPIRED


def test_expired_newest_version_does_not_resurface_the_older_one(imp: Importer) -> None:
    ok(
        imp(
            fld("nickname", "old", 1, minute=0),
            fld("nickname", "new", 2, minute=10, expires_at=PAST),
        )
    )
    assert "nickname" not in imp.vault.get_profile(TENANT, "c-1").fields


def test_record_already_expired_is_stored_active_and_expired_by_the_next_sweep(
    imp: Importer, db: Engine
) -> None:
    ok(imp(fld("nickname", "gone", 1, expires_at=PAST)))
    assert status(db, uid(1)) == "active"
    swept = imp.vault.expire([TENANT], apply=True)
    assert [item.id for item in swept.tenants[TENANT].items] == [uid(1)]
    assert status(db, uid(1)) == "expired"


# --- as_of --------------------------------------------------------------------------------


def test_as_of_serves_the_version_current_at_that_time(imp: Importer) -> None:
    ok(imp(fld("nickname", "v1", 1, minute=0), fld("nickname", "v2", 2, minute=60)))
    view = imp.vault.get_profile
    assert view(TENANT, "c-1", as_of=T0 + timedelta(minutes=30)).fields["nickname"].id == uid(1)
    assert view(TENANT, "c-1", as_of=T0 + timedelta(minutes=60)).fields["nickname"].id == uid(2)
    assert "nickname" not in view(TENANT, "c-1", as_of=T0 - timedelta(seconds=1)).fields


def test_as_of_an_expired_version_does_not_resurface_an_older_one(imp: Importer) -> None:
    expiry = T0 + timedelta(minutes=90)
    ok(
        imp(
            fld("nickname", "v1", 1, minute=0),
            fld("nickname", "v2", 2, minute=60, expires_at=expiry.isoformat()),
        )
    )
    view = imp.vault.get_profile
    assert view(TENANT, "c-1", as_of=expiry - timedelta(seconds=1)).fields["nickname"].id == uid(2)
    assert "nickname" not in view(TENANT, "c-1", as_of=expiry).fields
    assert "nickname" not in view(TENANT, "c-1", as_of=expiry + timedelta(days=1)).fields


def test_as_of_never_serves_an_orphaned_version(imp: Importer) -> None:
    ok(imp(fld("nickname", "v1", 1, minute=0)))
    result = ok(imp(fld("nickname", "v2", 2, minute=60, source_item_id=uid(99))))
    assert result.warnings == 1
    at = T0 + timedelta(minutes=90)
    assert imp.vault.get_profile(TENANT, "c-1", as_of=at).fields["nickname"].id == uid(1)


# --- Rule 4: dangling references and lineage --------------------------------------------------


def test_dangling_reference_is_stored_orphaned_with_a_warning_and_displaces_nothing(
    imp: Importer, db: Engine
) -> None:
    ok(imp(fld("legal_name", "Ana Lima", 1, minute=0)))
    result = ok(
        imp(
            fld(
                "legal_name",
                "Ana B. Lima",
                2,
                minute=60,
                source_item_id=uid(404),
                source_item_type="profile_asset",
            )
        )
    )
    assert (result.inserted, result.warnings, result.superseded) == (1, 1, 0)
    assert uid(404) in result.warning_details[0].message
    assert status(db, uid(2)) == "orphaned"
    assert status(db, uid(1)) == "active"
    assert imp.vault.get_profile(TENANT, "c-1").fields["legal_name"].id == uid(1)


def test_dangling_reference_in_demo_data_is_orphaned(demo_vault: Vault) -> None:
    history = demo_vault.history(DEMO, "c-1013", "legal_name")
    assert [(v.id, v.status) for v in history] == [(C1013_DANGLING, Status.ORPHANED)]
    assert "legal_name" not in demo_vault.get_profile(DEMO, "c-1013").fields


def test_vault_reference_that_is_not_a_uuid_is_dangling_and_warned(
    imp: Importer, db: Engine
) -> None:
    result = ok(
        imp(fld("legal_name", "Ana", 1, source_item_id="scan-17", source_item_type="profile_asset"))
    )
    assert status(db, uid(1)) == "orphaned"
    assert result.warnings == 1


def test_forward_reference_within_a_file_resolves(imp: Importer, db: Engine) -> None:
    result = ok(
        imp(
            fld("legal_name", "Ana Lima", 2, minute=1, source_item_id=uid(1)),
            asset("id_card_front", 1, minute=0),
        )
    )
    assert result.warnings == 0
    row = stored(db, uid(2))
    assert row is not None
    assert (row["status"], row["source_item_type"]) == ("active", "profile_asset")


def test_forward_references_in_demo_data_resolve(demo_vault: Vault) -> None:
    trace = demo_vault.trace(DEMO, C1002_LEGAL_NAME)
    assert trace.item.status is Status.ACTIVE
    assert (trace.chain[0].id, trace.chain[0].kind) == (C1002_ID_CARD, "asset")


def test_source_type_is_inferred_for_vault_and_external_sources(imp: Importer, db: Engine) -> None:
    ok(imp(fld("nickname", "Ana", 1)))
    ok(
        imp(
            fld("tier", "pro", 2, source_item_id=uid(1)),
            fld("score", 7, 3, source_item_id="crm-ticket-9"),
        )
    )
    assert stored(db, uid(2))["source_item_type"] == "profile_field"  # type: ignore[index]
    assert stored(db, uid(3))["source_item_type"] == "external"  # type: ignore[index]
    assert status(db, uid(3)) == "active"


def test_contradicting_source_item_type_rejects_the_record(imp: Importer, db: Engine) -> None:
    ok(imp(fld("nickname", "Ana", 1)))
    result = imp(
        fld("tier", "pro", 2, source_item_id=uid(1), source_item_type="profile_asset"),
        asset("scan", 3),
        fld("score", 1, 4, source_item_id=uid(3), source_item_type="profile_field"),
    )
    assert result.rejected == 2
    assert [e.line for e in result.errors] == [1, 3]
    assert all("contradicts" in e.message for e in result.errors)
    assert stored(db, uid(2)) is None
    assert stored(db, uid(4)) is None
    assert status(db, uid(3)) == "active"


def test_lineage_may_cross_customers_of_one_tenant(imp: Importer, db: Engine) -> None:
    ok(imp(fld("tier", "pro", 1, customer="c-1")))
    result = ok(imp(fld("tier", "pro", 2, customer="c-2", source_item_id=uid(1))))
    assert result.warnings == 0
    assert status(db, uid(2)) == "active"
    chain = imp.vault.trace(TENANT, uid(2)).chain
    assert [(i.id, i.customer) for i in chain] == [(uid(1), "c-1")]


def test_lineage_across_customers_in_demo_data(demo_vault: Vault) -> None:
    trace = demo_vault.trace(DEMO, C1021_TIER)
    assert (trace.chain[0].id, trace.chain[0].customer) == (C1020_TIER, "c-1020")
    assert trace.item.status is Status.ACTIVE


def test_reference_to_another_tenants_item_is_dangling(imp: Importer, db: Engine) -> None:
    ok(imp(fld("tier", "pro", 1, tenant="globex"), validation_mode=ValidationMode.DISABLED))
    result = ok(imp(fld("tier", "pro", 2, source_item_id=uid(1))))
    assert result.warnings == 1
    assert status(db, uid(2)) == "orphaned"
    chain = imp.vault.trace(TENANT, uid(2)).chain
    assert [(i.id, i.kind, i.name, i.status) for i in chain] == [(uid(1), "missing", None, None)]


# --- Rule 6: cycles -----------------------------------------------------------------------


def test_self_reference_is_rejected(imp: Importer, db: Engine) -> None:
    result = imp(fld("nickname", "me", 1, source_item_id=uid(1)))
    assert result.rejected == 1
    assert "cycle" in result.errors[0].message
    assert stored(db, uid(1)) is None


def test_every_record_on_a_cycle_within_a_file_is_rejected(imp: Importer, db: Engine) -> None:
    result = imp(
        fld("nickname", "a", 1, source_item_id=uid(2)),
        fld("tier", "pro", 2, source_item_id=uid(3)),
        fld("score", 3, 3, source_item_id=uid(1)),
        fld("legal_name", "tail", 4, source_item_id=uid(1)),
    )
    assert sorted(e.line for e in result.errors) == [1, 2, 3]
    assert all("cycle" in e.message for e in result.errors)
    assert [stored(db, uid(n)) for n in (1, 2, 3)] == [None, None, None]
    assert status(db, uid(4)) is not None  # the tail is not on the cycle


def test_cycle_closed_through_stored_items_is_rejected(imp: Importer, db: Engine) -> None:
    first = ok(imp(fld("nickname", "a", 1, source_item_id=uid(2))))
    assert first.warnings == 1  # uid(2) does not exist yet
    result = imp(fld("tier", "pro", 2, source_item_id=uid(1)))
    assert result.rejected == 1
    assert "cycle" in result.errors[0].message
    assert stored(db, uid(2)) is None


# --- Re-imports -----------------------------------------------------------------------------


def test_same_id_reimported_unchanged_or_in_conflict(imp: Importer, db: Engine) -> None:
    records = (fld("nickname", "Ana", 1), asset("scan", 2))
    ok(imp(*records))
    again = ok(imp(*records))
    assert (again.inserted, again.unchanged, again.superseded) == (0, 2, 0)
    conflict = imp(fld("nickname", "Bob", 1))
    assert conflict.rejected == 1
    assert "conflict" in conflict.errors[0].message
    assert stored(db, uid(1))["value"] == "Ana"  # type: ignore[index]


def test_records_without_id_are_reimported_unchanged(imp: Importer, db: Engine) -> None:
    records = (fld("nickname", "Ana"), fld("tier", "pro", minute=1))
    path = imp.write(*records)
    first = ok(imp.vault.import_files([path]))
    again = ok(imp.vault.import_files([path]))
    assert (first.inserted, again.inserted, again.unchanged) == (2, 0, 2)
    with db.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM fields")).scalar_one()
    assert count == 2


def test_reimporting_the_demo_file_changes_nothing(demo_vault: Vault) -> None:
    again = ok(demo_vault.import_files([DEMO_PROFILES]))
    assert again.records == 256
    assert (again.inserted, again.superseded, again.unchanged) == (0, 0, 256)


# --- Validation modes -----------------------------------------------------------------------


def test_strict_rejects_invalid_and_unknown_fields(imp: Importer, db: Engine) -> None:
    result = imp(fld("email", "not-an-email", 1), fld("shoe_size", 42, 2), fld("tier", "pro", 3))
    assert result.rejected == 2
    messages = [e.message for e in result.errors]
    assert "not a valid email" in messages[0]
    assert "not defined by any agent" in messages[1]
    assert "not-an-email" not in " ".join(messages)  # values may be PII
    assert (stored(db, uid(1)), stored(db, uid(2)), status(db, uid(3))) == (None, None, "active")


def test_warn_stores_and_reports_invalid_and_unknown_fields(imp: Importer, db: Engine) -> None:
    result = ok(
        imp(fld("email", "nope", 1), fld("shoe_size", 42, 2), validation_mode=ValidationMode.WARN)
    )
    assert (result.inserted, result.warnings) == (2, 2)
    assert [w.line for w in result.warning_details] == [1, 2]
    assert (status(db, uid(1)), status(db, uid(2))) == ("active", "active")


def test_disabled_stores_silently(imp: Importer, db: Engine) -> None:
    result = ok(
        imp(
            fld("email", "nope", 1),
            fld("shoe_size", 42, 2),
            validation_mode=ValidationMode.DISABLED,
        )
    )
    assert (result.inserted, result.warnings) == (2, 0)


def test_definition_validation_mode_applies_unless_overridden(imp: Importer, db: Engine) -> None:
    warned = ok(imp(fld("risk", "high", 1)))
    assert (warned.inserted, warned.warnings) == (1, 1)
    strict = imp(fld("risk", "low", 2), validation_mode=ValidationMode.STRICT)
    assert strict.rejected == 1
    assert stored(db, uid(2)) is None
    relaxed = ok(imp(fld("email", "nope", 3), validation_mode=ValidationMode.WARN))
    assert relaxed.warnings == 1
    assert status(db, uid(3)) == "active"


@pytest.mark.parametrize("mode", list(ValidationMode))
def test_structural_errors_reject_the_record_under_every_mode(
    imp: Importer, mode: ValidationMode
) -> None:
    result = imp(
        '{"customer": "c-1", "name": ',
        fld("nickname", "x", colected_at="2026-01-01"),
        fld("Nick Name", "x"),
        fld("nickname", "x", source="guess"),
        fld("nickname", "x", kind="document"),
        fld("nickname", "x", tenant="globex"),
        fld("nickname", "fine", 1),
        tenant=TENANT,
        validation_mode=mode,
    )
    assert result.rejected == 6
    assert [e.line for e in result.errors] == [1, 2, 3, 4, 5, 6]
    assert "did you mean 'collected_at'" in result.errors[1].message
    assert "differs from --tenant" in result.errors[5].message
    assert result.inserted == 1


def test_tenant_without_definitions_says_to_apply_a_schema(vault: Vault, tmp_path: Path) -> None:
    imp = Importer(vault, tmp_path)
    result = imp(fld("nickname", "Ana", 1, tenant="bare"))
    assert result.rejected == 1
    assert "run `ccv schema apply`" in result.errors[0].message
    assert "--validation warn" in result.errors[0].message
    warned = ok(imp(fld("nickname", "Ana", 1, tenant="bare"), validation_mode=ValidationMode.WARN))
    assert (warned.inserted, warned.warnings) == (1, 1)


def test_agents_defining_one_name_merge_validity_pii_and_retention(
    acme: Vault, tmp_path: Path, db: Engine
) -> None:
    for agent, prefix, pii, days in (("alpha", "A", "false", 20), ("beta", "B", "true", 10)):
        path = tmp_path / f"{agent}.yaml"
        path.write_text(
            f"tenant: acme\nagent: {agent}\nfields:\n  - name: code\n    value_type: string\n"
            f"    validation_regex: '^{prefix}[0-9]+$'\n    is_pii: {pii}\n"
            f"    retention_days: {days}\n",
            encoding="utf-8",
        )
        acme.apply_schema([path])
    imp = Importer(acme, tmp_path)
    result = imp(fld("code", "A1", 1), fld("code", "B2", 2, customer="c-2"), fld("code", "C3", 3))
    assert [e.line for e in result.errors] == [3]
    assert stored(db, uid(1))["expires_at"] == T0 + timedelta(days=10)  # type: ignore[index]
    (field,) = acme.history(TENANT, "c-2", "code")
    assert (field.is_pii, field.masked, field.value) == (True, True, "***")


def test_retention_days_sets_expires_at_unless_the_record_gives_one(
    imp: Importer, db: Engine
) -> None:
    ok(
        imp(
            fld("kyc_status", "pending", 1),
            fld("kyc_status", "verified", 2, customer="c-2", expires_at=FUTURE),
        )
    )
    assert stored(db, uid(1))["expires_at"] == T0 + timedelta(days=30)  # type: ignore[index]
    assert stored(db, uid(2))["expires_at"] == datetime(2999, 1, 1, tzinfo=UTC)  # type: ignore[index]


# --- Formats: wide CSV conversion, JSON types, per-record rejection ---------------------------


def test_wide_csv_cells_are_converted_to_the_definition_type(imp: Importer) -> None:
    path = imp.tmp_path / "wide.csv"
    path.write_text(
        "customer,score,nickname,tier\nc-1,42,Ana,pro\nc-2,,Bo,\nc-3,forty,Cy,free\n",
        encoding="utf-8",
    )
    result = imp.vault.import_files([path], tenant=TENANT)
    assert (result.records, result.inserted, result.rejected) == (7, 6, 1)
    assert (result.errors[0].file, result.errors[0].line) == (str(path), 4)
    score = imp.vault.get_profile(TENANT, "c-1").fields["score"]
    assert score.value == 42
    assert type(score.value) is int
    assert score.source == "imported"
    assert set(imp.vault.get_profile(TENANT, "c-2").fields) == {"nickname"}
    assert set(imp.vault.get_profile(TENANT, "c-3").fields) == {"nickname", "tier"}


def test_json_string_is_not_an_integer(imp: Importer) -> None:
    result = imp(fld("score", "42", 1), fld("score", 42, 2, customer="c-2"))
    assert [e.line for e in result.errors] == [1]
    assert "not an integer" in result.errors[0].message
    assert imp.vault.get_profile(TENANT, "c-2").fields["score"].value == 42


def test_rejected_lines_are_listed_and_valid_ones_stored(imp: Importer, db: Engine) -> None:
    path = imp.write(
        fld("nickname", "Ana", 1),
        "{not json",
        fld("nickname", "Bo", 2, customer="c-2", bogus=True),
        fld("tier", "pro", 3),
        "",
        fld("email", "broken", 4),
    )
    result = imp.vault.import_files([path])
    assert (result.records, result.inserted, result.rejected) == (5, 2, 3)
    assert [(e.file, e.line) for e in result.errors] == [(str(path), n) for n in (2, 3, 6)]
    assert (status(db, uid(1)), status(db, uid(3))) == ("active", "active")
    assert stored(db, uid(2)) is None


def test_json_array_rejections_carry_line_numbers(imp: Importer) -> None:
    path = imp.tmp_path / "records.json"
    path.write_text(
        "[\n"
        + json.dumps(fld("nickname", "Ana", 1))
        + ",\n"
        + json.dumps(fld("nickname", "x", 2, kind="thing"))
        + "\n]\n",
        encoding="utf-8",
    )
    result = imp.vault.import_files([path])
    assert (result.inserted, [e.line for e in result.errors]) == (1, [3])


def test_dry_run_stores_nothing_and_reports_the_same_counts(
    acme: Vault, tmp_path: Path, db: Engine
) -> None:
    imp = Importer(acme, tmp_path)
    ok(imp(fld("nickname", "base", 1, minute=5)))
    path = imp.write(
        fld("nickname", "newer", 2, minute=10),
        fld("nickname", "late", 3, minute=0),
        fld("nickname", "dangling", 4, minute=20, source_item_id=uid(99)),
        fld("email", "bad", 5),
        fld("nickname", "base", 1, minute=5),
    )
    dry = acme.import_files([path], dry_run=True)
    assert dry.dry_run
    assert [stored(db, uid(n)) for n in (2, 3, 4)] == [None, None, None]
    assert status(db, uid(1)) == "active"
    assert audit(db) == []
    real = acme.import_files([path])
    assert dry.model_dump(exclude={"dry_run"}) == real.model_dump(exclude={"dry_run"})
    assert (real.inserted, real.superseded, real.unchanged, real.rejected, real.warnings) == (
        3,
        2,
        1,
        1,
        1,
    )


# --- Expiry sweep -------------------------------------------------------------------------


@pytest.fixture
def expiring(imp: Importer) -> Importer:
    """uid(1) active, uid(2) orphaned and uid(3) superseded, all past 2026-04-01; uid(5) later."""
    april = "2026-04-01T00:00:00Z"
    ok(imp(fld("nickname", "Ana", 1, expires_at=april)))
    ok(imp(fld("legal_name", "Ana", 2, expires_at=april, source_item_id=uid(404))))
    ok(imp(fld("tier", "free", 3, expires_at=april), fld("tier", "pro", 4, minute=5)))
    ok(imp(fld("score", 1, 5, expires_at="2026-06-01T00:00:00Z")))
    return imp


MAY = datetime(2026, 5, 1, tzinfo=UTC)


def test_expiry_dry_run_reports_without_changing_anything(expiring: Importer, db: Engine) -> None:
    result = expiring.vault.expire([TENANT], now=MAY)
    assert not result.applied
    assert (result.total, result.tenants[TENANT].count) == (2, 2)
    assert sorted(i.id for i in result.tenants[TENANT].items) == [uid(1), uid(2)]
    assert (status(db, uid(1)), status(db, uid(2))) == ("active", "orphaned")
    assert [e for e in audit(db) if e["to_status"] == "expired"] == []


def test_expiry_dry_run_lists_the_first_items_by_expiry_with_exact_counts(imp: Importer) -> None:
    # Four fields and an asset past expiry; uid(3) and uid(2) expire first (tie: by id).
    ok(
        imp(
            fld("nickname", "a", 1, minute=30, expires_at="2026-04-03T00:00:00Z"),
            fld("legal_name", "b", 2, minute=20, expires_at="2026-04-01T00:00:00Z"),
            fld("score", 3, 3, minute=10, expires_at="2026-04-01T00:00:00Z"),
            fld("tier", "pro", 4, minute=0, expires_at="2026-04-02T00:00:00Z"),
            asset("id_card", 5, expires_at="2026-03-15T00:00:00Z"),
        )
    )
    full = imp.vault.expire([TENANT], now=MAY, item_limit=None).tenants[TENANT]
    assert (full.count, full.truncated) == (5, False)
    # Listed in the SPEC order: collected_at, then id (fields, then assets).
    assert [i.id for i in full.items] == [uid(4), uid(3), uid(2), uid(1), uid(5)]
    assert [i.kind for i in full.items][-1] == "asset"
    assert full.items[1].expires_at == datetime(2026, 4, 1, tzinfo=UTC)
    page = imp.vault.expire([TENANT], now=MAY, item_limit=2).tenants[TENANT]
    assert (page.count, page.truncated) == (5, True)
    assert [i.id for i in page.items] == [uid(3), uid(2)]  # the first two by expiry
    more = imp.vault.expire([TENANT], now=MAY, item_limit=4).tenants[TENANT]
    assert [i.id for i in more.items] == [uid(4), uid(3), uid(2), uid(1)]


def test_expiry_apply_expires_active_and_orphaned_items_once(
    expiring: Importer, db: Engine
) -> None:
    dry = expiring.vault.expire([TENANT], now=MAY)
    applied = expiring.vault.expire([TENANT], now=MAY, apply=True)
    assert applied.applied
    assert applied.total == dry.total == 2
    assert sorted(i.id for i in applied.tenants[TENANT].items) == [uid(1), uid(2)]
    assert [status(db, uid(n)) for n in (1, 2, 3, 4, 5)] == [
        "expired",
        "expired",
        "superseded",
        "active",
        "active",
    ]
    events = {
        e["item_id"]: (e["from_status"], e["to_status"])
        for e in audit(db)
        if e["to_status"] == "expired"
    }
    assert events == {uid(1): ("active", "expired"), uid(2): ("orphaned", "expired")}
    again = expiring.vault.expire([TENANT], now=MAY, apply=True)
    assert (again.total, again.tenants[TENANT].count) == (0, 0)


def test_item_is_expired_exactly_at_expires_at(expiring: Importer) -> None:
    boundary = datetime(2026, 6, 1, tzinfo=UTC)
    ids = {i.id for i in expiring.vault.expire([TENANT], now=boundary).tenants[TENANT].items}
    assert uid(5) in ids
    before = boundary - timedelta(microseconds=1)
    ids = {i.id for i in expiring.vault.expire([TENANT], now=before).tenants[TENANT].items}
    assert uid(5) not in ids


def test_demo_expiry_finds_expired_risk_scores_but_not_superseded_ones(
    demo_vault: Vault,
) -> None:
    result = demo_vault.expire([DEMO], now=datetime(2026, 2, 15, tzinfo=UTC))
    found = {(i.customer, i.name) for i in result.tenants[DEMO].items}
    assert {("c-1006", "risk_score"), ("c-1007", "risk_score"), ("c-1008", "risk_score")} <= found
    assert ("c-1012", "risk_score") not in found


@pytest.mark.parametrize("sweep", ["expire", "orphans"])
def test_sweeps_need_exactly_one_of_tenant_or_all_tenants(acme: Vault, sweep: str) -> None:
    run = getattr(acme, sweep)
    with pytest.raises(UsageError) as caught:
        run()
    assert caught.value.exit_code == 2
    with pytest.raises(UsageError):
        run([TENANT], all_tenants=True)


def test_all_tenant_sweeps_report_per_tenant(imp: Importer) -> None:
    ok(imp(fld("nickname", "Ana", 1, expires_at=PAST)))
    ok(
        imp(
            fld("nickname", "Bo", 1, tenant="globex", expires_at=PAST),
            fld("tier", "x", 2, tenant="globex", expires_at=PAST),
            validation_mode=ValidationMode.DISABLED,
        )
    )
    result = imp.vault.expire(all_tenants=True)
    assert {t: s.count for t, s in result.tenants.items()} == {TENANT: 1, "globex": 2}
    assert result.total == 3


# --- Rule 7: delete, orphans ----------------------------------------------------------------


@pytest.fixture
def lineage(imp: Importer) -> Importer:
    """Asset uid(10) from a session -> legal_name uid(11) -> nickname uid(12)."""
    ok(
        imp(
            asset("id_card_front", 10, source_item_id="sess-1", source_item_type="session"),
            fld("legal_name", "Ana Lima", 11, minute=1, source_item_id=uid(10)),
            fld("nickname", "Ana", 12, minute=2, source_item_id=uid(11)),
        )
    )
    return imp


def test_delete_is_refused_while_active_dependents_exist(lineage: Importer, db: Engine) -> None:
    with pytest.raises(RefusedError) as caught:
        lineage.vault.delete(TENANT, uid(10))
    assert caught.value.exit_code == 4
    assert "--force" in str(caught.value)
    assert (status(db, uid(10)), status(db, uid(11))) == ("active", "active")


def test_forced_delete_orphans_direct_dependents(lineage: Importer, db: Engine) -> None:
    result = lineage.vault.delete(TENANT, uid(10), force=True)
    assert (result.deleted, result.orphaned) == (True, [uid(11)])
    assert stored(db, uid(10)) is None
    assert (status(db, uid(11)), status(db, uid(12))) == ("orphaned", "active")
    assert lineage.vault.orphans([TENANT]).total == 0
    events = [(e["item_id"], e["event"]) for e in audit(db)]
    assert (uid(10), "delete") in events
    with pytest.raises(NotFoundError) as caught:
        lineage.vault.trace(TENANT, uid(10))
    assert caught.value.exit_code == 3


def test_orphan_sweep_finds_items_whose_source_vanished(lineage: Importer, db: Engine) -> None:
    with db.begin() as conn:  # a source removed behind the vault's back
        conn.execute(
            text("DELETE FROM fields WHERE tenant = :t AND id = :i"), {"t": TENANT, "i": uid(11)}
        )
    dry = lineage.vault.orphans([TENANT])
    assert [(i.id, i.source_item_id) for i in dry.tenants[TENANT].items] == [(uid(12), uid(11))]
    assert status(db, uid(12)) == "active"
    applied = lineage.vault.orphans([TENANT], apply=True)
    assert [i.id for i in applied.tenants[TENANT].items] == [uid(12)]
    assert status(db, uid(12)) == "orphaned"  # never auto-deleted
    assert any(e["item_id"] == uid(12) and e["to_status"] == "orphaned" for e in audit(db))
    assert lineage.vault.orphans([TENANT], apply=True).total == 0


def test_superseded_dependents_do_not_block_a_delete(lineage: Importer, db: Engine) -> None:
    ok(lineage(fld("nickname", "Annie", 13, minute=30)))
    assert status(db, uid(12)) == "superseded"
    lineage.vault.delete(TENANT, uid(11))
    assert status(db, uid(12)) == "superseded"


def test_delete_does_not_reactivate_an_older_version(imp: Importer, db: Engine) -> None:
    ok(imp(fld("nickname", "v1", 1, minute=0), fld("nickname", "v2", 2, minute=5)))
    imp.vault.delete(TENANT, uid(2))
    assert status(db, uid(1)) == "superseded"
    assert "nickname" not in imp.vault.get_profile(TENANT, "c-1").fields
    assert [e["event"] for e in audit(db) if e["item_id"] == uid(2)] == ["delete"]


def test_deleting_an_unknown_item_is_not_found(acme: Vault) -> None:
    for item in (uid(77), "not-a-uuid"):
        with pytest.raises(NotFoundError) as caught:
            acme.delete(TENANT, item)
        assert caught.value.exit_code == 3


# --- Erase ----------------------------------------------------------------------------------


def test_erase_removes_the_customer_and_orphans_other_customers_derived_items(
    lineage: Importer, db: Engine
) -> None:
    ok(lineage(fld("tier", "pro", 20, customer="c-2", source_item_id=uid(11))))
    result = lineage.vault.erase(TENANT, "c-1")
    assert (result.fields, result.assets, result.orphaned) == (2, 1, [uid(20)])
    assert [stored(db, uid(n)) for n in (10, 11, 12)] == [None, None, None]
    assert status(db, uid(20)) == "orphaned"
    for read in (
        lambda: lineage.vault.get_profile(TENANT, "c-1"),
        lambda: lineage.vault.history(TENANT, "c-1"),
        lambda: lineage.vault.trace(TENANT, uid(11)),
        lambda: lineage.vault.erase(TENANT, "c-1"),
    ):
        with pytest.raises(NotFoundError) as caught:
            read()
        assert caught.value.exit_code == 3
    erased = {e["item_id"] for e in audit(db) if e["event"] == "erase"}
    assert erased == {uid(10), uid(11), uid(12)}
    dumped = json.dumps(audit(db), default=str)
    assert "Ana Lima" not in dumped
    assert '"Ana"' not in dumped


def test_customer_with_nothing_stored_is_not_found(acme: Vault) -> None:
    for read in (
        lambda: acme.get_profile(TENANT, "nobody"),
        lambda: acme.validate_profile(TENANT, "nobody", "bot"),
        lambda: acme.get_profile(TENANT, "nobody", as_of=T0),
    ):
        with pytest.raises(NotFoundError) as caught:
            read()
        assert caught.value.exit_code == 3


# --- PII ----------------------------------------------------------------------------------


def test_pii_is_masked_unless_revealed_and_the_reveal_is_audited_without_values(
    imp: Importer, db: Engine
) -> None:
    ok(
        imp(
            fld("email", "ana.lima@example.com", 1, minute=0),
            fld("email", "ana.b.lima@example.com", 2, minute=5),
            fld("legal_name", "Ana Beatriz Lima", 3),
            fld("nickname", "Nana", 4),
        )
    )
    profile = imp.vault.get_profile(TENANT, "c-1")
    email = profile.fields["email"]
    assert (email.value, email.masked, email.is_pii) == ("a***@example.com", True, True)
    assert profile.fields["legal_name"].value == "***"
    assert (profile.fields["nickname"].value, profile.fields["nickname"].masked) == ("Nana", False)
    assert [v.value for v in imp.vault.history(TENANT, "c-1", "email")] == ["a***@example.com"] * 2
    assert not [e for e in audit(db) if e["event"] == "reveal_pii"]

    revealed = imp.vault.get_profile(TENANT, "c-1", history=True, reveal_pii=True, actor="tester")
    assert revealed.fields["email"].value == "ana.b.lima@example.com"
    assert not revealed.fields["email"].masked
    reveals = [e for e in audit(db) if e["event"] == "reveal_pii"]
    assert [(e["customer"], e["actor"]) for e in reveals] == [("c-1", "tester")]
    dumped = json.dumps(audit(db), default=str)
    for value in ("ana.lima@example.com", "ana.b.lima@example.com", "Ana Beatriz Lima"):
        assert value not in dumped


# --- Trace --------------------------------------------------------------------------------


def test_trace_chain_ends_at_an_external_source(lineage: Importer) -> None:
    trace = lineage.vault.trace(TENANT, uid(12))
    assert (trace.item.id, trace.item.kind, trace.item.status) == (uid(12), "field", Status.ACTIVE)
    assert [(i.id, i.kind) for i in trace.chain] == [
        (uid(11), "field"),
        (uid(10), "asset"),
        ("sess-1", "external"),
    ]
    assert (trace.chain[-1].name, trace.chain[-1].status) == ("session", None)
    assert trace.dependents == []


def test_trace_chain_ends_at_a_missing_item(imp: Importer) -> None:
    ok(imp(fld("nickname", "x", 1, source_item_id=uid(404), source_item_type="profile_field")))
    trace = imp.vault.trace(TENANT, uid(1))
    assert trace.item.status is Status.ORPHANED
    assert [(i.id, i.kind, i.name, i.status) for i in trace.chain] == [
        (uid(404), "missing", None, None)
    ]


def test_trace_lists_dependents_as_a_tree(lineage: Importer) -> None:
    ok(lineage(fld("score", 1, 14, minute=3, source_item_id=uid(10))))
    trace = lineage.vault.trace(TENANT, uid(10))
    assert trace.chain[0].kind == "external"
    tree = [
        (node.item.id, [(child.item.id, child.dependents) for child in node.dependents])
        for node in trace.dependents
    ]
    assert tree == [(uid(11), [(uid(12), [])]), (uid(14), [])]


def test_trace_works_for_an_item_of_any_status(lineage: Importer) -> None:
    ok(lineage(fld("nickname", "Annie", 13, minute=30)))
    trace = lineage.vault.trace(TENANT, uid(12))
    assert trace.item.status is Status.SUPERSEDED
    assert [i.id for i in trace.chain[:2]] == [uid(11), uid(10)]


def test_trace_of_an_unknown_item_is_not_found(acme: Vault) -> None:
    for item in (uid(1), "sess-1"):
        with pytest.raises(NotFoundError):
            acme.trace(TENANT, item)


def test_demo_trace_runs_from_derived_field_to_the_id_card(demo_vault: Vault) -> None:
    trace = demo_vault.trace(DEMO, C1001_IS_ADULT)
    assert [(i.id, i.kind) for i in trace.chain[:2]] == [
        (C1001_DOB, "field"),
        (C1001_ID_CARD, "asset"),
    ]
    assert trace.chain[-1].kind == "external"


def test_demo_dangling_reference_traces_to_a_missing_item(demo_vault: Vault) -> None:
    chain = demo_vault.trace(DEMO, C1013_DANGLING).chain
    assert [(i.id, i.kind) for i in chain] == [(C1013_MISSING_ASSET, "missing")]


# --- Assets ---------------------------------------------------------------------------------


def test_assets_are_not_validated_and_supersede_by_name(imp: Importer, db: Engine) -> None:
    ok(imp(asset("mystery_blob", 1, minute=0)))
    ok(imp(asset("mystery_blob", 2, minute=5), fld("legal_name", "Ana", 3, source_item_id=uid(2))))
    assert (status(db, uid(1)), status(db, uid(2))) == ("superseded", "active")
    assets = imp.vault.get_profile(TENANT, "c-1").assets
    assert [(a.id, a.analysis_field_ids) for a in assets] == [(uid(2), [uid(3)])]


# --- Validation of a stored profile ---------------------------------------------------------


def test_validate_profile_checks_active_values_against_the_agent(imp: Importer) -> None:
    ok(
        imp(
            fld("email", "broken", 1),
            fld("nickname", "Ana", 2),
            fld("shoe_size", 42, 3),
            validation_mode=ValidationMode.DISABLED,
        )
    )
    report = imp.vault.validate_profile(TENANT, "c-1", "bot")
    assert not report.valid
    assert {r.field: r.status for r in report.results} == {
        "email": "invalid",
        "nickname": "valid",
        "shoe_size": "undefined",
    }


def test_output_times_are_iso_8601_with_an_offset(imp: Importer) -> None:
    ok(imp(fld("nickname", "Ana", 1)))
    dumped = imp.vault.get_profile(TENANT, "c-1").model_dump(mode="json")
    assert dumped["fields"]["nickname"]["collected_at"] == "2026-03-01T10:00:00+00:00"
    assert dumped["as_of"].endswith("+00:00")


# --- Rule 8: tenant scope -------------------------------------------------------------------


def test_second_tenant_with_the_same_ids_sees_nothing_of_the_first(
    imp: Importer, db: Engine
) -> None:
    def records(tenant: str, word: str) -> list[dict[str, Any]]:
        return [
            asset("id_card_front", 10, tenant=tenant),
            fld("legal_name", f"{word} Lima", 11, tenant=tenant, source_item_id=uid(10)),
            fld("nickname", word, 12, tenant=tenant, expires_at=PAST),
        ]

    ok(imp(*records(TENANT, "Ana")))
    ok(imp(*records("globex", "Bea"), validation_mode=ValidationMode.DISABLED))
    assert imp.vault.get_profile("globex", "c-1").fields["legal_name"].value == "Bea Lima"
    assert imp.vault.get_profile(TENANT, "c-1").fields["legal_name"].value == "***"
    assert [n.item.id for n in imp.vault.trace("globex", uid(10)).dependents] == [uid(11)]

    expired = imp.vault.expire(["globex"], apply=True)
    assert list(expired.tenants) == ["globex"]
    assert status(db, uid(12), "globex") == "expired"
    assert status(db, uid(12), TENANT) == "active"

    imp.vault.delete("globex", uid(10), force=True)
    assert status(db, uid(10), TENANT) == "active"
    assert status(db, uid(11), TENANT) == "active"
    assert imp.vault.orphans([TENANT]).total == 0

    imp.vault.erase("globex", "c-1")
    assert imp.vault.get_profile(TENANT, "c-1").fields["legal_name"].id == uid(11)
    with pytest.raises(NotFoundError):
        imp.vault.get_profile("globex", "c-1")
    assert all(e["tenant"] == TENANT for e in audit(db, TENANT))


# --- Rule 6 (continued): traversal is depth-guarded -------------------------------------------


def test_trace_of_a_very_long_chain_is_truncated_not_endless(imp: Importer) -> None:
    length = MAX_LINEAGE_DEPTH + 20
    records = [fld("nickname", "root", 1, customer="c-0")] + [
        fld("nickname", f"n{n}", n, customer=f"c-{n}", source_item_id=uid(n - 1))
        for n in range(2, length + 1)
    ]
    ok(imp(*records))
    deep = imp.vault.trace(TENANT, uid(length))
    assert deep.truncated
    assert len(deep.chain) <= MAX_LINEAGE_DEPTH
    assert [i.id for i in deep.chain[:2]] == [uid(length - 1), uid(length - 2)]
    shallow = imp.vault.trace(TENANT, uid(5))
    assert not shallow.truncated
    assert [i.id for i in shallow.chain] == [uid(4), uid(3), uid(2), uid(1)]


def test_trace_terminates_on_a_cycle_written_behind_the_vaults_back(
    imp: Importer, db: Engine
) -> None:
    ok(imp(fld("nickname", "a", 1), fld("tier", "pro", 2, source_item_id=uid(1))))
    with db.begin() as conn:
        conn.execute(
            fields.update()
            .where(fields.c.tenant == TENANT, fields.c.id == uid(1))
            .values(source_item_id=uid(2), source_item_type="profile_field")
        )
    trace = imp.vault.trace(TENANT, uid(1))
    assert trace.truncated
    assert [n.item.id for n in trace.dependents] == [uid(2)]
    assert trace.dependents[0].dependents == []


def test_expired_asset_is_not_served(imp: Importer) -> None:
    ok(imp(asset("scan", 1, expires_at=PAST), asset("photo", 2, expires_at=FUTURE)))
    assert [a.id for a in imp.vault.get_profile(TENANT, "c-1").assets] == [uid(2)]


# --- Rejection is per record, the same on both dialects --------------------------------------

NUL_RECORDS = {
    "value": fld("nickname", "a\u0000b", 2),
    "source_item_id": fld("nickname", "x", 2, source_item_id="sess-\u0000"),
    "source_metadata": fld("nickname", "x", 2, source_metadata={"quote": "\u0000"}),
}


@pytest.mark.parametrize("where", sorted(NUL_RECORDS))
def test_nul_character_in_a_record_does_not_abort_the_import(
    imp: Importer, db: Engine, where: str
) -> None:
    result = imp(fld("tier", "pro", 1), NUL_RECORDS[where])
    assert status(db, uid(1)) == "active"
    assert result.inserted + result.rejected == 2
    assert [e.line for e in result.errors] in ([], [2])


def test_time_out_of_range_rejects_only_that_record(imp: Importer, db: Engine) -> None:
    result = imp(
        fld("tier", "pro", 1),
        fld("nickname", "x", 2, collected_at="0001-01-01T00:00:00+01:00"),
    )
    assert status(db, uid(1)) == "active"
    assert [e.line for e in result.errors] == [2]


def test_retention_past_the_end_of_the_calendar_does_not_abort_the_import(
    imp: Importer, db: Engine
) -> None:
    result = imp(
        fld("tier", "pro", 1),
        fld("kyc_status", "pending", 2, collected_at="9999-12-31T00:00:00Z"),
    )
    assert status(db, uid(1)) == "active"
    assert result.inserted + result.rejected == 2
