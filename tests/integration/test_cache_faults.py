"""The cache under Redis faults, on both dialects. Each test runs its own `redis-server` on a free
port, with an append-only file so that a killed and restarted server comes back *with* the
entries it held (the hard case: an empty restarted server cannot serve anything stale), and
kills, pauses (SIGSTOP: alive but silent) and restarts it mid-run."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ccv.config import Settings
from ccv.errors import BackendError
from ccv.store.cache import RedisCache
from ccv.vault import Vault

TENANT = "acme"
SCHEMA = """\
tenant: acme
agent: bot
fields:
  - name: nickname
    value_type: string
  - name: tier
    value_type: enum
    allowed_values: [free, pro]
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A private redis-server: start, kill -9, pause/resume, restart on the same port and data."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--logfile",
                str(self.directory / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2, socket_timeout=0.5)
        deadline = time.monotonic() + 15
        try:
            while True:  # waiting for the server to accept commands, not timing anything
                try:
                    client.ping()
                    return
                except redis.RedisError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        log = (self.directory / "redis.log").read_text(errors="replace")
                        raise RuntimeError(f"redis-server did not start:\n{log[-2000:]}") from None
                    time.sleep(0.02)
        finally:
            client.close()

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def restart(self) -> None:
        self.start()

    def pause(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def client(self) -> Any:
        import redis

        return redis.Redis(port=self.port, socket_connect_timeout=1, socket_timeout=5)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.kill()
            self.process.wait()


@pytest.fixture(params=["redis", pytest.param("cluster", marks=pytest.mark.redis_cluster)])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server; and a private three-node Redis Cluster, whose faults hit the
    node that holds the tenant's slot (tests/redis_cluster.py)."""
    if shutil.which("redis-server") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is required under CI=true")
        pytest.skip("redis-server is not on PATH")
    directory = tmp_path / "redis"
    directory.mkdir()
    started: Any
    if request.param == "cluster":
        from redis_cluster import TenantSlotNode

        started = TenantSlotNode(directory, TENANT)
    else:
        started = RedisServer(directory)
    started.start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(autouse=True)
def _fresh_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test is a process of its own as far as the once-per-process warning goes."""
    monkeypatch.setattr("ccv.store.cache._warned", False)


def settings_for(database_url: str, server: RedisServer, **overrides: Any) -> Settings:
    # A generous timeout unless a test pauses the server: a slow reply from a loaded machine is
    # not the fault under test.
    values: dict[str, Any] = {"redis_retry_seconds": 0.0, "redis_timeout_seconds": 2.0}
    values.update(overrides)
    return Settings(database_url=database_url, redis_url=server.url, **values)


def open_cached(database_url: str, server: RedisServer, tmp_path: Path, **overrides: Any) -> Vault:
    vault = Vault(settings_for(database_url, server, **overrides))
    schema = tmp_path / "bot.yaml"
    if not schema.exists():
        schema.write_text(SCHEMA, encoding="utf-8")
        vault.apply_schema([schema])
    return vault


def nickname(vault: Vault, customer: str = "c-1") -> Any:
    return vault.get_profile(TENANT, customer).fields["nickname"].value


def cached_old_value(vault: Vault) -> str:
    """c-1's nickname is 'old', and its profile is cached (the second read is a hit)."""
    vault.save_field(TENANT, "c-1", "nickname", "old")
    assert nickname(vault) == "old"
    assert vault.cache is not None
    hits = vault.cache.counts().hits
    assert nickname(vault) == "old"
    assert vault.cache.counts().hits == hits + 1
    return vault.cache.keys.profile(TENANT, "c-1").key


def warnings_of(caplog: pytest.LogCaptureFixture, level: int = logging.WARNING) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "ccv.cache" and r.levelno == level]


