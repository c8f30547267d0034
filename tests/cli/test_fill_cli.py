"""`ccv profile fill` end to end against a local fake OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .fake_provider import FakeProvider
from .helpers import DEMO, TENANT, Ccv, assert_exit, error_lines, load_demo

CUSTOMER = "c-new"
TURNS = [
    {"role": "assistant", "content": "Hello! How can I help?"},
    {"role": "user", "content": "Refund for ORD-482913 please. I'm at ana.lima@example.com"},
]


@pytest.fixture
def demo_ccv(ccv: Ccv, monkeypatch: pytest.MonkeyPatch) -> Ccv:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    load_demo(ccv)
    ccv.json("requirements", "apply", DEMO / "requirements")
    # One unrelated value, so gaps judges dependencies (a customer with nothing stored would
    # have every requirement missing, SPEC §2).
    seed = Path("seed.jsonl")
    seed.write_text(
        json.dumps(
            {"tenant": TENANT, "customer": CUSTOMER, "name": "account_tier", "value": "basic"}
        )
        + "\n",
        encoding="utf-8",
    )
    ccv.json("profile", "import", str(seed))
    return ccv


@pytest.fixture
def transcript(tmp_path: Path) -> Path:
    path = tmp_path / "chat.json"
    path.write_text(json.dumps({"session_id": "sess-7", "turns": TURNS}), encoding="utf-8")
    return path


def fill(ccv: Ccv, provider: FakeProvider, transcript: Path, *extra: str) -> list[str]:
    return [
        "profile",
        "fill",
        CUSTOMER,
        "--tenant",
        TENANT,
        "--scenario",
        "refund-request",
        "--transcript",
        str(transcript),
        "--model",
        "openai/local-test",
        "--api-base",
        provider.api_base,
        *extra,
    ]


GOOD = json.dumps(
    {
        "values": [
            {
                "field": "order_id",
                "value": "ORD-482913",
                "turn": 1,
                "quote": "Refund for ORD-482913",
                "confidence": 0.9,
            },
            {
                "field": "email",
                "value": "ana.lima@example.com",
                "turn": 1,
                "quote": "ana.lima@example.com",
                "confidence": 0.7,
            },
        ]
    }
)


def test_fill_applies_values_from_a_local_openai_compatible_server(
    demo_ccv: Ccv, provider: FakeProvider, transcript: Path
) -> None:
    provider.answer(GOOD)
    result = demo_ccv.json(*fill(demo_ccv, provider, transcript, "--apply", "--reveal-pii"))
    assert result["applied"] is True
    assert [(f["field"], f["value"], f["requires_confirmation"]) for f in result["filled"]] == [
        ("order_id", "ORD-482913", False),
        ("email", "ana.lima@example.com", True),
    ]
    assert result["still_missing"] == ["preferred_language"]
    (request,) = provider.requests  # one LLM call per fill
    assert request["path"] == "/v1/chat/completions"
    assert request["body"]["model"] == "local-test"
    assert "ORD-482913" in request["body"]["messages"][-1]["content"]
    shown = demo_ccv.json("profile", "show", CUSTOMER, "--tenant", TENANT)
    order = shown["fields"]["order_id"]
    assert (order["source"], order["source_item_type"], order["source_item_id"]) == (
        "llm_extracted",
        "session",
        "sess-7",
    )
    assert order["source_metadata"]["quote"] == "Refund for ORD-482913"


def test_fill_is_a_dry_run_by_default(
    demo_ccv: Ccv, provider: FakeProvider, transcript: Path
) -> None:
    provider.answer(GOOD)
    result = demo_ccv(*fill(demo_ccv, provider, transcript))
    assert_exit(result, 0)
    assert "would store" in result.stdout and "--apply" in result.stdout
    assert "a***@example.com" in result.stdout  # PII masked
    gaps = demo_ccv.json(
        "profile", "gaps", CUSTOMER, "--tenant", TENANT, "--scenario", "refund-request"
    )
    assert [m["field"] for m in gaps["missing"]] == ["order_id", "email", "preferred_language"]


def _nothing_stored(ccv: Ccv) -> None:
    shown = ccv.json("profile", "show", CUSTOMER, "--tenant", TENANT)
    assert list(shown["fields"]) == ["account_tier"]  # only the seed: nothing was stored


def test_garbage_twice_exits_5_and_writes_nothing(
    demo_ccv: Ccv, provider: FakeProvider, transcript: Path
) -> None:
    provider.answer("Sure! The order is ORD-482913.")
    provider.answer('{"values": "none"}')
    result = demo_ccv.fails(*fill(demo_ccv, provider, transcript, "--apply"), code=5)
    assert "malformed output twice" in error_lines(result)[0]
    assert len(provider.requests) == 2  # the answer and its one retry
    _nothing_stored(demo_ccv)


def test_provider_500_exits_5_and_writes_nothing(
    demo_ccv: Ccv, provider: FakeProvider, transcript: Path
) -> None:
    error = {"error": {"message": "The server had an error", "type": "server_error"}}
    provider.replies += [(500, error), (500, error)]
    result = demo_ccv.fails(*fill(demo_ccv, provider, transcript, "--apply"), code=5)
    (line,) = error_lines(result)
    assert "the LLM openai/local-test failed (HTTP 500)" in line
    assert len(provider.requests) == 2  # CCV_LLM_RETRIES defaults to 1
    _nothing_stored(demo_ccv)


def test_a_malformed_transcript_exits_1_naming_the_file(
    demo_ccv: Ccv, provider: FakeProvider, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('[{"role": "user", "content": "hi"}\n', encoding="utf-8")
    result = demo_ccv.fails(*fill(demo_ccv, provider, bad), code=1)
    assert f"{bad}:2:1: malformed JSON" in result.stderr
    assert provider.requests == []


def test_without_a_model_fill_is_a_usage_error(demo_ccv: Ccv, transcript: Path) -> None:
    result = demo_ccv.fails(
        "profile",
        "fill",
        CUSTOMER,
        "--tenant",
        TENANT,
        "--scenario",
        "refund-request",
        "--transcript",
        str(transcript),
        code=2,
    )
    assert "--model" in error_lines(result)[0]
