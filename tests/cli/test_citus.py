"""ccv on a Citus cluster (SPEC §9): run when CCV_TEST_CITUS_URL names a coordinator with
workers added, reported as not run otherwise (Citus is in none of the package registries).

Each test module gets a database of its own on every node of the cluster, with the extension
and the nodes added, dropped at the end. Commands about one tenant run with
`citus.multi_task_query_log_level = error`: a statement that is not routed to one shard group
fails the command.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ccv.config import Settings
from ccv.store.claims import Claimant
from ccv.store.tables import metadata
from ccv.vault import Vault

from .helpers import DEMO, TENANT, Ccv
from .test_export import _customers, _histories, _move, _normal, _source_vault

CITUS_URL = os.environ.get("CCV_TEST_CITUS_URL")
ROUTER_ONLY = "-c citus.multi_task_query_log_level=error"
T = ("--tenant", TENANT)
NOW = "2026-11-01T00:00:00Z"

pytestmark = [
    pytest.mark.citus,
    pytest.mark.skipif(
        not CITUS_URL, reason="Citus tests not run: CCV_TEST_CITUS_URL is not set (see README)"
    ),
]


def _autocommit(url: Any) -> Any:
    return create_engine(url, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="module")
def citus_url() -> Iterator[str]:
    """A new database on the coordinator and every worker, with Citus and the nodes added."""
    assert CITUS_URL
    coordinator = make_url(CITUS_URL)
    name = f"ccv_citus_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = _autocommit(coordinator)
    with admin.connect() as conn:
        workers = conn.execute(
            text("SELECT node_name, node_port FROM citus_get_active_worker_nodes() ORDER BY 2")
        ).all()
    admin.dispose()
    assert len(workers) >= 2, f"{CITUS_URL} has {len(workers)} worker(s); the tests need 2"
    nodes = [coordinator] + [coordinator.set(host=host, port=port) for host, port in workers]
    for node in nodes:
        engine = _autocommit(node.set(database="postgres"))
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        engine = _autocommit(node.set(database=name))
        with engine.connect() as conn:
            conn.execute(text("CREATE EXTENSION citus"))
        engine.dispose()
    engine = _autocommit(coordinator.set(database=name))
    with engine.connect() as conn:
        conn.execute(
            text("SELECT citus_set_coordinator_host(:host, :port)"),
            {"host": coordinator.host, "port": coordinator.port or 5432},
        )
        for host, port in workers:
            conn.execute(text("SELECT citus_add_node(:host, :port)"), {"host": host, "port": port})
    engine.dispose()
    try:
        yield coordinator.set(database=name).render_as_string(hide_password=False)
    finally:
        for node in nodes:
            engine = _autocommit(node.set(database="postgres"))
            with engine.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            engine.dispose()


@pytest.fixture
def citus(citus_url: str) -> Iterator[Ccv]:
    """The module's Citus database, migrated and emptied."""
    ccv = Ccv(citus_url)
    ccv.json("db", "upgrade")
    yield ccv
    engine = create_engine(citus_url)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE " + ", ".join(sorted(metadata.tables))))
    engine.dispose()


