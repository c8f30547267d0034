"""Fixtures of the end-to-end CLI tests: isolated environment, databases, the loaded demo."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from .fake_provider import FakeProvider
from .helpers import Ccv, empty_pg_database, load_demo


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ccv.toml, CCV_* variable or terminal width from the caller's environment."""
    for key in list(os.environ):
        if key.startswith("CCV_") and not key.startswith("CCV_TEST_"):
            monkeypatch.delenv(key)
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def ccv(database_url: str) -> Ccv:
    """`ccv` on an empty, migrated database of each dialect (see tests/conftest.py)."""
    return Ccv(database_url)


@pytest.fixture
def fresh_pg_url() -> Iterator[str]:
    with empty_pg_database() as url:
        yield url


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def demo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ccv]:
    """`ccv` on a database holding the demo schemas and profiles; tests must not change it."""
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'ccv.db'}"
        else:
            url = stack.enter_context(empty_pg_database())
        ccv = Ccv(url)
        with pytest.MonkeyPatch.context() as patch:
            for key in list(os.environ):
                if key.startswith("CCV_") and not key.startswith("CCV_TEST_"):
                    patch.delenv(key)
            patch.chdir(tmp_path_factory.mktemp("demo-cwd"))
            if request.param == "postgresql":
                ccv.json("db", "upgrade")
            load_demo(ccv)
        yield ccv


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    """A fake OpenAI-compatible provider on 127.0.0.1 (`provider.api_base` ends in /v1)."""
    fake = FakeProvider()
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()
