"""Gap fill from a transcript with a fake model (queued answers), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ccv.errors import BackendError, InvalidFilesError, NotFoundError, UsageError
from ccv.service.fill import Transcript, parse_transcript, read_transcript
from ccv.vault import Vault

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
TENANT = "northwind-bank"
SCENARIO = "refund-request"
CUSTOMER = "c-new"  # only the seed value: order_id, email and preferred_language are missing
TURNS = [
    {"role": "assistant", "content": "Hello! How can I help you today?"},
    {"role": "user", "content": "Hi, I want a refund for the order ORD-482913 please."},
    {"role": "assistant", "content": "Sure. Where can we send the confirmation?"},
    {"role": "user", "content": "You can reach me at ana.lima@example.com, thanks"},
]
CHAT = Transcript(session_id="sess-42", turns=parse_transcript(TURNS).turns)


# The customer holds one unrelated value (gaps judges a customer without values by the same
# rules, SPEC §2; the seed keeps `show` from answering "not found").
SEED = "account_tier"


def stored(vault: Vault) -> dict:
    """The customer's current fields other than the seed value."""
    try:
        fields = dict(vault.get_profile(TENANT, CUSTOMER).fields)
    except NotFoundError:
        return {}
    fields.pop(SEED, None)
    return fields


def value(field: str, val: object, turn: int, quote: str, confidence: float = 0.95) -> dict:
    return {"field": field, "value": val, "turn": turn, "quote": quote, "confidence": confidence}


@pytest.fixture
def vault(demo_vault: Vault) -> Vault:
    demo_vault.apply_requirements([FIXTURES / "demo" / "requirements"])
    demo_vault.save_field(TENANT, CUSTOMER, SEED, "basic")
    return demo_vault


def test_dry_run_proposes_supported_values_and_stores_nothing(vault: Vault, fake_model) -> None:
    model = fake_model(
        {
            "values": [
                value("order_id", "ORD-482913", 1, "the order ORD-482913"),
                value("email", "ana.lima@example.com", 3, "reach me at ana.lima@example.com"),
            ]
        }
    )
    result = vault.fill(TENANT, CUSTOMER, SCENARIO, CHAT, model=model)
    assert result.applied is False
    assert result.requested == ["order_id", "email", "preferred_language"]
    assert [(f.field, f.turn) for f in result.filled] == [("order_id", 1), ("email", 3)]
    assert result.filled[0].value == "ORD-482913"
    assert result.filled[1].value == "a***@example.com"  # PII masked in output
    assert all(f.id is None for f in result.filled)
    assert result.still_missing == ["preferred_language"]
    assert len(model.calls) == 1
    gaps = vault.gaps(TENANT, CUSTOMER, SCENARIO)
    assert [m.field for m in gaps.missing] == ["order_id", "email", "preferred_language"]


def test_apply_stores_values_with_lineage_to_the_session(vault: Vault, fake_model) -> None:
    model = fake_model(
        {
            "values": [
                value("order_id", "ORD-482913", 1, "ORD-482913", 0.97),
                value("email", "ana.lima@example.com", 3, "ana.lima@example.com", 0.6),
            ]
        }
    )
    result = vault.fill(TENANT, CUSTOMER, SCENARIO, CHAT, model=model, apply=True)
    assert result.applied is True
    profile = vault.get_profile(TENANT, CUSTOMER, reveal_pii=True)
    order = profile.fields["order_id"]
    assert order.value == "ORD-482913"
    assert order.id == result.filled[0].id
    assert order.source == "llm_extracted"
    assert order.source_item_type == "session"
    assert order.source_item_id == "sess-42"
    assert order.source_metadata == {
        "session_id": "sess-42",
        "turn": 1,
        "quote": "ORD-482913",
        "model": "fake/model",
    }
    assert order.confidence == 0.97
    assert order.requires_confirmation is False
    email = profile.fields["email"]
    assert email.value == "ana.lima@example.com"
    assert email.confidence == 0.6
    assert email.requires_confirmation is True  # below 0.8
    chain = vault.trace(TENANT, order.id).chain
    assert [(item.kind, item.id) for item in chain] == [("external", "sess-42")]
    gaps = vault.gaps(TENANT, CUSTOMER, SCENARIO)
    assert "order_id" in gaps.satisfied


