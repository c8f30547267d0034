"""`ccv requirements extract` end to end against a local fake OpenAI-compatible server."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from .fake_provider import FakeProvider
from .helpers import DEMO, assert_exit, error_lines, run

ANSWER = json.dumps(
    {
        "requirements": [
            {
                "field": "phone",
                "level": "soft",
                "fallback": "ask",
                "confidence": 0.7,
                "quote": "with a contact address",
            },
            {"field": "refund_reason", "confidence": 0.9, "quote": "asks for a refund"},
        ],
        "definitions": [
            {"name": "refund_reason", "value_type": "string", "is_pii": False},
        ],
    }
)


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    shutil.copytree(DEMO / "schema", tmp_path / "schema")
    (tmp_path / "requirements").mkdir()
    shutil.copy(DEMO / "requirements" / "refund-request.yaml", tmp_path / "requirements")
    return tmp_path


def extract(tree: Path, provider: FakeProvider, *extra: str):
    return run(
        "requirements",
        "extract",
        tree / "requirements",
        "--schema",
        tree / "schema",
        "--model",
        "openai/local-test",
        "--api-base",
        provider.api_base,
        *extra,
    )


def test_extract_shows_a_diff_then_writes_it(tree: Path, provider: FakeProvider) -> None:
    provider.answer(ANSWER)
    original = (tree / "requirements" / "refund-request.yaml").read_text(encoding="utf-8")
    shown = extract(tree, provider, "--json")
    assert_exit(shown, 0)
    (file,) = json.loads(shown.stdout)["files"]
    assert "+  - field: phone" in file["diff"]
    assert [d["name"] for d in file["definitions"]] == ["refund_reason"]
    assert file["written"] is False and file["cached"] is False
    assert (tree / "requirements" / "refund-request.yaml").read_text(encoding="utf-8") == original
    written = extract(tree, provider, "--write")  # cached: no second request
    assert_exit(written, 0)
    assert len(provider.requests) == 1
    assert "(cached)" in written.stdout
    text = (tree / "requirements" / "refund-request.yaml").read_text(encoding="utf-8")
    assert text.startswith(original)
    assert "  - field: phone\n    level: soft\n    fallback: ask\n" in text
    assert "needs_human_review: true" in text
    assert "refund_reason" not in text
    validated = run("requirements", "validate", tree, "--json")
    assert_exit(validated, 0)


def test_a_provider_500_exits_5_and_writes_nothing(tree: Path, provider: FakeProvider) -> None:
    error = {"error": {"message": "overloaded", "type": "server_error"}}
    provider.replies += [(500, error), (500, error)]
    original = (tree / "requirements" / "refund-request.yaml").read_text(encoding="utf-8")
    result = extract(tree, provider, "--write", "--json")
    assert_exit(result, 5)
    assert result.stdout == ""
    assert "HTTP 500" in error_lines(result)[0]
    assert (tree / "requirements" / "refund-request.yaml").read_text(encoding="utf-8") == original
