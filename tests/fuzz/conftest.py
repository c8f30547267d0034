"""Fixtures of the input fuzz tests: the same isolation as the CLI tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ccv.toml, CCV_* variable or terminal width from the caller's environment."""
    for key in list(os.environ):
        if key.startswith("CCV_") and not key.startswith("CCV_TEST_"):
            monkeypatch.delenv(key)
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.chdir(tmp_path)
