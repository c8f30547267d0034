"""The cache never serves what a committed write replaced, whichever process wrote (SPEC §2).

Every writer here is a separate `ccv` process, as in production: a CLI run that commits and
exits, a writer with no Redis configured at all, a writer whose Redis is paused (SIGSTOP: alive,
holding its data, answering nothing), and a writer killed between its commit and its delivery
to Redis. Readers are new processes (`ccv profile show`) and a long-lived in-process vault that
cached the old value. Each test runs its own redis-server, on both dialects.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ccv.config import Settings
from ccv.store.cache import Keys
from ccv.vault import Vault
from tests.integration.test_cache_faults import RedisServer, owed_rows
from tests.integration.test_cache_faults import server as server  # noqa: F401 - the fixture

TENANT = "acme"
SCHEMA = """\
tenant: acme
agent: bot
fields:
  - name: nickname
    value_type: string
  - name: email
    value_type: email
    is_pii: true
"""
SECRET = "erase-me-7f3a@example.com"
ROOT = Path(__file__).resolve().parents[2]


def ccv_process(
    database_url: str,
    redis_url: str | None,
    *args: str,
    prefix: str = "ccv",
    code: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`ccv ARGS` as a process of its own (or `code` run with python -c), with or without Redis."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCV_")}
    env.update(
        CCV_DATABASE_URL=database_url,
        CCV_CACHE_PREFIX=prefix,
        CCV_REDIS_TIMEOUT_SECONDS="0.3",
        PYTHONPATH=str(ROOT),
    )
    if redis_url is not None:
        env["CCV_REDIS_URL"] = redis_url
    command = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "ccv", *args]
    return subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=120, check=False, cwd=ROOT
    )


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return result


def write_records(path: Path, records: Sequence[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def record(customer: str, name: str, value: str, at: str, item_id: str) -> dict[str, Any]:
    return {
        "tenant": TENANT,
        "customer": customer,
        "id": item_id,
        "name": name,
        "value": value,
        "source": "user_provided",
        "collected_at": at,
    }


OLD_ID = "00000000-0000-4000-8000-0000000000a1"
NEW_ID = "00000000-0000-4000-8000-0000000000a2"


@pytest.fixture
def setup(database_url: str, server: RedisServer, tmp_path: Path) -> Iterator[Vault]:  # noqa: F811
    """A long-lived reader (retrying Redis at once) that has c-1's old nickname cached."""
    schema = tmp_path / "bot.yaml"
    schema.write_text(SCHEMA, encoding="utf-8")
    settings = Settings(
        database_url=database_url,
        redis_url=server.url,
        redis_retry_seconds=0.0,
        redis_timeout_seconds=2.0,
    )
    with Vault(settings) as reader:
        reader.apply_schema([schema])
        old = write_records(
            tmp_path / "old.jsonl", [record("c-1", "nickname", "old", "2026-03-01", OLD_ID)]
        )
        reader.import_files([old])
        assert nickname(reader) == "old"
        assert nickname(reader) == "old"  # served from Redis now
        assert server.client().get(profile_key(reader)) is not None
        yield reader


def nickname(vault: Vault, customer: str = "c-1") -> str:
    return str(vault.get_profile(TENANT, customer).fields["nickname"].value)


def profile_key(vault: Vault, customer: str = "c-1") -> str:
    assert vault.cache is not None
    return vault.cache.keys.profile(TENANT, customer).key


def shown(database_url: str, server: RedisServer, customer: str = "c-1") -> Any:
    """`ccv profile show --json` in a new process reading through Redis."""
    result = ccv_process(
        database_url, server.url, "profile", "show", customer, "--tenant", TENANT, "--json"
    )
    if result.returncode == 3:
        return None
    return json.loads(ok(result).stdout)


def new_import(tmp_path: Path) -> Path:
    return write_records(
        tmp_path / "new.jsonl", [record("c-1", "nickname", "new", "2026-03-02", NEW_ID)]
    )


