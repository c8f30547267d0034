"""The LLM adapter against hand-written cassettes (record mode none) and a silent local socket."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Iterator

import pytest
from pydantic import BaseModel

from ccv.config import Settings
from ccv.errors import BackendError, MissingExtraError, UsageError
from ccv.service.llm import LiteLLMModel, build_model, parse_answer

API_BASE = "https://llm.example.test/v1"
MESSAGES = [
    {"role": "system", "content": "Answer with JSON: {city, confidence}."},
    {"role": "user", "content": "Where does the customer live? 'I moved to Lisbon last year.'"},
]


class City(BaseModel):
    city: str
    confidence: float


@pytest.fixture
def model(monkeypatch: pytest.MonkeyPatch) -> LiteLLMModel:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    return LiteLLMModel(model="openai/gpt-4o-mini", api_base=API_BASE, timeout=5.0, retries=1)


@pytest.mark.vcr("good-answer.yaml")
def test_good_answer_is_validated_into_the_model(model: LiteLLMModel, vcr) -> None:
    answer = model.complete(MESSAGES, City)
    assert answer == City(city="Lisbon", confidence=0.92)
    assert vcr.play_count == 1


@pytest.mark.vcr("malformed-then-good.yaml")
def test_malformed_answer_is_retried_once_and_the_retry_is_used(model: LiteLLMModel, vcr) -> None:
    answer = model.complete(MESSAGES, City)
    assert answer.city == "Lisbon"
    assert vcr.play_count == 2


@pytest.mark.vcr("malformed-answer.yaml")
def test_answer_malformed_twice_is_a_backend_error(model: LiteLLMModel, vcr) -> None:
    with pytest.raises(BackendError) as raised:
        model.complete(MESSAGES, City)
    message = str(raised.value)
    assert "malformed output twice" in message
    assert "city: Field required" in message  # the second answer's problem is named
    assert raised.value.exit_code == 5
    assert vcr.play_count == 2


@pytest.mark.vcr("provider-500.yaml")
def test_provider_500_after_its_retry_is_one_sentence_backend_error(
    model: LiteLLMModel, vcr
) -> None:
    with pytest.raises(BackendError) as raised:
        model.complete(MESSAGES, City)
    message = str(raised.value)
    assert message.startswith("the LLM openai/gpt-4o-mini failed (HTTP 500)")
    assert "\n" not in message
    assert vcr.play_count == 2  # the first try and llm_retries=1


@pytest.mark.vcr("provider-500-then-good.yaml")
def test_provider_500_is_retried(model: LiteLLMModel, vcr) -> None:
    assert model.complete(MESSAGES, City).confidence == 0.92
    assert vcr.play_count == 2


@pytest.mark.vcr("provider-500.yaml")
def test_no_provider_retry_when_retries_is_zero(model: LiteLLMModel, vcr) -> None:
    model.retries = 0
    with pytest.raises(BackendError, match="HTTP 500"):
        model.complete(MESSAGES, City)
    assert vcr.play_count == 1


@pytest.mark.vcr("timeout.yaml")
def test_provider_timeout_status_is_a_timeout_error(model: LiteLLMModel, vcr) -> None:
    with pytest.raises(BackendError) as raised:
        model.complete(MESSAGES, City)
    assert str(raised.value) == "the LLM openai/gpt-4o-mini did not answer in time (timeout)"
    assert vcr.play_count == 2


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A server on 127.0.0.1 that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/v1"
    finally:
        server.close()


def test_a_silent_provider_times_out_with_the_configured_timeout(silent_server: str) -> None:
    model = LiteLLMModel(model="openai/local", api_base=silent_server, timeout=0.3, retries=0)
    started = time.monotonic()
    with pytest.raises(BackendError, match="did not answer in time"):
        model.complete(MESSAGES, City)
    assert time.monotonic() - started < 10


def test_settings_and_flags_choose_the_model() -> None:
    settings = Settings(
        llm_model="openai/from-settings",
        llm_api_base="http://127.0.0.1:1/v1",
        llm_timeout_seconds=7,
        llm_retries=3,
    )
    built = build_model(settings)
    assert isinstance(built, LiteLLMModel)
    assert (built.model, built.api_base, built.timeout, built.retries) == (
        "openai/from-settings",
        "http://127.0.0.1:1/v1",
        7,
        3,
    )
    flagged = build_model(settings, model="ollama/llama3", api_base="http://127.0.0.1:2")
    assert isinstance(flagged, LiteLLMModel)
    assert (flagged.name, flagged.api_base) == ("ollama/llama3", "http://127.0.0.1:2")
    with pytest.raises(UsageError, match="--model"):
        build_model(Settings())


def test_missing_litellm_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "litellm", None)
    model = LiteLLMModel(model="openai/gpt-4o-mini")
    with pytest.raises(MissingExtraError, match=r"ccv\[llm\]") as raised:
        model.complete(MESSAGES, City)
    assert raised.value.exit_code == 2


def test_parse_answer_accepts_a_fenced_json_block() -> None:
    text = '```json\n{"city": "Porto", "confidence": 1}\n```'
    assert parse_answer(text, City) == City(city="Porto", confidence=1.0)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("Lisbon", "not JSON"),
        ('{"city": "Porto"}', "confidence: Field required"),
        ('{"city": "Porto", "confidence": "high"}', "confidence"),
    ],
)
def test_parse_answer_says_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_answer(text, City)
