"""`ccv cache stats` and `ccv cache flush`, and the CLI's reads going through Redis, on both
dialects. Redis comes from the environment (CCV_REDIS_URL, CCV_CACHE_PREFIX), as an operator
would set it."""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest

from .helpers import TENANT, Ccv, assert_exit, error_lines, load_demo, run


@pytest.fixture
def cached(ccv: Ccv, redis_target: Any, monkeypatch: pytest.MonkeyPatch) -> Ccv:
    """`ccv` on the demo data, with the test's own Redis namespace in the environment."""
    monkeypatch.setenv("CCV_REDIS_URL", redis_target.url)
    monkeypatch.setenv("CCV_CACHE_PREFIX", redis_target.prefix)
    monkeypatch.setenv("CCV_REDIS_TIMEOUT_SECONDS", "2")  # a loaded machine is not a fault
    if "postgresql" in ccv.database_url:
        ccv.json("db", "upgrade")
    load_demo(ccv)
    return ccv


def _nowhere() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


def test_stats_count_the_reads_of_every_command(cached: Ccv) -> None:
    assert cached.json("cache", "stats") == {
        "hits": 0,
        "misses": 0,
        "errors": 0,
        "hit_rate": None,
    }
    first = cached.json("profile", "show", "c-1001", "--tenant", TENANT)
    second = cached.json("profile", "show", "c-1001", "--tenant", TENANT)
    assert {k: v for k, v in first.items() if k != "as_of"} == {
        k: v for k, v in second.items() if k != "as_of"
    }
    assert cached.json("cache", "stats") == {
        "hits": 1,
        "misses": 1,
        "errors": 0,
        "hit_rate": 0.5,
    }


def test_stats_as_text(cached: Ccv) -> None:
    cached.json("profile", "show", "c-1001", "--tenant", TENANT)
    result = cached("cache", "stats")
    assert_exit(result, 0)
    assert "hits 0, misses 1, errors 0, hit rate 0.0%" in result.stdout


def test_flush_of_a_tenant_makes_the_next_read_a_miss(cached: Ccv) -> None:
    cached.json("profile", "show", "c-1001", "--tenant", TENANT)
    assert cached.json("cache", "flush", "--tenant", TENANT) == {"tenant": TENANT, "deleted": None}
    cached.json("profile", "show", "c-1001", "--tenant", TENANT)
    stats = cached.json("cache", "stats")
    assert (stats["hits"], stats["misses"]) == (0, 2)


def test_flush_of_everything_reports_the_entries_deleted(cached: Ccv) -> None:
    cached.json("profile", "show", "c-1001", "--tenant", TENANT)
    cached.json("profile", "show", "c-1002", "--tenant", TENANT)
    assert cached.json("cache", "flush") == {"tenant": None, "deleted": 2}
    result = cached("cache", "flush")
    assert_exit(result, 0)
    assert "0 entries deleted" in result.stdout


def test_a_write_through_the_cli_is_seen_by_the_next_read(cached: Ccv) -> None:
    before = cached.json("profile", "show", "c-1001", "--tenant", TENANT)
    cached.json("profile", "show", "c-1001", "--tenant", TENANT)
    cached.json("profile", "erase", "c-1001", "--tenant", TENANT, "--yes")
    cached.fails("profile", "show", "c-1001", "--tenant", TENANT, code=3)
    assert before["fields"]


@pytest.mark.parametrize("args", [["cache", "stats"], ["cache", "flush"]])
def test_without_redis_configured_cache_commands_are_usage_errors(args: list[str]) -> None:
    result = run(*args, "--json")
    assert_exit(result, 2)
    assert result.stdout == ""
    assert "CCV_REDIS_URL" in error_lines(result)[0]


@pytest.mark.parametrize(
    "args", [["cache", "stats"], ["cache", "flush"], ["cache", "flush", "--tenant", TENANT]]
)
def test_with_redis_unreachable_cache_commands_are_backend_errors(args: list[str]) -> None:
    nowhere = _nowhere()
    result = run("--redis-url", nowhere, *args, "--json")
    assert_exit(result, 5)
    assert result.stdout == ""
    assert nowhere in error_lines(result)[0]


def test_reads_work_with_redis_unreachable_and_warn_once(
    ccv: Ccv, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ccv.cache")
    monkeypatch.setattr("ccv.store.cache._warned", False)
    if "postgresql" in ccv.database_url:
        ccv.json("db", "upgrade")
    load_demo(ccv)
    monkeypatch.setenv("CCV_REDIS_URL", _nowhere())
    monkeypatch.setenv("CCV_REDIS_RETRY_SECONDS", "0")
    shown = ccv.json("profile", "show", "c-1001", "--tenant", TENANT)
    assert shown["fields"]
    result = ccv("profile", "validate", "c-1001", "--tenant", TENANT, "--agent", "support-bot")
    assert result.exit_code in (0, 1), result.stderr
    assert "Traceback" not in result.output
    warned = [r for r in caplog.records if r.name == "ccv.cache" and r.levelno == logging.WARNING]
    assert len(warned) == 1  # one per process, not one per read