def test_import_while_redis_is_stalled_then_exit_is_never_served_stale(
    database_url: str,
    server: RedisServer,  # noqa: F811
    setup: Vault,
    tmp_path: Path,
) -> None:
    server.pause()
    try:
        ok(ccv_process(database_url, server.url, "profile", "import", str(new_import(tmp_path))))
    finally:
        server.resume()
    # The writer committed and exited while Redis answered nothing: the stale entry is intact.
    assert server.client().get(profile_key(setup)) is not None
    assert owed_rows(database_url) == [(TENANT, "c", "c-1")]
    assert shown(database_url, server)["fields"]["nickname"]["value"] == "new"  # a new process
    assert nickname(setup) == "new"  # the long-lived reader
    assert owed_rows(database_url) == []


@pytest.mark.parametrize("command", ["import", "delete", "erase"])
def test_writer_without_redis_configured_leaves_nothing_stale_behind(
    database_url: str,
    server: RedisServer,  # noqa: F811
    setup: Vault,
    tmp_path: Path,
    command: str,
) -> None:
    args = {
        "import": ("profile", "import", str(new_import(tmp_path))),
        "delete": ("profile", "delete", OLD_ID, "--tenant", TENANT),
        "erase": ("profile", "erase", "c-1", "--tenant", TENANT, "--yes"),
    }[command]
    writer = ok(ccv_process(database_url, None, *args))
    assert "redis" not in writer.stderr.lower()  # it never tried: only recorded
    assert server.client().get(profile_key(setup)) is not None  # the old entry is still there
    after = shown(database_url, server)
    if command == "import":
        assert after["fields"]["nickname"]["value"] == "new"
        assert nickname(setup) == "new"
    elif command == "delete":
        # Its only item is gone: the customer has nothing stored, so it is not found.
        assert after is None
        from ccv.errors import NotFoundError

        with pytest.raises(NotFoundError):
            setup.get_profile(TENANT, "c-1")
    else:
        assert after is None
        from ccv.errors import NotFoundError

        with pytest.raises(NotFoundError):
            setup.get_profile(TENANT, "c-1")
    assert owed_rows(database_url) == []


KILLED_WRITER = """
import os, signal, sys
from ccv.store.cache import RedisCache
from ccv.cli.app import main

def die(self, owed):
    # Committed, not yet delivered: the process dies here (SIGKILL, no cleanup of any kind).
    os.kill(os.getpid(), signal.SIGKILL)

RedisCache.deliver = die
sys.argv = ["ccv", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize("command", ["import", "erase"])
def test_writer_killed_between_commit_and_delivery(
    database_url: str,
    server: RedisServer,  # noqa: F811
    setup: Vault,
    tmp_path: Path,
    command: str,
) -> None:
    args = {
        "import": ("profile", "import", str(new_import(tmp_path))),
        "erase": ("profile", "erase", "c-1", "--tenant", TENANT, "--yes"),
    }[command]
    killed = ccv_process(database_url, server.url, *args, code=KILLED_WRITER)
    assert killed.returncode == -9, killed.stderr
    assert server.client().get(profile_key(setup)) is not None  # never invalidated
    assert owed_rows(database_url) == [(TENANT, "c", "c-1")]  # but committed with the write
    after = shown(database_url, server)
    if command == "import":
        assert after["fields"]["nickname"]["value"] == "new"
        assert nickname(setup) == "new"
    else:
        assert after is None
    assert owed_rows(database_url) == []


def redis_contents(server: RedisServer, vault: Vault) -> tuple[bytes, bytes]:
    """Every key's serialized value as Redis holds it, and every entry opened with its
    tenant's key (what the cache could serve)."""
    client = server.client()
    keys = sorted(client.scan_iter(count=1000))
    dump = b"".join(client.dump(key) or b"" for key in keys)
    assert vault.cache is not None
    opened = []
    for key in keys:
        name = key.decode()
        if Keys.is_entry(name):
            value = client.get(key)
            assert value is not None
            plain = vault.cache.sealer.open(TENANT, name, value[1:])
            assert plain is not None, f"{name} does not open with the tenant's key"
            opened.append(plain)
    return dump, b"".join(opened)


