"""`Vault.gaps`: a customer's unmet requirements of a scenario, with the reason for each and in
collection order, on both dialects."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from ccv.domain.enums import Fallback, Level, ValidationMode
from ccv.errors import NotFoundError, UsageError
from ccv.vault import Vault

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
DEMO_REQUIREMENTS = FIXTURES / "demo" / "requirements"
DEMO = "northwind-bank"
TENANT = "acme"
NOW = datetime.now(UTC)
AN_HOUR_AGO = NOW - timedelta(hours=1)
A_DAY_AGO = NOW - timedelta(days=1)

SHOP_BOT = """\
tenant: acme
agent: shop-bot
fields:
  - name: email
    value_type: email
    required_verification: true
    collection_prompt: "What is your email?"
  - name: order_id
    value_type: string
    validation_regex: "^ORD-[0-9]{6}$"
    collection_prompt: "What is the order reference?"
    freshness_seconds: 2592000
  - name: refund_amount
    value_type: number
    collection_prompt: "How much should we refund?"
  - name: date_of_birth
    value_type: date
    collection_prompt: "What is your date of birth?"
  - name: country
    value_type: string
    collection_prompt: "Which country do you live in?"
  - name: loyalty_tier
    value_type: enum
    allowed_values: [gold, silver]
    collection_prompt: "Which loyalty tier are you on?"
  - name: nickname
    value_type: string
"""
# Another agent of the tenant: the prompt of `nickname` comes from here; its `email` prompt
# and lack of verification do not override shop-bot's own.
HELP_BOT = """\
tenant: acme
agent: help-bot
fields:
  - name: email
    value_type: email
    collection_prompt: "Email, please?"
  - name: nickname
    value_type: string
    collection_prompt: "What should we call you?"
"""
REFUND = """\
tenant: acme
agent: shop-bot
scenario: refund
requires:
  - field: order_id
    collection_order: 1
  - field: refund_amount
    collection_order: 2
    depends_on: [order_id]
  - field: email
    collection_order: 3
  - field: date_of_birth
    collection_order: 4
    when: "refund_amount > 500"
    depends_on: [refund_amount]
  - field: loyalty_tier
    level: soft
    fallback: skip
    when: "country == 'DE'"
  - field: nickname
    level: soft
    fallback: skip
"""
# File order deliberately unlike collection order.
ORDERING = """\
tenant: acme
agent: shop-bot
scenario: ordering
requires:
  - field: nickname
    level: soft
    fallback: skip
  - field: order_id
    collection_order: 5
    depends_on: [email]
  - field: refund_amount
    collection_order: 1
  - field: email
    collection_order: 5
  - field: country
    collection_order: 5
"""


@pytest.fixture
def shop(vault: Vault, tmp_path: Path) -> Vault:
    """acme's two agents and the `refund` and `ordering` scenarios applied."""
    files = []
    for name, text in (("shop-bot.yaml", SHOP_BOT), ("help-bot.yaml", HELP_BOT)):
        (tmp_path / name).write_text(text, encoding="utf-8")
        files.append(tmp_path / name)
    vault.apply_schema(files)
    requirements = tmp_path / "requirements"
    requirements.mkdir()
    (requirements / "refund.yaml").write_text(REFUND, encoding="utf-8")
    (requirements / "ordering.yaml").write_text(ORDERING, encoding="utf-8")
    result = vault.apply_requirements([requirements])
    assert result.created == 11, result
    return vault


def save(vault: Vault, customer: str, name: str, value: Any, **options: Any) -> None:
    options.setdefault("collected_at", A_DAY_AGO)
    vault.save_field(TENANT, customer, name, value, **options)


def reasons(vault: Vault, customer: str, scenario: str = "refund") -> list[tuple[str, str]]:
    return [(m.field, m.reason) for m in vault.gaps(TENANT, customer, scenario).missing]


def complete(vault: Vault, customer: str, *, amount: float = 100, country: str = "FR") -> None:
    """Everything `refund` can need, valid and verified."""
    save(vault, customer, "order_id", "ORD-123456")
    save(vault, customer, "refund_amount", amount)
    save(vault, customer, "email", "ana@example.com", verified=True)
    save(vault, customer, "country", country)
    save(vault, customer, "nickname", "Ana")


def test_a_customer_with_nothing_stored_is_judged_by_the_rules_of_any_customer(
    shop: Vault,
) -> None:
    # SPEC §2: refund_amount waits on order_id and date_of_birth on refund_amount, so neither
    # applies yet; loyalty_tier's condition on the absent country cannot be decided.
    gaps = shop.gaps(TENANT, "c-nobody", "refund")
    assert gaps.scenario == "refund"
    assert gaps.customer == "c-nobody"
    assert gaps.agent == "shop-bot"
    assert [(m.field, m.reason) for m in gaps.missing] == [
        ("order_id", "absent"),
        ("email", "absent"),
        ("loyalty_tier", "condition_unknown"),
        ("nickname", "absent"),
    ]
    assert gaps.satisfied == []


