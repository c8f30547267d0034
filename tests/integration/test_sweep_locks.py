"""Applied sweeps take a PostgreSQL advisory lock per job and tenant, in the core: the scheduled
flows, other workers and the CLI's `--apply` all take turns on one tenant."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, create_engine, text
from typer.testing import CliRunner

from ccv.cli.app import app
from ccv.config import Settings
from ccv.domain.enums import ValidationMode
from ccv.domain.models import SweepResult
from ccv.errors import BackendError
from ccv.store import sweeps
from ccv.vault import Vault

NOW = datetime(2026, 6, 1, tzinfo=UTC)
COLLECTED = datetime(2026, 1, 1, tzinfo=UTC)
EXPIRED = datetime(2026, 2, 1, tzinfo=UTC)


@pytest.fixture
def pg_vault(pg_migrated: str) -> Iterator[Vault]:
    engine = create_engine(pg_migrated)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE audit_events, assets, fields, profiles"))
    engine.dispose()
    with Vault(Settings(database_url=pg_migrated)) as vault:
        for tenant in ("acme", "globex"):
            for n in range(3):
                vault.save_field(
                    tenant,
                    f"c-{n}",
                    "nickname",
                    f"n{n}",
                    collected_at=COLLECTED,
                    expires_at=EXPIRED,
                    validation_mode=ValidationMode.DISABLED,
                )
        yield vault


@contextmanager
def held(url: str, job: str, tenant: str) -> Iterator[Connection]:
    """Another session holding the job's lock of `tenant` until the block ends."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn, conn.begin():
            conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                {"key": f"ccv:{job}:{tenant}"},
            )
            yield conn
    finally:
        engine.dispose()


def _in_thread(function: Any) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = function()
        except BaseException as exc:  # noqa: BLE001 - checked by the test
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_applied_expiry_waits_for_the_lock_of_its_tenant_only(pg_vault: Vault) -> None:
    url = pg_vault.settings.database_url
    with held(url, "expire", "acme"):
        waiting, outcome = _in_thread(lambda: pg_vault.expire(["acme"], now=NOW, apply=True))
        waiting.join(timeout=1.0)
        assert waiting.is_alive(), outcome  # blocked on acme's lock
        # Another tenant, a dry run and another job are not held up by it.
        assert pg_vault.expire(["globex"], now=NOW, apply=True).total == 3
        assert pg_vault.expire(["acme"], now=NOW).total == 3
        assert pg_vault.orphans(["acme"], apply=True).total == 0
    waiting.join(timeout=30)
    assert not waiting.is_alive()
    result: SweepResult = outcome["result"]
    assert result.tenants["acme"].count == 3


def test_applied_orphan_detection_takes_its_own_lock(pg_vault: Vault) -> None:
    with held(pg_vault.settings.database_url, "orphans", "acme"):
        waiting, outcome = _in_thread(lambda: pg_vault.orphans(["acme"], apply=True))
        waiting.join(timeout=1.0)
        assert waiting.is_alive(), outcome
    waiting.join(timeout=30)
    assert outcome["result"].total == 0


def test_a_lock_held_too_long_is_a_backend_error(
    pg_vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sweeps, "LOCK_TIMEOUT_SECONDS", 0.2)
    with (
        held(pg_vault.settings.database_url, "expire", "acme"),
        pytest.raises(BackendError, match="another expire run .* tenant 'acme'"),
    ):
        pg_vault.expire(["acme"], now=NOW, apply=True)
    # Nothing was half done, and the next run does the work.
    assert pg_vault.expire(["acme"], now=NOW, apply=True).total == 3


def test_cli_apply_takes_the_same_lock(pg_vault: Vault, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sweeps, "LOCK_TIMEOUT_SECONDS", 0.2)
    url = pg_vault.settings.database_url
    args = ["--database-url", url, "profile", "expire", "--tenant", "acme", "--now", "2026-06-01"]
    with held(url, "expire", "acme"):
        refused = CliRunner().invoke(app, [*args, "--apply"])
        dry_run = CliRunner().invoke(app, [*args, "--json"])
    assert refused.exit_code == 5, refused.output
    assert "another expire run" in " ".join(refused.stderr.split())
    assert dry_run.exit_code == 0, dry_run.output
    assert CliRunner().invoke(app, [*args, "--apply"]).exit_code == 0
    assert pg_vault.expire(["acme"], now=NOW).total == 0