def test_a_value_without_a_supporting_quote_is_not_invented(vault: Vault, fake_model) -> None:
    model = fake_model(
        {
            "values": [
                value("email", "ana@example.org", 3, "my email is ana@example.org"),
                value("preferred_language", "pt", 1, "Prefiro português"),
            ]
        }
    )
    result = vault.fill(TENANT, CUSTOMER, SCENARIO, CHAT, model=model, apply=True)
    assert result.filled == []
    assert {r.field: r.reason for r in result.rejected} == {
        "email": "no supporting quote in the transcript",
        "preferred_language": "no supporting quote in the transcript",
    }
    assert result.still_missing == ["order_id", "email", "preferred_language"]
    assert result.applied is False
    assert stored(vault) == {}


def test_the_quote_may_sit_in_another_turn_than_the_model_said(vault: Vault, fake_model) -> None:
    model = fake_model({"values": [value("order_id", "ORD-482913", 3, "order ORD-482913")]})
    result = vault.fill(TENANT, CUSTOMER, SCENARIO, CHAT, model=model)
    assert [(f.field, f.turn) for f in result.filled] == [("order_id", 1)]


def test_values_the_schema_rejects_or_nobody_asked_for_are_dropped(
    vault: Vault, fake_model
) -> None:
    model = fake_model(
        {
            "values": [
                value("order_id", "482913", 1, "ORD-482913"),  # regex ^ORD-[0-9]{6}$
                value("refund_amount", 50, 1, "refund"),  # not missing for this customer
                value("preferred_language", "de", 0, "Hello"),  # not an allowed value
            ]
        }
    )
    result = vault.fill(TENANT, CUSTOMER, SCENARIO, CHAT, model=model, apply=True)
    reasons = {r.field: r.reason for r in result.rejected}
    assert reasons["order_id"].startswith("invalid:")
    assert reasons["refund_amount"] == "not asked"
    assert reasons["preferred_language"].startswith("invalid:")
    assert result.filled == []
    assert stored(vault) == {}


def test_the_likeliest_of_two_values_for_one_field_wins(vault: Vault, fake_model) -> None:
    model = fake_model(
        {
            "values": [
                value("order_id", "ORD-482913", 1, "ORD-482913", 0.5),
                value("order_id", "ORD-482913", 1, "order ORD-482913", 0.9),
            ]
        }
    )
    result = vault.fill(TENANT, CUSTOMER, SCENARIO, CHAT, model=model)
    assert [(f.field, f.confidence) for f in result.filled] == [("order_id", 0.9)]
    assert [r.reason for r in result.rejected] == ["a likelier value"]


def test_an_llm_failure_stores_nothing(vault: Vault, fake_model) -> None:
    model = fake_model(BackendError("the LLM fake/model failed (HTTP 500): boom"))
    with pytest.raises(BackendError, match="HTTP 500"):
        vault.fill(TENANT, CUSTOMER, SCENARIO, CHAT, model=model, apply=True)
    assert stored(vault) == {}


def test_garbage_from_the_model_is_a_backend_error(vault: Vault, fake_model) -> None:
    model = fake_model("I think the order is ORD-482913")
    with pytest.raises(BackendError, match="malformed"):
        vault.fill(TENANT, CUSTOMER, SCENARIO, CHAT, model=model, apply=True)
    assert stored(vault) == {}


def test_a_stale_value_is_asked_for_again_and_replaced(vault: Vault, fake_model) -> None:
    """order_id is fresh for 30 days in the demo schema: one collected 40 days ago is missing as
    `stale`, so fill asks for it and stores the newer value over it."""
    old = datetime.now(UTC) - timedelta(days=40)
    vault.save_field(TENANT, CUSTOMER, "order_id", "ORD-000001", collected_at=old)
    before = vault.gaps(TENANT, CUSTOMER, SCENARIO).missing
    assert ("order_id", "stale") in [(m.field, m.reason) for m in before]
    model = fake_model({"values": [value("order_id", "ORD-482913", 1, "ORD-482913")]})
    result = vault.fill(TENANT, CUSTOMER, SCENARIO, CHAT, model=model, apply=True)
    assert "order_id" in result.requested
    assert [f.field for f in result.filled] == ["order_id"]
    assert vault.get_profile(TENANT, CUSTOMER).fields["order_id"].value == "ORD-482913"
    assert "order_id" in vault.gaps(TENANT, CUSTOMER, SCENARIO).satisfied
    history = vault.get_profile(TENANT, CUSTOMER, history=True).history or {}
    assert [(v.value, v.status) for v in history["order_id"]] == [
        ("ORD-482913", "active"),
        ("ORD-000001", "superseded"),
    ]