def test_dead_redis_reads_fall_back_writes_succeed_and_one_warning_is_logged(
    database_url: str, server: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ccv.cache")
    with open_cached(database_url, server, tmp_path) as vault:
        key = cached_old_value(vault)
        server.kill()
        for _ in range(20):
            assert nickname(vault) == "old"
        vault.save_field(TENANT, "c-1", "nickname", "new")
        for _ in range(20):
            assert nickname(vault) == "new"
        assert vault.validate_profile(TENANT, "c-1", "bot").valid
        assert len(warnings_of(caplog)) == 1, warnings_of(caplog)
        server.restart()
        # The server came back from its append-only file *with* the old entry...
        assert server.client().get(key) is not None
        # ...and it is not served: the write that Redis missed is replayed first.
        for _ in range(3):
            assert nickname(vault) == "new"
        assert vault.cache is not None
        assert not vault.cache.owes_invalidations
    assert len(warnings_of(caplog)) == 1


WRITER = """
import sys
from ccv.config import Settings
from ccv.vault import Vault
database_url, redis_url = sys.argv[1:3]
settings = Settings(database_url=database_url, redis_url=redis_url, redis_retry_seconds=0)
with Vault(settings) as vault:
    vault.save_field("acme", "c-1", "nickname", "new")
"""


def test_write_another_process_made_while_redis_was_dead_is_not_served_after_restart(
    database_url: str, server: RedisServer, tmp_path: Path
) -> None:
    with open_cached(database_url, server, tmp_path) as reader:
        key = cached_old_value(reader)
        server.kill()
        writer = subprocess.run(
            [sys.executable, "-c", WRITER, database_url, server.url],
            capture_output=True,
            text=True,
            check=False,
        )
        assert writer.returncode == 0, writer.stderr
        # The writer is gone without telling Redis: what it owes is in the database.
        assert owed_rows(database_url) == [(TENANT, "c", "c-1")]
        server.restart()
        assert server.client().get(key) is not None  # the stale entry is back on the server
        with Vault(settings_for(database_url, server)) as fresh:
            assert nickname(fresh) == "new"  # a process that never saw the outage
        assert nickname(reader) == "new"  # the process that cached the old value
        assert owed_rows(database_url) == []  # delivered, then cleared


def owed_rows(database_url: str) -> list[tuple[str, str, str]]:
    """The invalidation outbox as a plain SQL client sees it."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT tenant, scope, customer FROM cache_outbox ORDER BY 1, 2, 3")
            )
            return [tuple(row) for row in rows]
    finally:
        engine.dispose()


def test_paused_redis_costs_a_timeout_and_owed_invalidations_are_replayed_before_reads(
    database_url: str, server: RedisServer, tmp_path: Path
) -> None:
    # Long enough that nothing in the paused stretch below tries Redis again (a command sent to
    # a paused server is only queued, and would run when it resumes).
    back_off = 1.5
    with open_cached(
        database_url, server, tmp_path, redis_retry_seconds=back_off, redis_timeout_seconds=0.2
    ) as vault:
        key = cached_old_value(vault)
        generation = vault.cache.keys.customer_gen(TENANT, "c-1")  # type: ignore[union-attr]
        before = server.client().get(generation)
        server.pause()  # alive, holding its data, answering nothing
        try:
            started = time.monotonic()
            assert nickname(vault) == "old"  # one timeout, then the back-off starts
            vault.save_field(TENANT, "c-1", "nickname", "new")  # Redis is not even tried
            for _ in range(20):
                assert nickname(vault) == "new"
            # A liveness check, not a benchmark: without socket timeouts a paused Redis would
            # block the first call forever; with retries and no back-off every call would wait.
            assert time.monotonic() - started < 5
        finally:
            server.resume()
        # The invalidation never reached Redis: the old entry and its generation are intact.
        assert server.client().get(key) is not None
        assert server.client().get(generation) == before
        time.sleep(back_off)  # the back-off is a timer: let it run out
        assert nickname(vault) == "new"  # this read first delivered the owed invalidation
        assert server.client().get(generation) != before
        assert server.client().get(key) is None or nickname(vault) == "new"
        with Vault(settings_for(database_url, server)) as other:
            assert nickname(other) == "new"


def test_owed_invalidations_are_delivered_when_the_vault_closes(
    database_url: str, server: RedisServer, tmp_path: Path
) -> None:
    writer = open_cached(
        database_url, server, tmp_path, redis_retry_seconds=3600, redis_timeout_seconds=0.2
    )
    key = cached_old_value(writer)
    server.pause()
    try:
        assert nickname(writer) == "old"  # times out: Redis is left alone from now on
        writer.save_field(TENANT, "c-1", "nickname", "new")
    finally:
        server.resume()
    assert server.client().get(key) is not None  # still there: nothing was sent
    writer.close()  # delivers what it owes before disconnecting, back-off or not
    assert server.client().get(key) is None
    with Vault(settings_for(database_url, server)) as other:
        assert nickname(other) == "new"


def test_closing_with_redis_down_leaves_the_invalidation_owed_in_the_database(
    database_url: str, server: RedisServer, tmp_path: Path
) -> None:
    writer = open_cached(database_url, server, tmp_path)
    key = cached_old_value(writer)
    server.kill()
    writer.save_field(TENANT, "c-1", "nickname", "new")
    writer.close()  # one last try fails: nothing is lost, the outbox keeps it
    assert owed_rows(database_url) == [(TENANT, "c", "c-1")]
    server.restart()
    assert server.client().get(key) is not None
    with Vault(settings_for(database_url, server)) as reader:
        assert nickname(reader) == "new"
    assert owed_rows(database_url) == []


def test_fill_that_straddles_a_restart_is_never_served(
    database_url: str, server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read looks Redis up, reads the old rows, and stores them only after Redis was
    restarted and a write (that Redis never heard of) committed: the entry lands on the new
    server with matching generations, and must still never be served."""
    reader = open_cached(database_url, server, tmp_path)
    reader.save_field(TENANT, "c-1", "nickname", "old")
    writer = Vault(settings_for(database_url, server))
    assert reader.cache is not None
    key = reader.cache.keys.profile(TENANT, "c-1").key
    looked_up, go_on = threading.Event(), threading.Event()
    fill = RedisCache.fill
    held: list[bool] = []

    def late_fill(self: RedisCache, snapshot: Any, entry: Any, payload: Any) -> bool:
        if self is reader.cache and entry.key == key and not held:
            held.append(True)
            looked_up.set()
            assert go_on.wait(20)
        return fill(self, snapshot, entry, payload)

    monkeypatch.setattr(RedisCache, "fill", late_fill)
    seen: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: seen.update(value=nickname(reader)))
    thread.start()
    try:
        assert looked_up.wait(20)
        server.kill()
        writer.save_field(TENANT, "c-1", "nickname", "new")  # Redis is dead: not invalidated
        server.restart()
    finally:
        go_on.set()
        thread.join(20)
    assert seen["value"] == "old"
    assert server.client().get(key) is not None  # the late fill did store the old rows...
    assert nickname(reader) == "new"  # ...but they are never served
    with Vault(settings_for(database_url, server)) as fresh:
        assert nickname(fresh) == "new"
    writer.close()
    reader.close()


def test_redis_unreachable_from_the_start(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ccv.cache")
    nowhere = f"redis://127.0.0.1:{_free_port()}/0"
    settings = Settings(database_url=database_url, redis_url=nowhere, redis_retry_seconds=0.0)
    (tmp_path / "bot.yaml").write_text(SCHEMA, encoding="utf-8")
    with Vault(settings) as vault:
        vault.apply_schema([tmp_path / "bot.yaml"])
        vault.save_field(TENANT, "c-1", "nickname", "Ana")
        for _ in range(10):
            assert nickname(vault) == "Ana"
        with pytest.raises(BackendError):
            vault.cache_stats()
    assert len(warnings_of(caplog)) == 1
