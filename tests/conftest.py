"""Shared fixtures: a real SQLite file and a real PostgreSQL database of the run's own.

Under CI=true a missing PostgreSQL fails the run; on a developer machine those tests skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("DO_NOT_TRACK", "1")

from ccv.config import Settings  # noqa: E402
from ccv.service import importing  # noqa: E402
from ccv.store import items  # noqa: E402
from ccv.store.migrate import downgrade, upgrade  # noqa: E402
from ccv.vault import Vault  # noqa: E402

PG_ADMIN_URL = os.environ.get(
    "CCV_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TABLES = (
    "sweep_claims",
    "identities",
    "cache_outbox",
    "cache_keys",
    "audit_events",
    "scenario_requirements",
    "scenarios",
    "field_definitions",
    "assets",
    "fields",
    "profiles",
)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required under CI=true: {reason}")
    pytest.skip(f"PostgreSQL not available: {reason}")


@pytest.fixture(scope="session")
def pg_url(worker_id: str) -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (and xdist worker), dropped at the end."""
    name = f"ccv_test_{os.getpid()}_{worker_id}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any failure means "no server"
        admin.dispose()
        _unavailable(str(exc).splitlines()[0])
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def worker_id(request: pytest.FixtureRequest) -> str:
    return getattr(request.config, "workerinput", {}).get("workerid", "main")


@pytest.fixture(scope="session")
def pg_migrated(pg_url: str) -> str:
    engine = create_engine(pg_url)
    upgrade(engine, "head")
    engine.dispose()
    return pg_url


def _truncate(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE " + ", ".join(TABLES)))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A migrated, empty database of each dialect.

    A module can add "postgresql-bulk" (indirect parametrisation): PostgreSQL with the bulk
    thresholds at one record, so every import takes the streaming COPY path of large files.
    """
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ccv.db'}"
    url: str = request.getfixturevalue("pg_migrated")
    _truncate(url)
    if request.param == "postgresql-bulk":
        monkeypatch.setattr(importing, "STREAM_THRESHOLD", 1)
        monkeypatch.setattr(items, "COPY_THRESHOLD", 1)
    return url


@pytest.fixture
def vault(database_url: str) -> Iterator[Vault]:
    with Vault(Settings(database_url=database_url)) as opened:
        yield opened


@pytest.fixture
def demo_vault(vault: Vault) -> Vault:
    """The vault with the demo schema and profiles of fixtures/demo imported."""
    vault.apply_schema(sorted((FIXTURES / "demo" / "schema").glob("*.yaml")))
    result = vault.import_files([FIXTURES / "demo" / "profiles.jsonl"])
    assert result.rejected == 0, result.errors
    return vault


__all__ = ["FIXTURES", "downgrade", "upgrade"]


# --- Redis -------------------------------------------------------------------------------------
# The real Redis on 127.0.0.1:6379, database 15. Each test gets a key prefix of its own and its
# keys are deleted afterwards: a fresh, empty cache per test, without a FLUSHDB that would wipe
# the keys of a test running at the same time in another xdist worker.

REDIS_TEST_URL = os.environ.get("CCV_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


class RedisTarget:
    """The test's Redis: its URL, its own cache prefix, and a plain client for inspection."""

    def __init__(self, url: str, prefix: str, client) -> None:  # client: redis.Redis
        self.url = url
        self.prefix = prefix
        self.client = client

    def settings(self, database_url: str, **overrides: object) -> Settings:
        # Generous timeouts: a loaded CI machine must not turn a slow reply into a test failure
        # (the fault tests set short ones where a silent server is the point).
        values: dict[str, object] = {
            "redis_retry_seconds": 0.0,
            "redis_timeout_seconds": 2.0,
            **overrides,
        }
        return Settings(
            database_url=database_url, redis_url=self.url, cache_prefix=self.prefix, **values
        )

    def stored_keys(self) -> list[str]:
        return sorted(
            key.decode() for key in self.client.scan_iter(match=f"{self.prefix}:*", count=1000)
        )

    def cleanup(self) -> None:
        for key in self.client.scan_iter(match=f"{self.prefix}:*", count=1000):
            self.client.unlink(key)


def _redis_unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"Redis is required under CI=true: {reason}")
    pytest.skip(f"Redis not available: {reason}")


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real three-node Redis Cluster of this test process (tests/redis_cluster.py): its URL."""
    import shutil

    from redis_cluster import RedisCluster3

    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        _redis_unavailable("redis-server and redis-cli are not on PATH")
    cluster = RedisCluster3(tmp_path_factory.mktemp("redis-cluster"))
    try:
        cluster.start()
        yield cluster.url
    finally:
        cluster.stop()


@pytest.fixture(params=["redis", pytest.param("cluster", marks=pytest.mark.redis_cluster)])
def redis_target(request: pytest.FixtureRequest) -> Iterator[RedisTarget]:
    """An empty cache namespace on the real Redis, and again on a real Redis Cluster (skips
    without one, fails under CI=true)."""
    import redis

    client: Any
    if request.param == "cluster":
        from redis.cluster import RedisCluster

        url = request.getfixturevalue("redis_cluster")
        client = RedisCluster.from_url(url, socket_connect_timeout=1, socket_timeout=5)
    else:
        url = REDIS_TEST_URL
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        _redis_unavailable(str(exc).splitlines()[0])
    target = RedisTarget(url, f"ccvtest-{uuid.uuid4().hex[:12]}", client)
    try:
        yield target
    finally:
        target.cleanup()
        client.close()


# --- LLM ---------------------------------------------------------------------------------------
# Services above the LLM adapter are tested with this fake (STYLE.md): it answers from a queue,
# through the adapter's own parsing, and remembers what it was asked.


class FakeModel:
    """A `StructuredModel` answering queued answers in order: a dict or BaseModel (as JSON), a
    str (raw text, parsed as the adapter parses it), or an exception to raise."""

    def __init__(self, *answers: object, name: str = "fake/model") -> None:
        self.answers = list(answers)
        self.calls: list[list[dict[str, str]]] = []
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def complete(self, messages, output):
        import json

        from pydantic import BaseModel

        from ccv.errors import BackendError
        from ccv.service.llm import parse_answer

        self.calls.append([dict(m) for m in messages])
        if not self.answers:
            raise AssertionError("the fake model was called more often than answers were queued")
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, BaseModel):
            answer = answer.model_dump(mode="json")
        text = answer if isinstance(answer, str) else json.dumps(answer)
        try:
            return parse_answer(text, output)
        except ValueError as exc:
            raise BackendError(f"the LLM {self.name} answered malformed output: {exc}") from None


@pytest.fixture
def fake_model():
    """FakeModel(*answers), the class itself."""
    return FakeModel
