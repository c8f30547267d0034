"""The hot read (ccv.store.reads + the models built without validation) gives exactly what the
general read gives: the same models, the same JSON, for every customer of the demo, with PII,
assets and their derived fields, identities, expired values, aliases; through the cache's entry
form too (rows kept in Redis as JSON and read back)."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from ccv.domain.enums import ValidationMode
from ccv.domain.models import Profile
from ccv.domain.timeutil import utcnow
from ccv.errors import BackendError, NotFoundError
from ccv.service import profiles
from ccv.vault import Vault

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"

TENANT = "northwind-bank"


def _slow(vault: Vault, customer: str) -> Profile:
    with vault.db.read() as conn:
        return profiles.read_profile(conn, TENANT, customer)


def _customers(vault: Vault) -> list[str]:
    found = vault.list_customers(TENANT, limit=1000)
    return [c.customer for c in found.customers]


@pytest.fixture
def rich_vault(demo_vault: Vault, tmp_path: Path) -> Vault:
    vault = demo_vault
    vault.import_files([FIXTURES / "demo" / "customers.csv"], tenant=TENANT)
    vault.link_identity(TENANT, "c-1001", "email", "ana.lima@example.com", verified=True)
    vault.link_identity(TENANT, "c-1002", "web", "cookie-7f3a")
    soon = (utcnow() + timedelta(seconds=2)).isoformat()
    records = tmp_path / "extra.jsonl"
    records.write_bytes(
        orjson.dumps(
            {
                "tenant": TENANT,
                "customer": "c-1003",
                "name": "nickname",
                "value": "Zé",
                "expires_at": soon,
            }  # fmt: skip
        )
        + b"\n"
        + orjson.dumps(
            {
                "tenant": TENANT,
                "customer": "c-1004",
                "name": "nickname",
                "value": {"a": [1, 2.5]},
                "source_metadata": {"quote": "call me Zé", "turn": 3},
            }  # fmt: skip
        )
    )
    result = vault.import_files([records], validation_mode=ValidationMode.WARN)
    assert result.rejected == 0, result.errors
    vault.merge_customers(TENANT, "c-1005", "c-1006", apply=True)
    return vault


def test_the_hot_read_is_the_general_read(rich_vault: Vault) -> None:
    customers = [*_customers(rich_vault), "c-1005"]  # an alias reads its final customer
    assert len(customers) > 20
    for customer in customers:
        fast = rich_vault.get_profile(TENANT, customer)
        slow = _slow(rich_vault, customer)
        fast.as_of = slow.as_of
        assert fast == slow, customer
        assert fast.model_dump_json() == slow.model_dump_json(), customer
    masked = rich_vault.get_profile(TENANT, "c-1001")
    assert masked.fields["email"].masked and "@" in str(masked.fields["email"].value)
    assert masked.identities[0].masked
    quoted = rich_vault.get_profile(TENANT, "c-1004").fields["nickname"]
    assert quoted.value == {"a": [1, 2.5]}
    with_asset = next(
        rich_vault.get_profile(TENANT, c)
        for c in customers
        if rich_vault.get_profile(TENANT, c).assets
    )
    assert any(a.analysis_field_ids for a in with_asset.assets)


def test_the_cache_entry_form_reads_the_same(rich_vault: Vault) -> None:
    now = utcnow()
    for customer in _customers(rich_vault):
        data = profiles.read_current(rich_vault.db, TENANT, customer, now)
        cached = orjson.loads(orjson.dumps(data))  # what Redis keeps and gives back
        served = profiles.profile_from_current(cached, TENANT, customer, now)
        slow = _slow(rich_vault, customer)
        served.as_of = slow.as_of
        assert served == slow, customer


def test_ttl_on_read_and_not_found(rich_vault: Vault) -> None:
    later = utcnow() + timedelta(seconds=5)
    data = profiles.read_current(rich_vault.db, TENANT, "c-1003", utcnow())
    assert "nickname" in {row["name"] for row in data["fields"]}
    cached = orjson.loads(orjson.dumps(data))
    served = profiles.profile_from_current(cached, TENANT, "c-1003", later)
    assert "nickname" not in served.fields  # expired since it was cached
    with pytest.raises(NotFoundError):
        rich_vault.get_profile(TENANT, "nobody")


def test_threads_have_connections_of_their_own(rich_vault: Vault) -> None:
    customers = _customers(rich_vault)
    expected = {
        c: rich_vault.get_profile(TENANT, c).model_dump_json(exclude={"as_of"}) for c in customers
    }
    failures: list[str] = []

    def read() -> None:
        for _ in range(5):
            for customer in customers:
                got = rich_vault.get_profile(TENANT, customer).model_dump_json(exclude={"as_of"})
                if got != expected[customer]:
                    failures.append(customer)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_a_dead_database_is_a_backend_error(tmp_path: Path) -> None:
    from ccv.config import Settings

    with Vault(Settings(database_url="postgresql+psycopg://postgres@127.0.0.1:1/x")) as dead:
        dead.db._checked = True  # past the schema check: the read itself meets the dead server
        with pytest.raises(BackendError):
            dead.get_profile(TENANT, "c-1001")


def test_gaps_take_the_driver_once_the_plan_is_known(
    rich_vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ccv.service import gaps as gaps_service

    rich_vault.apply_requirements([FIXTURES / "demo" / "requirements"])
    scenario = sorted(p.stem for p in (FIXTURES / "demo" / "requirements").glob("*.yaml"))[0]
    customers = _customers(rich_vault)
    before = {c: rich_vault.gaps(TENANT, c, scenario).model_dump_json() for c in customers}

    def general(*args: object, **kwargs: object) -> None:
        raise AssertionError("the general gaps statement ran")

    monkeypatch.setattr(gaps_service.store, "gap_rows", general)
    after = {c: rich_vault.gaps(TENANT, c, scenario).model_dump_json() for c in customers}
    assert after == before


def test_a_customers_identities_are_looked_up_by_customer_on_sqlite(tmp_path: Path) -> None:
    """Statistics taken while the table was empty must not turn the lookup into a walk of the
    tenant's whole primary key (what an ORDER BY channel made SQLite do)."""
    import sqlite3

    from sqlalchemy.dialects import sqlite

    from ccv.config import Settings
    from ccv.store import identities, reads

    path = tmp_path / "ccv.db"
    with Vault(Settings(database_url=f"sqlite:///{path}")) as vault:
        vault.resolve_identity("t", "web", "cookie-1", create=True, customer="c-1")
    conn = sqlite3.connect(path)
    conn.execute("ANALYZE")
    conn.executemany(
        "INSERT INTO identities VALUES ('t', 'web', ?, ?, 0, '2026-01-01 00:00:00.000000', 'x')",
        [(f"cookie-{n}-x", f"c-{n}") for n in range(2, 2000)],
    )
    conn.commit()
    plan = conn.execute("EXPLAIN QUERY PLAN " + reads._SQLITE[2], ("t", "c-1")).fetchall()
    assert "USING INDEX ix_identities_customer" in str(plan), plan
    general = str(identities._OF_CUSTOMER.compile(dialect=sqlite.dialect()))
    plan = conn.execute("EXPLAIN QUERY PLAN " + general, ("t", "c-1")).fetchall()
    assert "USING INDEX ix_identities_customer" in str(plan), plan
    conn.close()