def test_nothing_missing_costs_no_llm_call(vault: Vault, fake_model) -> None:
    valid = {
        "order_id": "ORD-000001",
        "refund_amount": 20,
        "card_last4": "0042",
        "email": "x@example.com",
        "preferred_language": "en",
    }
    for _ in range(len(valid)):  # requirements gated by depends_on show up one after another
        missing = vault.gaps(TENANT, CUSTOMER, SCENARIO).missing
        for entry in missing:
            vault.save_field(TENANT, CUSTOMER, entry.field, valid[entry.field], verified=True)
    assert vault.gaps(TENANT, CUSTOMER, SCENARIO).missing == []
    model = fake_model()
    result = vault.fill(TENANT, CUSTOMER, SCENARIO, CHAT, model=model, apply=True)
    assert result.requested == [] and result.filled == [] and result.model is None
    assert model.calls == []


def test_the_one_prompt_carries_hints_examples_and_numbered_turns(vault: Vault, fake_model) -> None:
    model = fake_model({"values": []})
    vault.fill(TENANT, CUSTOMER, SCENARIO, CHAT, model=model)
    (messages,) = model.calls
    prompt = messages[-1]["content"]
    assert "Uppercase, format ORD-123456." in prompt  # order_id's extraction_hint
    assert "the order was ORD-482913" in prompt  # its extraction example
    assert '"allowed_values": ["en", "es", "pt", "fr"]' in prompt
    assert "[3] user: You can reach me at ana.lima@example.com, thanks" in prompt
    assert "refund_amount" not in prompt  # not missing: not asked
    assert '"quote"' in messages[0]["content"]  # the answer's JSON schema


def test_unknown_scenario_is_not_found(vault: Vault, fake_model) -> None:
    with pytest.raises(NotFoundError):
        vault.fill(TENANT, CUSTOMER, "no-such-scenario", CHAT, model=fake_model())


# --- transcripts (no database) -------------------------------------------------------------------


def test_a_transcript_without_session_id_gets_a_stable_hash(tmp_path: Path) -> None:
    path = tmp_path / "chat.json"
    path.write_text(json.dumps(TURNS), encoding="utf-8")
    first, second = read_transcript(path), read_transcript(path)
    assert first.session_id == second.session_id
    assert first.session_id.startswith("transcript-") and len(first.turns) == 4
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(json.dumps({"session_id": "s-1", "turns": TURNS}), encoding="utf-8")
    assert read_transcript(wrapped).session_id == "s-1"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[{"role": "user", "content": "hi"},\n  {"role": ', ":2:"),
        ('{"turns": [], "session_id": "s"}', "no turns"),
        ('[{"role": "user"}]', 'turn 0: "content" must be a string'),
        ('{"session": "s", "turns": []}', "unknown key 'session'"),
        ('"hello"', "JSON array"),
    ],
)
def test_a_malformed_transcript_is_an_invalid_file(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "chat.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InvalidFilesError) as raised:
        read_transcript(path)
    assert str(raised.value).startswith(str(path))
    assert message in str(raised.value)


def test_a_missing_transcript_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        read_transcript(tmp_path / "nope.json")


def test_revealing_filled_pii_is_audited_without_the_value(
    vault: Vault, fake_model, database_url: str
) -> None:
    from sqlalchemy import create_engine, text

    model = fake_model(
        {"values": [value("email", "ana.lima@example.com", 3, "ana.lima@example.com")]}
    )
    result = vault.fill(TENANT, CUSTOMER, SCENARIO, CHAT, model=model, reveal_pii=True)
    assert result.filled[0].value == "ana.lima@example.com"
    engine = create_engine(database_url)
    with engine.connect() as conn:
        events = conn.execute(
            text("SELECT event, details FROM audit_events WHERE tenant = :t AND customer = :c"),
            {"t": TENANT, "c": CUSTOMER},
        ).all()
    engine.dispose()
    assert [event for event, _ in events] == ["reveal_pii"]
    assert "ana.lima" not in str(events)
