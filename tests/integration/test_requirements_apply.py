"""`Vault.apply_requirements`: validate against the stored schemas, then store each file as the
whole truth for its scenario, idempotently, on both dialects."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from ccv.domain.enums import Fallback, Level
from ccv.errors import FindingsError, UsageError
from ccv.store.requirements import load_requirements
from ccv.store.tables import scenario_requirements, scenarios
from ccv.vault import Vault

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
DEMO_REQUIREMENTS = FIXTURES / "demo" / "requirements"
DEMO_SCHEMAS = sorted((FIXTURES / "demo" / "schema").glob("*.yaml"))
TENANT = "northwind-bank"

SCHEMA = """\
tenant: acme
agent: shop-bot
fields:
  - name: email
    value_type: email
    collection_prompt: "What is your email?"
  - name: order_id
    value_type: string
    collection_prompt: "What is the order reference?"
  - name: refund_amount
    value_type: number
    collection_prompt: "How much should we refund?"
"""

REFUND = """\
tenant: acme
agent: shop-bot
scenario: refund
description: A refund.
requires:
  - field: order_id
    collection_order: 1
  - field: refund_amount
    step: amount
    collection_order: 2
    depends_on: [order_id]
    when: "order_id != null"
  - field: email
    level: soft
"""


def _write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def _stored(vault: Vault, scenario: str, tenant: str = "acme") -> list[tuple[str, str, str]]:
    engine = create_engine(vault.settings.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(
                    scenario_requirements.c.field,
                    scenario_requirements.c.step,
                    scenario_requirements.c.level,
                )
                .where(
                    scenario_requirements.c.tenant == tenant,
                    scenario_requirements.c.scenario == scenario,
                )
                .order_by(scenario_requirements.c.position)
            )
            return [(row.field, row.step, row.level) for row in rows]
    finally:
        engine.dispose()


def _scenario_row(vault: Vault, scenario: str, tenant: str = "acme") -> tuple[object, ...] | None:
    engine = create_engine(vault.settings.database_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                select(
                    scenarios.c.agent,
                    scenarios.c.description,
                    scenarios.c.content_hash,
                    scenarios.c.updated_at,
                ).where(scenarios.c.tenant == tenant, scenarios.c.scenario == scenario)
            ).first()
            return None if row is None else tuple(row)
    finally:
        engine.dispose()


@pytest.fixture
def shop(vault: Vault, tmp_path: Path) -> Path:
    """The acme shop-bot schema applied; returns a directory for requirement files."""
    vault.apply_schema([_write(tmp_path, "shop-bot.yaml", SCHEMA)])
    directory = tmp_path / "requirements"
    directory.mkdir()
    return directory


def test_applying_the_demo_requirements_stores_every_scenario(demo_vault: Vault) -> None:
    result = demo_vault.apply_requirements([DEMO_REQUIREMENTS])
    assert result.files == 4
    assert (result.created, result.updated, result.unchanged, result.removed) == (27, 0, 0, 0)
    assert {s.scenario: s.status for s in result.scenarios} == {
        "account-upgrade": "created",
        "identity-verification": "created",
        "refund-request": "created",
        "update-contact-details": "created",
    }
    assert result.warnings == []
    assert [field for field, _, _ in _stored(demo_vault, "refund-request", TENANT)] == [
        "order_id",
        "refund_amount",
        "card_last4",
        "email",
        "date_of_birth",
        "is_adult",
        "kyc_status",
        "risk_score",
        "preferred_language",
    ]


def test_applying_the_same_files_again_changes_nothing(demo_vault: Vault) -> None:
    demo_vault.apply_requirements([DEMO_REQUIREMENTS])
    before = _scenario_row(demo_vault, "refund-request", TENANT)
    again = demo_vault.apply_requirements([DEMO_REQUIREMENTS])
    assert (again.created, again.updated, again.unchanged, again.removed) == (0, 0, 27, 0)
    assert {s.status for s in again.scenarios} == {"unchanged"}
    assert _scenario_row(demo_vault, "refund-request", TENANT) == before


def test_stored_requirements_read_back_as_the_file_says(vault: Vault, shop: Path) -> None:
    vault.apply_requirements([_write(shop, "refund.yaml", REFUND)])
    engine = create_engine(vault.settings.database_url)
    try:
        with engine.connect() as conn:
            stored = load_requirements(conn, "acme", "refund")
    finally:
        engine.dispose()
    assert [(r.field, r.step) for r in stored] == [
        ("order_id", None),
        ("refund_amount", "amount"),
        ("email", None),
    ]
    amount = stored[1]
    assert amount.depends_on == ["order_id"]
    assert amount.when == "order_id != null"
    assert amount.collection_order == 2
    assert stored[2].level is Level.SOFT
    assert stored[2].fallback is Fallback.ASK
    assert _scenario_row(vault, "refund")[:2] == ("shop-bot", "A refund.")  # type: ignore[index]


def test_a_requirement_removed_from_the_file_is_removed_from_the_store(
    vault: Vault, shop: Path
) -> None:
    path = _write(shop, "refund.yaml", REFUND)
    vault.apply_requirements([path])
    path.write_text(REFUND.replace("  - field: email\n    level: soft\n", ""), encoding="utf-8")
    result = vault.apply_requirements([path])
    assert (result.created, result.updated, result.unchanged, result.removed) == (0, 0, 2, 1)
    assert result.scenarios[0].status == "updated"
    assert [field for field, _, _ in _stored(vault, "refund")] == ["order_id", "refund_amount"]


def test_a_changed_requirement_is_updated_and_a_new_one_created(vault: Vault, shop: Path) -> None:
    path = _write(shop, "refund.yaml", REFUND)
    vault.apply_requirements([path])
    changed = REFUND.replace("    level: soft\n", "    level: hard\n").replace(
        "requires:\n", "requires:\n  - field: email\n    step: confirm\n"
    )
    path.write_text(changed, encoding="utf-8")
    result = vault.apply_requirements([path])
    assert (result.created, result.updated, result.unchanged, result.removed) == (1, 1, 2, 0)
    assert _stored(vault, "refund") == [
        ("email", "confirm", "hard"),
        ("order_id", "", "hard"),
        ("refund_amount", "amount", "hard"),
        ("email", "", "hard"),
    ]


def test_a_changed_description_updates_the_scenario_only(vault: Vault, shop: Path) -> None:
    path = _write(shop, "refund.yaml", REFUND)
    vault.apply_requirements([path])
    before = _scenario_row(vault, "refund")
    path.write_text(REFUND.replace("A refund.", "A refund of an order."), encoding="utf-8")
    result = vault.apply_requirements([path])
    assert result.scenarios[0].status == "updated"
    assert (result.created, result.updated, result.unchanged) == (0, 0, 3)
    after = _scenario_row(vault, "refund")
    assert before is not None and after is not None
    assert after[1] == "A refund of an order."
    assert after[2] != before[2]


def test_comments_and_layout_do_not_change_the_content_hash(vault: Vault, shop: Path) -> None:
    path = _write(shop, "refund.yaml", REFUND)
    vault.apply_requirements([path])
    before = _scenario_row(vault, "refund")
    path.write_text("# reformatted\n" + REFUND.replace("[order_id]", "\n      - order_id"))
    result = vault.apply_requirements([path])
    assert result.scenarios[0].status == "unchanged"
    assert _scenario_row(vault, "refund") == before


def test_an_error_in_any_file_stores_nothing(vault: Vault, shop: Path) -> None:
    good = _write(shop, "refund.yaml", REFUND)
    bad = _write(
        shop,
        "broken.yaml",
        REFUND.replace("scenario: refund", "scenario: other").replace("email", "e_mail"),
    )
    with pytest.raises(FindingsError) as raised:
        vault.apply_requirements([good, bad])
    message = str(raised.value)
    assert f"{bad}:" in message
    assert "unknown-field" in message
    assert "e_mail" in message
    assert _scenario_row(vault, "refund") is None
    assert _stored(vault, "refund") == []


def test_fields_are_checked_against_the_schema_stored_in_the_database(
    vault: Vault, shop: Path
) -> None:
    """No schema file is given: the stored shop-bot schema knows no `nickname`."""
    path = _write(shop, "refund.yaml", REFUND + "  - field: nickname\n")
    with pytest.raises(FindingsError, match="nickname"):
        vault.apply_requirements([path])
    result = vault.apply_requirements([_write(shop, "refund.yaml", REFUND)])
    assert [w.code for w in result.warnings] == []  # the stored schema was found: no no-schema


def test_a_schema_file_among_the_paths_takes_precedence_over_the_stored_one(
    vault: Vault, shop: Path, tmp_path: Path
) -> None:
    schema = SCHEMA + '  - name: nickname\n    value_type: string\n    collection_prompt: "Hi?"\n'
    schema_file = _write(tmp_path, "newer-shop-bot.yaml", schema)
    path = _write(shop, "refund.yaml", REFUND + "  - field: nickname\n")
    result = vault.apply_requirements([path, schema_file])
    assert result.files == 2
    assert result.created == 4


def test_warnings_do_not_block(vault: Vault, shop: Path) -> None:
    """An agent with no schema anywhere: its files are stored, with a no-schema warning."""
    path = _write(shop, "orphan-agent.yaml", REFUND.replace("shop-bot", "ghost-bot"))
    result = vault.apply_requirements([path])
    assert [w.code for w in result.warnings] == ["no-schema"]
    assert result.created == 3


def test_a_scenario_moves_to_another_agent_when_its_file_says_so(
    vault: Vault, shop: Path, tmp_path: Path
) -> None:
    path = _write(shop, "refund.yaml", REFUND)
    vault.apply_requirements([path])
    vault.apply_schema([_write(tmp_path, "other.yaml", SCHEMA.replace("shop-bot", "other-bot"))])
    path.write_text(REFUND.replace("shop-bot", "other-bot"), encoding="utf-8")
    result = vault.apply_requirements([path])
    assert result.scenarios[0].status == "updated"
    assert result.updated == 3
    assert _scenario_row(vault, "refund")[0] == "other-bot"  # type: ignore[index]


def test_removing_a_requirement_above_others_reports_them_unchanged(
    vault: Vault, shop: Path
) -> None:
    path = _write(shop, "refund.yaml", REFUND)
    vault.apply_requirements([path])
    without_first = REFUND.replace("  - field: order_id\n    collection_order: 1\n", "").replace(
        '    depends_on: [order_id]\n    when: "order_id != null"\n', ""
    )
    path.write_text(without_first, encoding="utf-8")
    result = vault.apply_requirements([path])
    assert (result.created, result.updated, result.unchanged, result.removed) == (0, 1, 1, 1)
    assert [field for field, _, _ in _stored(vault, "refund")] == ["refund_amount", "email"]


def test_a_missing_path_is_a_usage_error(vault: Vault, tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        vault.apply_requirements([tmp_path / "nowhere"])