def test_erased_customer_is_never_served_from_redis_by_any_read(
    database_url: str,
    server: RedisServer,  # noqa: F811
    setup: Vault,
    tmp_path: Path,
) -> None:
    setup.save_field(TENANT, "c-1", "email", SECRET, collected_at=None)
    requirements = tmp_path / "req.yaml"
    requirements.write_text(
        "tenant: acme\nagent: bot\nscenario: signup\nrequires:\n"
        "  - field: email\n  - field: nickname\n",
        encoding="utf-8",
    )
    setup.apply_requirements([requirements])
    # Warm every entry of the customer: profile, gap rows, validation.
    for _ in range(2):
        assert setup.get_profile(TENANT, "c-1").fields["email"].value != SECRET  # masked
        assert setup.gaps(TENANT, "c-1", "signup").missing == []
        assert setup.validate_profile(TENANT, "c-1", "bot").valid
    dump, opened = redis_contents(server, setup)
    assert SECRET.encode() in opened  # the cache holds the value (unmasked rows)...
    assert SECRET.encode() not in dump  # ...sealed
    ok(ccv_process(database_url, None, "profile", "erase", "c-1", "--tenant", TENANT, "--yes"))

    assert shown(database_url, server) is None
    gaps = ok(
        ccv_process(
            database_url,
            server.url,
            "profile",
            "gaps",
            "c-1",
            "--tenant",
            TENANT,
            "--scenario",
            "signup",
            "--json",
        )
    )
    assert SECRET not in gaps.stdout
    assert sorted(m["field"] for m in json.loads(gaps.stdout)["missing"]) == ["email", "nickname"]
    from ccv.errors import NotFoundError

    with pytest.raises(NotFoundError):
        setup.get_profile(TENANT, "c-1")
    with pytest.raises(NotFoundError):
        setup.validate_profile(TENANT, "c-1", "bot")
    assert {m.field for m in setup.gaps(TENANT, "c-1", "signup").missing} == {"email", "nickname"}
    # Served nothing, and Redis no longer holds an entry that could: every read above refilled
    # from the database, which has nothing of the customer.
    dump, opened = redis_contents(server, setup)
    assert SECRET.encode() not in opened
    assert SECRET.encode() not in dump


def test_many_owed_customers_are_delivered_as_one_tenant_epoch(
    database_url: str,
    server: RedisServer,  # noqa: F811
    setup: Vault,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ccv.store import outbox

    monkeypatch.setattr(outbox, "MAX_CUSTOMER_ROWS", 3)
    records = [
        record(f"c-{i}", "nickname", f"n{i}", "2026-03-05", f"00000000-0000-4000-8000-{i:012d}")
        for i in range(2, 8)
    ]
    big = write_records(tmp_path / "big.jsonl", records)
    with Vault(Settings(database_url=database_url)) as no_redis:
        no_redis.import_files([big])
    # One row for the whole tenant instead of six, and it makes the old entry stale too.
    assert owed_rows(database_url) == [(TENANT, "e", "")]
    setup.save_field(TENANT, "c-1", "nickname", "direct")  # a writer with Redis, meanwhile
    assert nickname(setup) == "direct"
    assert owed_rows(database_url) == []
    assert nickname(setup, "c-7") == "n7"


def test_save_field_without_redis_records_its_customer_in_the_same_transaction(
    database_url: str,
    server: RedisServer,  # noqa: F811
    setup: Vault,
) -> None:
    with Vault(Settings(database_url=database_url)) as agent:  # an agent runtime, no Redis
        agent.save_field(TENANT, "c-1", "nickname", "from-agent")
        at = datetime(2026, 3, 3, tzinfo=UTC)
        again = {"item_id": NEW_ID, "collected_at": at}
        agent.save_field(TENANT, "c-1", "nickname", "from-agent", **again)
        agent.save_field(TENANT, "c-1", "nickname", "from-agent", **again)  # a retry
    assert owed_rows(database_url) == [(TENANT, "c", "c-1")]  # merged: one row
    assert nickname(setup) == "from-agent"
    assert owed_rows(database_url) == []
