"""The flows, run by Prefect (the session's temporary server) against SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prefect.artifacts import Artifact
from prefect.client.schemas.objects import State
from prefect.states import Failed
from sqlalchemy import create_engine, text

import flows.expiry
from ccv.config import Settings
from ccv.domain.enums import ValidationMode
from ccv.errors import BackendError, SchemaOutdatedError, UsageError
from ccv.service import jobs
from ccv.vault import Vault
from flows._common import RETRIES, TenantsFailed, close_vaults, retry_on_backend_error
from flows.expiry import expire, expire_tenant
from flows.orphans import orphans

NOW = datetime(2026, 11, 1, tzinfo=UTC)
DEMO = "northwind-bank"


def _add_globex(vault: Vault) -> None:
    """A second tenant with two expired values."""
    for customer in ("g-1", "g-2"):
        vault.save_field(
            "globex",
            customer,
            "nickname",
            customer,
            collected_at=datetime(2026, 1, 1, tzinfo=UTC),
            expires_at=datetime(2026, 6, 1, tzinfo=UTC),
            validation_mode=ValidationMode.DISABLED,
        )


def _run(flow: Any, **parameters: Any) -> tuple[State[Any], Any]:
    state = flow(**parameters, return_state=True)
    return state, state.result(raise_on_failure=False)


def _artifact(key: str, state: State[Any]) -> list[dict[str, Any]]:
    """The run's table artifact (the latest version of `key` must be this run's)."""
    artifact = Artifact.get(key)
    assert artifact is not None
    assert artifact.flow_run_id == state.state_details.flow_run_id
    assert artifact.type == "table"
    rows: list[dict[str, Any]] = json.loads(str(artifact.data))
    return rows


def _audit(url: str, to_status: str) -> list[tuple[str, str, str]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT tenant, item_id, actor FROM audit_events"
                    " WHERE event = 'status_change' AND to_status = :to"
                ),
                {"to": to_status},
            )
            return [tuple(row) for row in rows]
    finally:
        engine.dispose()


def test_expire_flow_sweeps_each_tenant_and_a_second_run_changes_nothing(
    flow_db: str, demo_vault: Vault
) -> None:
    _add_globex(demo_vault)
    expected = {t: s.count for t, s in demo_vault.expire(all_tenants=True, now=NOW).tenants.items()}
    assert expected == {DEMO: 3, "globex": 2}

    only, counts = _run(expire, tenants=["globex"], now=NOW)
    assert only.is_completed() and counts == {"globex": 2}

    # globex was swept as of NOW already: this run leaves it, and says so.
    state, counts = _run(expire, now=NOW)
    assert state.is_completed(), counts
    assert counts == {DEMO: 3}
    skipped = {"expired": None, "applied": None, "now": None, "skipped": True, "error": ""}
    assert _artifact("ccv-expire", state) == [
        {"tenant": "globex", **skipped},
        {"tenant": DEMO, "expired": 3, "applied": True, "now": NOW.isoformat()}
        | {"skipped": False, "error": ""},
    ]
    events = _audit(flow_db, "expired")
    assert Counter(tenant for tenant, _, _ in events) == expected
    assert len({item for _, item, _ in events}) == 5
    run_id = state.state_details.flow_run_id
    assert {actor for t, _, actor in events if t == DEMO} == {f"prefect:expire/{run_id}"}

    again, counts = _run(expire, now=NOW)
    assert again.is_completed() and counts == {}
    later, counts = _run(expire, now=NOW + timedelta(seconds=1))
    assert later.is_completed() and counts == {DEMO: 0, "globex": 0}
    assert len(_audit(flow_db, "expired")) == 5
    assert demo_vault.expire(all_tenants=True, now=NOW).total == 0


def test_orphans_flow_dry_run_then_apply_then_nothing(flow_db: str, demo_vault: Vault) -> None:
    engine = create_engine(flow_db)
    with engine.begin() as conn:
        # An asset vanishes behind the vault's back: what was read off it is now orphaned.
        asset = conn.execute(
            text(
                "SELECT a.id FROM assets a JOIN fields f ON f.tenant = a.tenant"
                " AND f.source_item_id = a.id AND f.status = 'active' ORDER BY a.id LIMIT 1"
            )
        ).scalar_one()
        conn.execute(text("DELETE FROM assets WHERE id = :id"), {"id": asset})
    engine.dispose()
    expected = demo_vault.orphans([DEMO]).total
    assert expected > 0

    dry, counts = _run(orphans, apply=False)
    assert dry.is_completed() and counts == {DEMO: expected}
    assert _artifact("ccv-orphans", dry)[0]["applied"] is False
    assert demo_vault.orphans([DEMO]).total == expected

    applied, counts = _run(orphans, tenants=[DEMO], batch_size=1)
    assert applied.is_completed() and counts == {DEMO: expected}
    assert len(_audit(flow_db, "orphaned")) == expected
    (row,) = _artifact("ccv-orphans-report", applied)
    now = demo_vault.report([DEMO]).tenants[DEMO]
    assert row["tenant"] == DEMO
    assert (row["fields.orphaned"], row["assets.orphaned"]) == (
        now.fields["orphaned"],
        now.assets["orphaned"],
    )
    assert now.fields["orphaned"] + now.assets["orphaned"] >= expected

    again, counts = _run(orphans)
    assert again.is_completed() and counts == {DEMO: 0}


def test_a_database_error_is_retried_and_the_run_completes(
    flow_db: str, demo_vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = jobs.expire
    calls: list[list[str]] = []

    def fails_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(list(args[1]))
        if len(calls) == 1:
            raise BackendError("cannot use the database: server closed the connection")
        return real(*args, **kwargs)

    monkeypatch.setattr(jobs, "expire", fails_once)
    # The schedule's backoff (5 s, 10 s, ...) is not what this test is about.
    monkeypatch.setattr(
        flows.expiry, "expire_tenant", expire_tenant.with_options(retry_delay_seconds=0)
    )
    state, counts = _run(expire, tenants=[DEMO], now=NOW)
    assert state.is_completed(), counts
    assert counts == {DEMO: 3}
    assert calls == [[DEMO], [DEMO]]
    assert len(_audit(flow_db, "expired")) == 3


def test_a_usage_error_is_not_retried_and_fails_the_run_after_the_other_tenants(
    flow_db: str, demo_vault: Vault
) -> None:
    state, error = _run(expire, tenants=[DEMO, "bad\ttenant"], now=NOW)
    assert state.is_failed()
    assert isinstance(error, TenantsFailed)
    assert "bad\ttenant" in str(error)
    rows = _artifact("ccv-expire", state)
    assert [(r["tenant"], r["expired"]) for r in rows] == [("bad\ttenant", None), (DEMO, 3)]
    assert "UsageError" in rows[0]["error"]


def test_a_vault_with_no_tenant_yet_is_a_run_with_nothing_to_do(
    prefect_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CCV_DATABASE_URL", f"sqlite:///{tmp_path / 'new.db'}")
    try:
        state, counts = _run(orphans)
    finally:
        close_vaults()
    assert state.is_completed() and counts == {}
    assert _artifact("ccv-orphans", state) == []


def test_tasks_retry_database_errors_only_with_exponential_backoff() -> None:
    assert expire_tenant.retries == RETRIES == 4
    assert expire_tenant.retry_delay_seconds == [5, 10, 20, 40]

    def retried(error: BaseException) -> bool:
        # The task engine hands the condition a Failed state holding the exception.
        return retry_on_backend_error(expire_tenant, None, Failed(data=error))  # type: ignore[arg-type]

    assert retried(BackendError("connection refused"))
    assert not retried(SchemaOutdatedError("run `ccv db upgrade`"))
    assert not retried(UsageError("bad tenant"))
    assert not retried(ValueError("a bug"))


def _waiting_for_advisory_locks(conn: Any) -> int:
    """Waiters in this test's own database: pg_locks shows the whole server, where the other
    test workers take advisory locks of their own (sweeps, `db upgrade`)."""
    return int(
        conn.execute(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        ).scalar_one()
    )


@pytest.mark.postgres
def test_a_run_leaves_a_tenant_that_another_run_is_sweeping_and_each_item_expires_once(
    prefect_server: str, pg_migrated: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    engine = create_engine(pg_migrated)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE sweep_claims, audit_events, assets, fields, profiles"))
    items = 1000
    records = tmp_path / "expiring.jsonl"
    with records.open("w") as out:
        for n in range(items):
            record = {
                "tenant": "acme",
                "customer": f"c-{n % 100}",
                "name": f"f{n // 100}",
                "value": n,
                "collected_at": "2026-01-01T00:00:00Z",
                "expires_at": "2026-02-01T00:00:00Z",
            }
            out.write(json.dumps(record) + "\n")
    with Vault(Settings(database_url=pg_migrated)) as vault:
        imported = vault.import_files([records], validation_mode=ValidationMode.DISABLED)
        assert imported.inserted == items
    monkeypatch.setenv("CCV_DATABASE_URL", pg_migrated)

    results: list[State[Any]] = []

    def run() -> None:
        results.append(expire(tenants=["acme"], batch_size=10, now=NOW, return_state=True))

    first, second = (threading.Thread(target=run) for _ in range(2))
    # Hold acme's batch lock: the first run claims acme and waits for the lock; the second,
    # started then, finds acme claimed and completes without touching it.
    try:
        with engine.connect() as holder, holder.begin():
            holder.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended('ccv:expire:acme', 0))")
            )
            first.start()
            deadline = time.monotonic() + 60
            while _waiting_for_advisory_locks(holder) < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert _waiting_for_advisory_locks(holder) == 1
            second.start()
            second.join(timeout=120)
            assert len(results) == 1 and results[0].is_completed()
            assert results[0].result() == {}
    finally:
        for thread in (first, second):
            if thread.ident is not None:  # started
                thread.join(timeout=120)
        engine.dispose()
        close_vaults()
    assert len(results) == 2 and all(state.is_completed() for state in results)
    skipping, sweeping = results
    assert sweeping.result() == {"acme": items}

    events = _audit(pg_migrated, "expired")
    per_item = Counter(item for _, item, _ in events)
    assert len(per_item) == items
    assert set(per_item.values()) == {1}
    assert {actor for _, _, actor in events} == {
        f"prefect:expire/{sweeping.state_details.flow_run_id}"
    }
    # The claim is released, as of the run's time: a later run sweeps acme again.
    again, counts = _run(expire, tenants=["acme"], now=NOW + timedelta(seconds=1))
    assert again.is_completed() and counts == {"acme": 0}
    assert skipping.state_details.flow_run_id != sweeping.state_details.flow_run_id


class _RunRecords(logging.Handler):
    """What the flow and task run loggers were given (Prefect's own loggers, as its API log
    handler and console see them)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_sweeps_log_ccv_events_and_publish_the_report_of_the_swept_tenants(
    flow_db: str, demo_vault: Vault
) -> None:
    _add_globex(demo_vault)
    runs = _RunRecords()
    loggers = [logging.getLogger("prefect.task_runs"), logging.getLogger("prefect.flow_runs")]
    for logger in loggers:
        logger.addHandler(runs)
    try:
        state, counts = _run(expire, now=NOW)
    finally:
        for logger in loggers:
            logger.removeHandler(runs)
    assert state.is_completed() and counts == {DEMO: 3, "globex": 2}
    # ccv's own events, as `--log-format json` writes them, in the task runs' logs.
    events = [
        json.loads(record.getMessage())
        for record in runs.records
        if record.getMessage().startswith("{")
    ]
    swept = Counter()
    for event in events:
        assert event.keys() >= {"ts", "level", "event", "tenant"}
        if event["event"] == "status_transition":
            assert event["to_status"] == "expired"
            swept[event["tenant"]] += event["count"]
    assert swept == {DEMO: 3, "globex": 2}

    report = demo_vault.report(["globex", DEMO], now=NOW).model_dump(mode="json")
    assert report["tenants"]["globex"]["fields"]["expired"] == 2
    artifact = Artifact.get("ccv-expire-report")
    assert artifact is not None and artifact.type == "table"
    assert artifact.flow_run_id == state.state_details.flow_run_id
    rows = {row.pop("tenant"): row for row in json.loads(str(artifact.data))}
    assert rows.keys() == {DEMO, "globex"}
    assert rows["globex"]["fields.expired"] == 2
    assert rows["globex"]["overdue"] == 0  # swept: nothing left past its expiry
    for tenant, counts_of in report["tenants"].items():
        flat = {
            f"{key}.{inner}" if isinstance(value, dict) else key: inner_value
            for key, value in counts_of.items()
            for inner, inner_value in (value.items() if isinstance(value, dict) else [(key, value)])
            if key != "lineage"
        }
        assert {k: v for k, v in rows[tenant].items() if not k.startswith("lineage.")} == flat
        assert rows[tenant]["lineage.max_depth"] == counts_of["lineage"]["max_depth"]
