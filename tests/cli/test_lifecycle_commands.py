"""`ccv profile expire | orphans | delete | erase | validate`: JSON shapes and exit codes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from .helpers import Ccv, write_jsonl

ASSET = "11111111-1111-4111-8111-111111111111"
OCR_NAME = "22222222-2222-4222-8222-222222222222"
OTHER_DERIVED = "33333333-3333-4333-8333-333333333333"
PAST = "2026-01-10T00:00:00Z"


def _field(customer: str, name: str, value: Any, **more: Any) -> dict[str, Any]:
    return {"tenant": "acme", "customer": customer, "name": name, "value": value, **more}


@pytest.fixture
def acme(ccv: Ccv) -> Ccv:
    """An asset with an OCR'd field, a field derived across customers, and an expired value."""
    records = [
        {
            "kind": "asset",
            "tenant": "acme",
            "customer": "c-1",
            "id": ASSET,
            "name": "id_card_front",
            "asset_type": "image",
            "storage_uri": "s3://kyc/c-1/front.jpg",
            "collected_at": "2026-01-01T00:00:00Z",
        },
        _field(
            "c-1",
            "legal_name",
            "Ana Lima",
            id=OCR_NAME,
            source="document_extracted",
            source_item_id=ASSET,
            collected_at="2026-01-01T00:01:00Z",
        ),
        _field(
            "c-2",
            "holder_name",
            "Ana Lima",
            id=OTHER_DERIVED,
            source="system_inferred",
            source_item_id=OCR_NAME,
            collected_at="2026-01-01T00:02:00Z",
        ),
        _field("c-1", "risk_score", 12, collected_at="2026-01-01T00:00:00Z", expires_at=PAST),
        _field("c-3", "risk_score", 40, collected_at="2026-01-01T00:00:00Z"),
    ]
    write_jsonl(Path("in.jsonl"), records)
    result = ccv.json("profile", "import", "in.jsonl", "--validation", "disabled")
    assert (result["inserted"], result["rejected"]) == (5, 0), result["errors"]
    return ccv


def _check_sweep_shape(result: dict[str, Any]) -> None:
    assert {"applied", "tenants", "total"} <= result.keys()
    assert isinstance(result["applied"], bool)
    assert result["total"] == sum(t["count"] for t in result["tenants"].values())
    for found in result["tenants"].values():
        assert {"count", "items"} <= found.keys()
        assert found["count"] == len(found["items"])
        for item in found["items"]:
            assert {"id", "customer", "name"} <= item.keys()


def test_expire_dry_run_that_finds_items_succeeds_and_changes_nothing(acme: Ccv) -> None:
    result = acme.json("profile", "expire", "--tenant", "acme")
    _check_sweep_shape(result)
    assert result["applied"] is False
    assert result["total"] == 1
    [item] = result["tenants"]["acme"]["items"]
    assert (item["customer"], item["name"]) == ("c-1", "risk_score")
    # Still only hidden, not marked: a second dry run finds it again.
    assert acme.json("profile", "expire", "--tenant", "acme")["total"] == 1


def test_an_expired_value_is_hidden_at_once_and_marked_by_the_sweep(acme: Ccv) -> None:
    shown = acme.json("profile", "show", "c-1", "--tenant", "acme", "--history")
    assert "risk_score" not in shown["fields"]
    applied = acme.json("profile", "expire", "--tenant", "acme", "--apply")
    assert (applied["applied"], applied["total"]) == (True, 1)
    assert acme.json("profile", "expire", "--tenant", "acme")["total"] == 0
    history = acme.json("profile", "show", "c-1", "--tenant", "acme", "--history")["history"]
    assert [v["status"] for v in history["risk_score"]] == ["expired"]


def test_expire_now_accepts_a_date(acme: Ccv) -> None:
    before = acme.json("profile", "expire", "--tenant", "acme", "--now", "2026-01-09")
    assert before["total"] == 0
    on_the_day = acme.json("profile", "expire", "--tenant", "acme", "--now", "2026-01-10")
    assert on_the_day["total"] == 1  # expired at TIME when expires_at <= TIME


def test_expire_all_tenants_reports_per_tenant(acme: Ccv) -> None:
    result = acme.json("profile", "expire", "--all-tenants")
    _check_sweep_shape(result)
    assert result["tenants"]["acme"]["count"] == 1


def test_orphans_lists_items_whose_vault_source_vanished(acme: Ccv) -> None:
    assert acme.json("profile", "orphans", "--tenant", "acme")["total"] == 0
    # The source row disappears behind the vault's back (a manual fix, a restore gone wrong).
    engine = create_engine(acme.database_url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM assets WHERE tenant = 'acme' AND id = :id"), {"id": ASSET})
    engine.dispose()

    dry = acme.json("profile", "orphans", "--tenant", "acme")
    _check_sweep_shape(dry)
    assert dry["applied"] is False
    assert [(i["id"], i["customer"], i["name"]) for i in dry["tenants"]["acme"]["items"]] == [
        (OCR_NAME, "c-1", "legal_name")
    ]
    applied = acme.json("profile", "orphans", "--all-tenants", "--apply")
    assert (applied["applied"], applied["total"]) == (True, 1)
    trace = acme.json("profile", "trace", OCR_NAME, "--tenant", "acme")
    assert trace["item"]["status"] == "orphaned"
    assert trace["chain"][0]["kind"] == "missing"


def test_delete_with_active_dependents_is_refused_with_exit_4(acme: Ccv) -> None:
    result = acme.fails("profile", "delete", ASSET, "--tenant", "acme", code=4)
    assert "--force" in result.stderr
    assert acme.json("profile", "trace", ASSET, "--tenant", "acme")["item"]["status"] == "active"


def test_forced_delete_orphans_the_direct_dependents(acme: Ccv) -> None:
    acme.json("profile", "delete", ASSET, "--tenant", "acme", "--force")
    trace = acme.json("profile", "trace", OCR_NAME, "--tenant", "acme")
    assert trace["item"]["status"] == "orphaned"
    assert trace["chain"][0] | {"kind": "missing", "id": ASSET} == trace["chain"][0]
    acme.fails("profile", "trace", ASSET, "--tenant", "acme", code=3)


def test_delete_of_an_unknown_item_exits_3(acme: Ccv) -> None:
    acme.fails(
        "profile", "delete", "44444444-4444-4444-8444-444444444444", "--tenant", "acme", code=3
    )


def test_erase_without_yes_is_refused_and_keeps_the_data(acme: Ccv) -> None:
    acme.fails("profile", "erase", "c-1", "--tenant", "acme", code=4)
    assert acme.json("profile", "show", "c-1", "--tenant", "acme")["fields"]["legal_name"]


def test_after_erase_the_customer_is_not_found_and_dependents_are_orphaned(acme: Ccv) -> None:
    acme.json("profile", "erase", "c-1", "--tenant", "acme", "--yes")
    acme.fails("profile", "show", "c-1", "--tenant", "acme", code=3)
    acme.fails("profile", "show", "c-1", "--tenant", "acme", "--history", code=3)
    acme.fails("profile", "validate", "c-1", "--tenant", "acme", "--agent", "support-bot", code=3)
    acme.fails("profile", "trace", OCR_NAME, "--tenant", "acme", code=3)
    other = acme.json("profile", "trace", OTHER_DERIVED, "--tenant", "acme")
    assert other["item"]["status"] == "orphaned"


def test_validate_of_an_unknown_customer_exits_3(acme: Ccv) -> None:
    acme.fails("profile", "validate", "c-404", "--tenant", "acme", "--agent", "support-bot", code=3)