def test_nothing_stored_and_only_unrelated_values_give_the_same_gaps(shop: Vault) -> None:
    save(shop, "c-other", "date_of_birth", "1990-01-01")  # not asked for by `ordering`
    nobody = shop.gaps(TENANT, "c-nobody", "ordering")
    other = shop.gaps(TENANT, "c-other", "ordering")
    assert nobody.missing == other.missing
    assert nobody.satisfied == other.satisfied == []


def test_the_demo_scenario_for_an_unknown_customer_asks_only_what_applies(
    demo_vault: Vault,
) -> None:
    demo_vault.apply_requirements([DEMO_REQUIREMENTS])
    gaps = demo_vault.gaps(DEMO, "c-9999", "refund-request")
    document = yaml.safe_load((DEMO_REQUIREMENTS / "refund-request.yaml").read_text())
    independent = [r["field"] for r in document["requires"] if not r.get("depends_on")]
    assert {m.reason for m in gaps.missing} == {"absent"}
    assert sorted(m.field for m in gaps.missing) == sorted(independent)
    assert gaps.satisfied == []


def test_a_value_older_than_its_freshness_is_stale_yet_still_shown(shop: Vault) -> None:
    save(shop, "c-old", "order_id", "ORD-123456", collected_at=NOW - timedelta(days=31))
    save(shop, "c-old", "refund_amount", 900)
    assert reasons(shop, "c-old")[:3] == [
        ("order_id", "stale"),
        ("email", "absent"),
        ("date_of_birth", "absent"),  # the stale order still counts for refund_amount
    ]
    assert "refund_amount" in shop.gaps(TENANT, "c-old", "refund").satisfied
    assert shop.get_profile(TENANT, "c-old").fields["order_id"].value == "ORD-123456"
    # Judged a day after collection it was fresh; a new value cures it.
    a_month_ago = shop.gaps(TENANT, "c-old", "refund", now=NOW - timedelta(days=30))
    assert "order_id" in a_month_ago.satisfied
    save(shop, "c-old", "order_id", "ORD-654321")
    assert "order_id" in shop.gaps(TENANT, "c-old", "refund").satisfied


def test_a_value_without_freshness_never_goes_stale(shop: Vault) -> None:
    save(shop, "c-old", "refund_amount", 90, collected_at=NOW - timedelta(days=3650))
    save(shop, "c-old", "order_id", "ORD-123456")
    assert "refund_amount" in shop.gaps(TENANT, "c-old", "refund").satisfied


def test_missing_entries_carry_level_fallback_prompt_and_order(shop: Vault) -> None:
    missing = {m.field: m for m in shop.gaps(TENANT, "c-nobody", "refund").missing}
    email = missing["email"]
    assert (email.level, email.fallback) == (Level.HARD, Fallback.ASK)
    assert email.collection_order == 3
    assert email.collection_prompt == "What is your email?"  # the scenario agent's, not help-bot's
    nickname = missing["nickname"]
    assert (nickname.level, nickname.fallback) == (Level.SOFT, Fallback.SKIP)
    assert nickname.collection_order is None
    assert nickname.collection_prompt == "What should we call you?"  # shop-bot has none


def test_a_complete_customer_has_nothing_missing(shop: Vault) -> None:
    complete(shop, "c-done")
    gaps = shop.gaps(TENANT, "c-done", "refund")
    assert gaps.missing == []
    # date_of_birth (amount <= 500) and loyalty_tier (not DE) do not apply: in neither list.
    assert gaps.satisfied == ["order_id", "refund_amount", "email", "nickname"]


def test_a_requirement_whose_condition_is_false_is_in_neither_list(shop: Vault) -> None:
    complete(shop, "c-small", amount=100, country="FR")
    gaps = shop.gaps(TENANT, "c-small", "refund")
    listed = {m.field for m in gaps.missing} | set(gaps.satisfied)
    assert "date_of_birth" not in listed
    assert "loyalty_tier" not in listed


def test_a_condition_that_holds_makes_the_requirement_apply(shop: Vault) -> None:
    complete(shop, "c-big", amount=900, country="DE")
    assert reasons(shop, "c-big") == [
        ("date_of_birth", "absent"),
        ("loyalty_tier", "absent"),
    ]


