"""Concurrent writers on PostgreSQL: supersession stays exact when many processes save at once."""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from ccv.config import Settings
from ccv.domain.enums import Status, ValidationMode
from ccv.store.tables import fields
from ccv.vault import Vault

TABLES = (
    "cache_outbox",
    "audit_events",
    "scenario_requirements",
    "scenarios",
    "field_definitions",
    "assets",
    "fields",
    "profiles",
)
TENANT = "acme"
CUSTOMER = "c-1"
NAMES = ("email", "nickname", "tier")
THREADS = 8
PER_THREAD = 24
T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def pg_empty(pg_migrated: str) -> str:
    engine = create_engine(pg_migrated)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE " + ", ".join(TABLES)))
    engine.dispose()
    return pg_migrated


def test_concurrent_writers_leave_exactly_one_active_newest_version(
    pg_empty: str, tmp_path: Path
) -> None:
    # Every (thread, step) gets its own collected_at; shuffled so that each writer also
    # delivers late arrivals, and the seconds interleave across threads.
    slots = list(range(THREADS * PER_THREAD))
    random.Random(2026).shuffle(slots)
    plans = [slots[t * PER_THREAD : (t + 1) * PER_THREAD] for t in range(THREADS)]
    barrier = threading.Barrier(THREADS)
    saved: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    errors: list[BaseException] = []
    lock = threading.Lock()

    def writer(index: int) -> None:
        try:
            with Vault(Settings(database_url=pg_empty)) as vault:
                barrier.wait()
                for step, slot in enumerate(plans[index]):
                    name = NAMES[(index + step) % len(NAMES)]
                    at = T0 + timedelta(seconds=slot)
                    version = vault.save_field(
                        TENANT,
                        CUSTOMER,
                        name,
                        f"t{index}-s{step}",
                        collected_at=at,
                        validation_mode=ValidationMode.DISABLED,
                        actor=f"writer-{index}",
                    )
                    with lock:
                        saved[name].append((at, version.id))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []

    engine = create_engine(pg_empty)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(
                    fields.c.id,
                    fields.c.name,
                    fields.c.status,
                    fields.c.collected_at,
                    fields.c.superseded_by_id,
                ).where(fields.c.tenant == TENANT, fields.c.customer == CUSTOMER)
            ).all()
    finally:
        engine.dispose()

    assert sum(len(v) for v in saved.values()) == THREADS * PER_THREAD
    by_id = {row.id: row for row in rows}
    with Vault(Settings(database_url=pg_empty)) as vault:
        profile = vault.get_profile(TENANT, CUSTOMER)
        for name in NAMES:
            versions = [row for row in rows if row.name == name]
            assert sorted(row.id for row in versions) == sorted(i for _, i in saved[name])
            newest = max(saved[name])[1]
            assert [row.id for row in versions if row.status == "active"] == [newest]
            assert profile.fields[name].id == newest
            for row in versions:
                if row.id == newest:
                    continue
                assert row.status == Status.SUPERSEDED.value
                successor = by_id[row.superseded_by_id]
                assert (successor.collected_at, successor.id) > (row.collected_at, row.id)
            history = vault.history(TENANT, CUSTOMER, name)
            assert len(history) == len(saved[name])
            assert [v.id for v in history] == [i for _, i in sorted(saved[name], reverse=True)]
