"""Many OS processes on one database: SQLite waits its turn (never "database is locked"), and the
lifecycle stays exact on both dialects.

Every child is a real `python` process that imports ccv, says it is ready, and waits for a gate
file: the parent opens the gate once all are ready, so they hit the database together. A CLI
child then runs `ccv` exactly as `python -m ccv ARGS` would.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text

from ccv.config import Settings
from ccv.domain.enums import Status, ValidationMode
from ccv.store.engine import SQLITE_BUSY_TIMEOUT, make_engine
from ccv.store.migrate import script_head
from ccv.store.tables import fields
from ccv.vault import Vault

PG_ADMIN_URL = os.environ.get(
    "CCV_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
TENANT = "acme"
CUSTOMER = "c-1"
NAMES = ("email", "nickname", "tier")
T0 = datetime(2026, 3, 1, tzinfo=UTC)
# Generous: on a loaded machine eight interpreters start slowly; nothing waits this long when
# all is well.
READY_SECONDS = 180
EXIT_SECONDS = 300

CHILD = r"""
import json, sys, time
from pathlib import Path

gate, mode = Path(sys.argv[1]), sys.argv[2]
if mode == "cli":
    import runpy
    import ccv.cli.app  # noqa: F401 - imported before the gate, like the other children
else:
    from datetime import datetime
    from ccv.config import Settings
    from ccv.domain.enums import ValidationMode
    from ccv.vault import Vault
(gate.parent / f"ready-{sys.argv[3]}").touch()
while not gate.exists():
    time.sleep(0.002)
if mode == "cli":
    sys.argv = ["ccv", *sys.argv[4:]]
    runpy.run_module("ccv", run_name="__main__", alter_sys=True)
else:
    url, plan = sys.argv[4], json.loads(Path(sys.argv[5]).read_text())
    saved = []
    with Vault(Settings(database_url=url)) as vault:
        for tenant, customer, name, value, at in plan:
            version = vault.save_field(
                tenant, customer, name, value,
                collected_at=datetime.fromisoformat(at),
                validation_mode=ValidationMode.DISABLED,
                actor="writer-" + sys.argv[3],
            )
            saved.append(version.id)
    print(json.dumps(saved))