def test_a_condition_on_a_missing_value_is_condition_unknown(shop: Vault) -> None:
    save(shop, "c-nocountry", "nickname", "Bo")
    assert ("loyalty_tier", "condition_unknown") in reasons(shop, "c-nocountry")


def test_a_value_already_present_is_satisfied_even_when_its_condition_is_unknown(
    shop: Vault,
) -> None:
    save(shop, "c-gold", "loyalty_tier", "gold")
    gaps = shop.gaps(TENANT, "c-gold", "refund")
    assert "loyalty_tier" in gaps.satisfied
    assert "loyalty_tier" not in {m.field for m in gaps.missing}


def test_a_requirement_waiting_on_its_dependencies_does_not_apply_yet(shop: Vault) -> None:
    """Without order_id, refund_amount and date_of_birth (which waits on refund_amount) are in
    neither list, and date_of_birth's condition on the absent amount is not reported."""
    save(shop, "c-some", "nickname", "Ana")  # not blank: dependencies are judged
    gaps = shop.gaps(TENANT, "c-some", "refund")
    listed = {m.field for m in gaps.missing} | set(gaps.satisfied)
    assert "refund_amount" not in listed
    assert "date_of_birth" not in listed
    assert ("order_id", "absent") in [(m.field, m.reason) for m in gaps.missing]


def test_a_dependency_counts_as_present_even_if_it_does_not_apply_itself(shop: Vault) -> None:
    """refund_amount is stored but waits on order_id: it is in neither list, yet it is present,
    so date_of_birth (which depends only on it) applies."""
    save(shop, "c-wait", "refund_amount", 900)
    gaps = shop.gaps(TENANT, "c-wait", "refund")
    assert "refund_amount" not in {m.field for m in gaps.missing} | set(gaps.satisfied)
    assert [(m.field, m.reason) for m in gaps.missing][:3] == [
        ("order_id", "absent"),
        ("email", "absent"),
        ("date_of_birth", "absent"),
    ]


def test_an_invalid_value_is_missing_as_invalid_and_blocks_its_dependents(shop: Vault) -> None:
    save(shop, "c-bad", "order_id", "order 42", validation_mode=ValidationMode.DISABLED)
    save(shop, "c-bad", "refund_amount", 900)
    missing = reasons(shop, "c-bad")
    assert missing[0] == ("order_id", "invalid")
    assert "refund_amount" not in {field for field, _ in missing}
    assert "refund_amount" not in shop.gaps(TENANT, "c-bad", "refund").satisfied


def test_an_unverified_value_is_missing_when_the_definition_requires_verification(
    shop: Vault,
) -> None:
    save(shop, "c-unverified", "email", "ana@example.com", verified=False)
    assert ("email", "unverified") in reasons(shop, "c-unverified")
    save(shop, "c-verified", "email", "ana@example.com", verified=True)
    assert "email" in shop.gaps(TENANT, "c-verified", "refund").satisfied


def test_a_value_past_expires_at_is_missing_as_expired_before_any_sweep(shop: Vault) -> None:
    save(
        shop,
        "c-stale",
        "email",
        "ana@example.com",
        verified=True,
        expires_at=AN_HOUR_AGO,
    )
    assert ("email", "expired") in reasons(shop, "c-stale")


def test_a_value_the_sweep_marked_expired_is_missing_as_expired(shop: Vault) -> None:
    save(shop, "c-swept", "email", "ana@example.com", verified=True, expires_at=AN_HOUR_AGO)
    swept = shop.expire([TENANT], apply=True)
    assert swept.total == 1
    assert ("email", "expired") in reasons(shop, "c-swept")


def test_a_new_value_after_an_expired_one_satisfies_the_requirement(shop: Vault) -> None:
    save(shop, "c-renewed", "email", "old@example.com", verified=True, expires_at=AN_HOUR_AGO)
    shop.expire([TENANT], apply=True)
    save(shop, "c-renewed", "email", "new@example.com", verified=True, collected_at=NOW)
    gaps = shop.gaps(TENANT, "c-renewed", "refund")
    assert "email" in gaps.satisfied
    assert "email" not in {m.field for m in gaps.missing}


def test_an_orphaned_value_does_not_count_and_is_absent(shop: Vault) -> None:
    save(
        shop,
        "c-orphan",
        "email",
        "ana@example.com",
        verified=True,
        source_item_id=str(uuid.uuid4()),  # a vault item that does not exist
        source_item_type="profile_field",
    )
    assert ("email", "absent") in reasons(shop, "c-orphan")