@pytest.fixture
def router_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on, a statement that Citus cannot route to one shard group is an error."""
    monkeypatch.setenv("PGOPTIONS", ROUTER_ONLY)


def _distribution(url: str) -> dict[str, tuple[str, str, int]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT logicalrelid::text, partmethod::text,"
                " column_to_column_name(logicalrelid, partkey), colocationid"
                " FROM pg_dist_partition"
            )
        ).all()
    engine.dispose()
    return {table: (method, column, group) for table, method, column, group in rows}


def test_upgrade_distributes_every_table_by_tenant_colocated_and_idempotently(
    citus: Ccv, citus_url: str
) -> None:
    distributed = _distribution(citus_url)
    # Every table ccv keeps is tenant-scoped, and every one is hash-distributed on tenant.
    assert all("tenant" in table.c for table in metadata.tables.values())
    assert set(distributed) == set(metadata.tables)
    assert {(method, column) for method, column, _ in distributed.values()} == {("h", "tenant")}
    assert len({group for _, _, group in distributed.values()}) == 1  # colocated

    current = citus.json("db", "current")
    assert current["citus"]["workers"] == 2 and current["citus"]["version"]
    shown = citus("db", "current")
    assert "Citus" in shown.stdout and "coordinator, 2 worker(s)" in shown.stdout
    # Again: nothing to run, nothing changes. Down one revision and up: the table that
    # revision creates is distributed again, in the same colocation group.
    assert citus.json("db", "upgrade")["ran"] == []
    assert _distribution(citus_url) == distributed
    citus.json("db", "downgrade", "0005")
    assert "sweep_claims" not in _distribution(citus_url)
    assert citus.json("db", "upgrade")["ran"] == ["0006"]
    again = _distribution(citus_url)
    assert set(again) == set(distributed)
    assert {group for _, _, group in again.values()} == {
        group for _, _, group in distributed.values()
    }


def test_a_vault_built_on_citus_one_router_query_at_a_time_exports_what_it_shows(
    citus: Ccv, router_only: None, tmp_path: Path
) -> None:
    # The demo, the lifecycle cases (deletes, merges, identities) and the sweeps of one tenant.
    _source_vault(citus, tmp_path)
    customers = _customers(citus) + ["m-0", "m-1"]
    on_citus = _histories(citus, customers)
    assert on_citus["m-0"]["merged_into"] == "m-2"
    trace = citus.json("profile", "trace", "bef7e268-ffe9-46ab-a058-1ccace1d62e0", *T)
    assert trace["chain"], trace
    assert citus.json("requirements", "apply", DEMO / "requirements")["created"] == 27
    gaps = citus.json("profile", "gaps", "c-1008", *T, "--scenario", "refund-request")
    assert {"missing", "satisfied"} <= gaps.keys() and gaps["satisfied"]
    found = citus.json("profile", "list", *T, "--where", "nickname=Cristina")
    assert [c["customer"] for c in found["customers"]] == ["m-2"]
    report = citus.json("report", *T, "--now", NOW)
    assert report["tenants"][TENANT]["lineage"]["max_depth"] >= 2
    assert citus.json("audit", *T, "--limit", "5")["events"]

    email = ("--channel", "email", "--id", "cris@example.com")
    resolved = citus.json("identity", "resolve", *T, *email)
    assert resolved["customer"] == "m-2"

    sqlite = Ccv(f"sqlite:///{tmp_path / 'from-citus.db'}")
    _move(citus, sqlite, tmp_path, "from-citus.jsonl")
    assert _histories(sqlite, customers) == on_citus
    assert _views(sqlite, customers) == _views(citus, customers)
    assert sqlite.json("report", *T, "--now", NOW) == report


def _views(ccv: Ccv, customers: list[str]) -> dict[str, Any]:
    """Each customer's current view (the hot read path)."""
    seen = {}
    for customer in customers:
        profile = ccv.json("profile", "show", customer, *T)  # masked: the hot path
        profile.pop("as_of")
        profile["fields"] = {name: _normal(v) for name, v in profile["fields"].items()}
        profile["assets"] = [_normal(a) for a in profile["assets"]]
        seen[customer] = profile
    return seen


def test_what_another_vault_exported_reads_back_the_same_from_citus(
    citus: Ccv, router_only: None, tmp_path: Path
) -> None:
    source = _source_vault(Ccv(f"sqlite:///{tmp_path / 'source.db'}"), tmp_path)
    customers = _customers(source) + ["m-0", "m-1"]
    _move(source, citus, tmp_path, "to-citus.jsonl.gz")
    assert _histories(citus, customers) == _histories(source, customers)


def test_all_tenant_sweeps_and_reports_run_as_multi_shard_statements(
    citus: Ccv, citus_url: str, tmp_path: Path
) -> None:
    source = _source_vault(Ccv(f"sqlite:///{tmp_path / 'source.db'}"), tmp_path)
    _move(source, citus, tmp_path, "to-citus.jsonl")
    second = tmp_path / "second.jsonl"
    second.write_text(
        '{"tenant": "globex", "customer": "g-1", "name": "nickname", "value": "G",'
        ' "collected_at": "2026-01-01T00:00:00Z", "expires_at": "2026-02-01T00:00:00Z"}\n'
    )
    for ccv in (source, citus):
        ccv.json("profile", "import", second, "--validation", "disabled")
    for command in (("profile", "expire"), ("profile", "orphans")):
        dry = [ccv.json(*command, "--all-tenants")["tenants"] for ccv in (citus, source)]
        assert [{t: s["count"] for t, s in sweep.items()} for sweep in dry] == [
            {t: s["count"] for t, s in dry[1].items()}
        ] * 2
        applied = [ccv.json(*command, "--all-tenants", "--apply") for ccv in (citus, source)]
        assert applied[0]["tenants"] == applied[1]["tenants"]
    assert citus.json("report", "--all-tenants", "--now", NOW) == source.json(
        "report", "--all-tenants", "--now", NOW
    )

    # A scheduled run's claims, on the distributed claims table.
    as_of = datetime(2026, 12, 1, tzinfo=UTC)
    with Vault(Settings(database_url=citus_url)) as vault:
        claimant = Claimant(holder="prefect:expire/test", as_of=as_of)
        first = vault.expire(all_tenants=True, now=as_of, apply=True, claimant=claimant)
        assert first.skipped == [] and set(first.tenants) == {TENANT, "globex"}
        again = vault.expire(all_tenants=True, now=as_of, apply=True, claimant=claimant)
        assert again.skipped == sorted([TENANT, "globex"]) and again.tenants == {}
