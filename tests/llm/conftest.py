"""The LLM adapter tests replay hand-written cassettes (tests/cassettes/llm), not the network."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes" / "llm"


@pytest.fixture(scope="module")
def vcr_cassette_dir() -> str:
    return str(CASSETTES)


@pytest.fixture
def vcr_config() -> dict[str, Any]:
    return {
        "record_mode": "none",
        "match_on": ["method", "uri"],
        "filter_headers": ["authorization", "api-key", "x-api-key"],
    }