def test_missing_fields_come_in_collection_order_then_dependency_order(shop: Vault) -> None:
    """collection_order first (none last); among equal orders a field comes after the fields
    it depends on, then file order decides."""
    save(shop, "c-order", "email", "ana@example.com", verified=False)
    assert reasons(shop, "c-order", "ordering") == [
        ("refund_amount", "absent"),  # order 1
        ("email", "unverified"),  # order 5, no dependencies, earlier in the file than country
        ("country", "absent"),  # order 5, no dependencies
        ("order_id", "absent"),  # order 5, depends on email: first in the file, but after it
        ("nickname", "absent"),  # no collection_order: last
    ]


def test_an_unknown_scenario_is_not_found(shop: Vault) -> None:
    with pytest.raises(NotFoundError, match="scenario nope"):
        shop.gaps(TENANT, "c-nobody", "nope")


def test_scenarios_are_scoped_to_their_tenant(shop: Vault) -> None:
    with pytest.raises(NotFoundError):
        shop.gaps("other-tenant", "c-nobody", "refund")


def test_a_scenario_id_that_is_not_a_slug_is_a_usage_error(shop: Vault) -> None:
    with pytest.raises(UsageError):
        shop.gaps(TENANT, "c-nobody", "Not A Slug")


def test_gaps_follow_a_reapplied_scenario_and_schema(shop: Vault, tmp_path: Path) -> None:
    """Nothing stale is served after `requirements apply` or `schema apply` changes things."""
    assert ("nickname", "absent") in reasons(shop, "c-nobody")
    trimmed = tmp_path / "requirements" / "refund.yaml"
    trimmed.write_text(REFUND.replace("  - field: nickname\n", "  - field: country\n"))
    shop.apply_requirements([trimmed])
    assert ("country", "absent") in reasons(shop, "c-nobody")
    assert "nickname" not in {field for field, _ in reasons(shop, "c-nobody")}
    (tmp_path / "shop-bot.yaml").write_text(
        SHOP_BOT.replace("Which country do you live in?", "Where do you live?")
    )
    shop.apply_schema([tmp_path / "shop-bot.yaml", tmp_path / "help-bot.yaml"])
    missing = {m.field: m for m in shop.gaps(TENANT, "c-nobody", "refund").missing}
    assert missing["country"].collection_prompt == "Where do you live?"


def test_demo_customer_with_an_expired_risk_score(demo_vault: Vault) -> None:
    """c-1008 asks for 749.0; its risk_score expired on 2026-02-01 (fixtures/README.md).
    Judged the day after its order (freshness 30 days), only the risk score is missing."""
    demo_vault.apply_requirements([DEMO_REQUIREMENTS])
    day_after = datetime(2026, 9, 22, tzinfo=UTC)
    gaps = demo_vault.gaps(DEMO, "c-1008", "refund-request", now=day_after)
    assert [(m.field, m.reason) for m in gaps.missing] == [("risk_score", "expired")]
    assert "date_of_birth" in gaps.satisfied  # the refund is over 500: the condition holds
    later = demo_vault.gaps(DEMO, "c-1008", "refund-request", now=day_after + timedelta(days=31))
    assert [(m.field, m.reason) for m in later.missing] == [
        ("order_id", "stale"),
        ("refund_amount", "stale"),
        ("risk_score", "expired"),
    ]


def test_demo_prompts_come_from_the_scenario_agent(demo_vault: Vault) -> None:
    """legal_name is defined by both demo agents, with different prompts."""
    demo_vault.apply_requirements([DEMO_REQUIREMENTS])
    demo_vault.save_field(DEMO, "c-new", "document_type", "passport")
    kyc = {m.field: m for m in demo_vault.gaps(DEMO, "c-new", "identity-verification").missing}
    assert kyc["legal_name"].collection_prompt == (
        "Please type your full name exactly as it is printed on your document."
    )
    support = {m.field: m for m in demo_vault.gaps(DEMO, "c-new", "update-contact-details").missing}
    assert support["legal_name"].collection_prompt == (
        "What is your full legal name, exactly as it appears on your ID?"
    )


def test_a_field_added_to_a_cached_scenario_is_read_for_the_customer(
    shop: Vault, tmp_path: Path
) -> None:
    """The cached plan narrows the read to its fields; a newly required one is read too."""
    save(shop, "c-tier", "loyalty_tier", "gold")
    assert "loyalty_tier" not in shop.gaps(TENANT, "c-tier", "ordering").satisfied
    path = tmp_path / "requirements" / "ordering.yaml"
    path.write_text(ORDERING + "  - field: loyalty_tier\n", encoding="utf-8")
    shop.apply_requirements([path])
    assert shop.gaps(TENANT, "c-tier", "ordering").satisfied == ["loyalty_tier"]