"""


@dataclass
class Child:
    args: list[str]
    process: subprocess.Popen[bytes] | None = None
    rc: int | None = None
    stdout: str = ""
    stderr: str = ""


def _env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"CCV_REDIS_URL", "CCV_CONFIG_FILE"}}
    env.pop("CCV_CONFIG", None)
    env["CCV_DATABASE_URL"] = database_url
    env.update(extra)
    return env


def cli(*args: str | Path) -> list[str]:
    return ["cli", *(str(a) for a in args)]


def saver(url: str, plan_file: Path) -> list[str]:
    return ["save", url, str(plan_file)]


def run_together(
    workdir: Path, database_url: str, commands: Sequence[list[str]], **env: str
) -> list[Child]:
    """Start one child per command, open the gate once every one is ready, wait for all."""
    gates = workdir / f"gates-{uuid.uuid4().hex[:8]}"
    gates.mkdir()
    gate = gates / "go"
    children = [Child(args) for args in commands]
    environment = _env(database_url, **env)
    logs = []
    try:
        for index, child in enumerate(children):
            out = (gates / f"out-{index}").open("w+b")
            err = (gates / f"err-{index}").open("w+b")
            logs.append((out, err))
            child.process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    CHILD,
                    str(gate),
                    child.args[0],
                    str(index),
                    *child.args[1:],
                ],
                stdout=out,
                stderr=err,
                cwd=workdir,
                env=environment,
            )
        deadline = time.monotonic() + READY_SECONDS
        while not all((gates / f"ready-{i}").exists() for i in range(len(children))):
            early = [c for c in children if c.process is not None and c.process.poll() is not None]
            if early or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        gate.touch()
        for child in children:
            assert child.process is not None
            try:
                child.rc = child.process.wait(timeout=EXIT_SECONDS)
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.rc = child.process.wait()
    finally:
        for child in children:
            if child.process is not None and child.process.poll() is None:
                child.process.kill()
                child.process.wait()
        for (out, err), child in zip(logs, children, strict=False):
            out.seek(0)
            err.seek(0)
            child.stdout = out.read().decode(errors="replace")
            child.stderr = err.read().decode(errors="replace")
            out.close()
            err.close()
    return children


def assert_all_succeeded(children: Sequence[Child]) -> None:
    report = "\n".join(
        f"[{i}] {' '.join(c.args[:3])}: exit {c.rc}\n{c.stderr[-2000:]}"
        for i, c in enumerate(children)
    )
    assert all(c.rc == 0 for c in children), report
    assert not any("locked" in c.stderr for c in children), report
    assert not any("Traceback" in c.stderr for c in children), report


def write_records(path: Path, records: Sequence[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def field_record(
    customer: str, name: str, value: str, at: datetime, **extra: Any
) -> dict[str, Any]:
    return {
        "kind": "field",
        "tenant": TENANT,
        "customer": customer,
        "id": str(uuid.uuid4()),
        "name": name,
        "value": value,
        "source": "user_provided",
        "collected_at": at.isoformat(),
        **extra,
    }


# --- The SQLite engine on its own ---------------------------------------------------------------


def test_sqlite_connections_wait_for_locks_and_use_wal(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'ccv.db'}")
    try:
        with engine.connect() as conn:
            busy = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
            mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
    finally:
        engine.dispose()
    assert busy == int(SQLITE_BUSY_TIMEOUT * 1000)
    assert mode == "wal"


def test_a_timeout_in_the_sqlite_url_sets_the_busy_timeout(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'ccv.db'}?timeout=75")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 75000
    finally:
        engine.dispose()


def test_write_transaction_takes_the_sqlite_write_lock_up_front(tmp_path: Path) -> None:
    path = tmp_path / "ccv.db"
    with Vault(Settings(database_url=f"sqlite:///{path}")) as vault, vault.db.write():
        # Nothing written yet, yet the lock is held: a second writer cannot start.
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        finally:
            other.close()


def test_switching_a_new_file_to_wal_waits_for_a_writer_in_rollback_mode(tmp_path: Path) -> None:
    # SQLite refuses the switch at once, without the busy handler, while another connection
    # holds the write lock of a file in rollback mode: the engine retries instead.
    path = tmp_path / "ccv.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO t VALUES (1)")
    release = threading.Timer(0.5, lambda: holder.execute("COMMIT"))
    release.start()
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        release.join()
        holder.close()
        engine.dispose()


# --- Eight writers on the same fields of one customer ------------------------------------------

WRITERS = 8
PER_WRITER = 30


def test_concurrent_writer_processes_keep_one_active_newest_version(
    database_url: str, tmp_path: Path
) -> None:
    # Half the writers import a file through the CLI, half save one field at a time through
    # the library. Each collected_at is used twice (ties go to the larger id), shuffled across
    # writers so that each also delivers late arrivals.
    total = WRITERS * PER_WRITER
    slots = list(range(total // 2)) * 2
    random.Random(11).shuffle(slots)
    commands: list[list[str]] = []
    imported: dict[str, tuple[datetime, str]] = {}  # id -> (collected_at, name)
    planned: list[list[tuple[datetime, str]]] = []  # per saver: (collected_at, name)
    for writer in range(WRITERS):
        steps = [
            (T0 + timedelta(seconds=slots[writer * PER_WRITER + step]), NAMES[(writer + step) % 3])
            for step in range(PER_WRITER)
        ]
        if writer % 2 == 0:
            records = [
                field_record(CUSTOMER, name, f"w{writer}-s{step}", at)
                for step, (at, name) in enumerate(steps)
            ]
            imported.update(
                {r["id"]: (at, name) for r, (at, name) in zip(records, steps, strict=True)}
            )
            path = write_records(tmp_path / f"writer-{writer}.jsonl", records)
            commands.append(cli("profile", "import", path, "--validation", "disabled", "--json"))
        else:
            plan = [
                [TENANT, CUSTOMER, name, f"w{writer}-s{step}", at.isoformat()]
                for step, (at, name) in enumerate(steps)
            ]
            plan_file = tmp_path / f"writer-{writer}.json"
            plan_file.write_text(json.dumps(plan), encoding="utf-8")
            planned.append(steps)
            commands.append(saver(database_url, plan_file))

    children = run_together(tmp_path, database_url, commands)
    assert_all_succeeded(children)

    written: dict[str, tuple[datetime, str]] = dict(imported)
    for child in children:
        if child.args[0] == "cli":
            counts = json.loads(child.stdout)
            assert (counts["records"], counts["inserted"], counts["rejected"]) == (
                PER_WRITER,
                PER_WRITER,
                0,
            ), counts
    savers = [c for c in children if c.args[0] == "save"]
    for child, steps in zip(savers, planned, strict=True):
        ids = json.loads(child.stdout)
        assert len(ids) == len(steps) == len(set(ids))
        written.update(zip(ids, steps, strict=True))
    assert len(written) == total

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(
                    fields.c.id, fields.c.name, fields.c.status, fields.c.superseded_by_id
                ).where(fields.c.tenant == TENANT, fields.c.customer == CUSTOMER)
            ).all()
    finally:
        engine.dispose()
    by_id = {row.id: row for row in rows}
    assert sorted(by_id) == sorted(written)  # every version stored, none lost, none extra
    with Vault(Settings(database_url=database_url)) as vault:
        profile = vault.get_profile(TENANT, CUSTOMER)
        for name in NAMES:
            versions = sorted(
                ((at, item) for item, (at, n) in written.items() if n == name), reverse=True
            )
            newest = versions[0][1]
            active = [row.id for row in rows if row.name == name and row.status == "active"]
            assert active == [newest], name
            assert profile.fields[name].id == newest
            for at, item in versions[1:]:
                row = by_id[item]
                assert row.status == Status.SUPERSEDED.value
                successor = written[row.superseded_by_id][0], row.superseded_by_id
                assert successor > (at, item)
            history = vault.history(TENANT, CUSTOMER, name)
            assert [v.id for v in history] == [item for _, item in versions]


# --- First use of a new SQLite file, and `db upgrade` racing -----------------------------------


def test_processes_starting_together_on_a_new_sqlite_file_all_succeed(tmp_path: Path) -> None:
    path = tmp_path / "new" / "ccv.db"
    path.parent.mkdir()
    url = f"sqlite:///{path}"
    commands: list[list[str]] = []
    for index in range(2):
        records = [
            field_record(f"c-{index}", name, f"v{index}", T0 + timedelta(minutes=index))
            for name in NAMES
        ]
        source = write_records(tmp_path / f"first-{index}.jsonl", records)
        commands.append(cli("profile", "import", source, "--validation", "disabled", "--json"))
    commands += [cli("profile", "expire", "--tenant", TENANT, "--json")] * 2
    commands += [cli("db", "upgrade")] * 2
    plan_file = tmp_path / "first-save.json"
    plan_file.write_text(json.dumps([[TENANT, "c-9", "email", "x", T0.isoformat()]]))
    commands += [saver(url, plan_file)] * 2

    assert not path.exists()
    children = run_together(tmp_path, url, commands)
    assert_all_succeeded(children)

    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (script_head(),)
        ]
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("SELECT count(*) FROM fields").fetchone() == (2 * len(NAMES) + 2,)
    finally:
        conn.close()


@pytest.fixture
def empty_pg_url() -> Iterator[str]:
    """A brand-new PostgreSQL database without the ccv schema, dropped afterwards."""
    name = f"ccv_procs_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any failure means "no server"
        admin.dispose()
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required under CI=true: {exc}")
        pytest.skip(f"PostgreSQL not available: {str(exc).splitlines()[0]}")
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_concurrent_db_upgrades_on_a_new_postgresql_database_all_succeed(
    empty_pg_url: str, tmp_path: Path
) -> None:
    children = run_together(tmp_path, empty_pg_url, [cli("db", "upgrade", "--json")] * 4)
    assert_all_succeeded(children)
    assert all(json.loads(c.stdout)["up_to_date"] for c in children)
    engine = create_engine(empty_pg_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).all() == [
                (script_head(),)
            ]
    finally:
        engine.dispose()


# --- An import beside a running expiry sweep ---------------------------------------------------

EXPIRING = 300


def test_import_beside_a_running_expiry_sweep_both_succeed(
    database_url: str, tmp_path: Path
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    seeded = [
        field_record(
            f"old-{i // len(NAMES)}",
            NAMES[i % len(NAMES)],
            f"old-{i}",
            now - timedelta(days=30),
            expires_at=(now - timedelta(days=1)).isoformat(),
        )
        for i in range(EXPIRING)
    ]
    with Vault(Settings(database_url=database_url)) as vault:
        result = vault.import_files(
            [write_records(tmp_path / "seed.jsonl", seeded)],
            validation_mode=ValidationMode.DISABLED,
        )
        assert (result.inserted, result.rejected) == (EXPIRING, 0), result.errors
    fresh = [
        [
            field_record(f"new-{batch}-{i}", name, f"new-{i}", now - timedelta(hours=1))
            for i in range(50)
            for name in NAMES
        ]
        for batch in range(2)
    ]
    commands = [
        cli("profile", "expire", "--tenant", TENANT, "--apply", "--json"),
        *(
            cli(
                "profile",
                "import",
                write_records(tmp_path / f"new-{b}.jsonl", records),
                "--validation",
                "disabled",
                "--json",
            )
            for b, records in enumerate(fresh)
        ),
    ]
    # Small sweep batches: the sweep commits many times while the imports write.
    children = run_together(tmp_path, database_url, commands, CCV_BATCH_SIZE="10")
    assert_all_succeeded(children)

    sweep = json.loads(children[0].stdout)
    assert sweep["applied"] is True
    assert sweep["total"] == EXPIRING
    for child, records in zip(children[1:], fresh, strict=True):
        counts = json.loads(child.stdout)
        assert (counts["inserted"], counts["rejected"]) == (len(records), 0), counts
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            statuses = {
                (prefix, status): n
                for prefix, status, n in conn.execute(
                    text(
                        "SELECT substr(customer, 1, 3), status, count(*) FROM fields "
                        "WHERE tenant = :t GROUP BY 1, 2"
                    ),
                    {"t": TENANT},
                )
            }
    finally:
        engine.dispose()
    assert statuses == {
        ("old", "expired"): EXPIRING,
        ("new", "active"): sum(len(r) for r in fresh),
    }


# --- Eight processes creating one channel identity ---------------------------------------------

CREATORS = 8


def test_concurrent_resolve_create_of_one_identity_yields_one_customer(
    database_url: str, tmp_path: Path
) -> None:
    resolve = cli(
        "identity", "resolve", "--tenant", TENANT, "--channel", "whatsapp",
        "--id", "+4915112345678", "--create", "--json",
    )  # fmt: skip
    children = run_together(tmp_path, database_url, [resolve] * CREATORS)
    assert_all_succeeded(children)
    answers = [json.loads(child.stdout) for child in children]
    customers = {answer["customer"] for answer in answers}
    assert len(customers) == 1, answers
    assert sorted(answer["created"] for answer in answers) == [False] * (CREATORS - 1) + [True]
    (customer,) = customers
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            linked = conn.execute(text("SELECT customer FROM identities")).all()
            # The losers' made-up customers are gone: one profile, the winner's.
            made = conn.execute(text("SELECT customer FROM profiles")).all()
            links = conn.execute(
                text("SELECT count(*) FROM audit_events WHERE event = 'identity_link'")
            ).scalar()
    finally:
        engine.dispose()
    assert [row[0] for row in linked] == [customer]
    assert [row[0] for row in made] == [customer]
    assert links == 1
