"""Two Prefect workers in one process pool, each running an expiry run over every tenant at
once: the sweep claims (`ccv.store.claims`) give each tenant to exactly one of them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from ccv.config import Settings
from ccv.domain.enums import ValidationMode
from ccv.vault import Vault
from flows._common import TENANT_WORKERS

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 1, tzinfo=UTC)
TENANTS = [f"t{n}" for n in range(TENANT_WORKERS + 2)]
HELD = TENANTS[:TENANT_WORKERS]
ITEMS = 60  # per tenant


def _seed(url: str, tmp_path: Path) -> None:
    records = tmp_path / "expiring.jsonl"
    with records.open("w") as out:
        for tenant in TENANTS:
            for n in range(ITEMS):
                record = {
                    "tenant": tenant,
                    "customer": f"c-{n % 10}",
                    "name": f"f{n // 10}",
                    "value": n,
                    "collected_at": "2026-01-01T00:00:00Z",
                    "expires_at": "2026-02-01T00:00:00Z",
                }
                out.write(json.dumps(record) + "\n")
    with Vault(Settings(database_url=url)) as vault:
        imported = vault.import_files([records], validation_mode=ValidationMode.DISABLED)
        assert imported.inserted == ITEMS * len(TENANTS)


@pytest.fixture
def workers(prefect_server: str, pg_migrated: str) -> Iterator[tuple[str, list[Any]]]:
    """A process pool of its own on the session's Prefect server; two workers started later."""
    pool = f"ccv-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_server,
        "CCV_DATABASE_URL": pg_migrated,
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_WORKER_PREFETCH_SECONDS": "1",
    }
    created = subprocess.run(
        [sys.executable, "-m", "prefect", "work-pool", "create", pool, "--type", "process"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert created.returncode == 0, created.stdout + created.stderr
    started: list[subprocess.Popen[str]] = []

    def start(name: str, log: Path) -> subprocess.Popen[str]:
        command = [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool]
        command += ["--name", name, "--limit", "1"]
        worker = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            command,
            cwd=ROOT,
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        started.append(worker)
        return worker

    try:
        yield pool, [start]
    finally:
        for worker in started:
            os.killpg(worker.pid, signal.SIGTERM)
        for worker in started:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(timeout=30)


def _waiting(conn: Any) -> int:
    return int(
        conn.execute(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        ).scalar_one()
    )


def _wait(what: str, done: Any, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.mark.postgres
def test_two_workers_sweeping_every_tenant_at_once_never_sweep_a_tenant_twice(
    workers: tuple[str, list[Any]], pg_migrated: str, tmp_path: Path
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    from flows.expiry import expire

    pool, (start,) = workers
    engine = create_engine(pg_migrated)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE sweep_claims, audit_events, assets, fields, profiles"))
    _seed(pg_migrated, tmp_path)
    flow = expire.from_source(source=str(ROOT), entrypoint="flows/expiry.py:expire")
    flow.deploy(  # type: ignore[union-attr]
        name="two-workers", work_pool_name=pool, build=False, push=False, print_next_steps=False
    )
    parameters = {"now": NOW.isoformat(), "batch_size": 5}
    with get_client(sync_client=True) as client:

        def state(run_id: Any) -> str:
            return str(client.read_flow_run(run_id).state_type.value)  # type: ignore[union-attr]

        try:
            with engine.connect() as holder, holder.begin():
                # The batch locks of the tenants a run sweeps at once are held: the first run
                # claims them and waits, keeping its worker (limit 1) busy, so the other run
                # must go to the other worker, and runs while the first is still running.
                for tenant in HELD:
                    holder.execute(
                        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                        {"key": f"ccv:expire:{tenant}"},
                    )
                first = run_deployment("expire/two-workers", parameters=parameters, timeout=0).id  # type: ignore[union-attr]
                start("worker-a", tmp_path / "worker-a.log")
                _wait("the first run to wait", lambda: _waiting(holder) == len(HELD))
                second = run_deployment("expire/two-workers", parameters=parameters, timeout=0).id  # type: ignore[union-attr]
                start("worker-b", tmp_path / "worker-b.log")
                _wait("the second run to end", lambda: state(second) in {"COMPLETED", "FAILED"})
                assert state(second) == "COMPLETED"
                assert state(first) == "RUNNING"
            _wait("the first run to end", lambda: state(first) in {"COMPLETED", "FAILED"})
            assert state(first) == "COMPLETED"
        finally:
            engine.dispose()
    # Each worker ran one of the two runs (a worker logs the id of each run it submits).
    logs = {name: (tmp_path / f"{name}.log").read_text() for name in ("worker-a", "worker-b")}
    assert str(first) in logs["worker-a"] and str(second) not in logs["worker-a"], logs
    assert str(second) in logs["worker-b"] and str(first) not in logs["worker-b"], logs

    with engine.connect() as conn:
        events = conn.execute(
            text(
                "SELECT tenant, item_id, actor FROM audit_events"
                " WHERE event = 'status_change' AND to_status = 'expired'"
            )
        ).all()
    engine.dispose()
    # Every item expired exactly once, and every tenant by one run only.
    assert Counter(item for _, item, _ in events).most_common(1)[0][1] == 1
    assert Counter(tenant for tenant, _, _ in events) == dict.fromkeys(TENANTS, ITEMS)
    by_tenant: dict[str, set[str]] = {}
    for tenant, _, actor in events:
        by_tenant.setdefault(tenant, set()).add(actor)
    assert all(len(actors) == 1 for actors in by_tenant.values()), by_tenant
    # The first run swept the tenants it claimed at once, the second the others, while the
    # first was still waiting on the held locks.
    assert by_tenant == {t: {f"prefect:expire/{first if t in HELD else second}"} for t in TENANTS}
