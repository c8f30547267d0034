"""Alembic migrations on both dialects, and the schema check every command runs first."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, inspect, text

from ccv.config import Settings
from ccv.errors import NotFoundError, SchemaOutdatedError
from ccv.service import admin
from ccv.store import migrate
from ccv.store.engine import make_engine
from ccv.store.migrate import HEAD_REVISION, downgrade, script_head, upgrade
from ccv.vault import Vault

PG_ADMIN_URL = os.environ.get(
    "CCV_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
CCV_TABLES = {
    "profiles",
    "fields",
    "assets",
    "field_definitions",
    "scenarios",
    "scenario_requirements",
    "audit_events",
    "identities",
}
SCHEMA = "tenant: acme\nagent: bot\nfields:\n  - name: nickname\n"
RECORD = (
    '{"tenant": "acme", "customer": "c-1", "id": "00000000-0000-4000-8000-000000000001", '
    '"name": "nickname", "value": "Ana", "collected_at": "2026-03-01T10:00:00Z"}\n'
)


@pytest.fixture
def fresh_pg_url(pg_url: str) -> Iterator[str]:
    """An empty PostgreSQL database of this test alone (`pg_url` skips when there is no server)."""
    name = f"ccv_mig_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh.db'}"
    url: str = request.getfixturevalue("fresh_pg_url")
    return url


def revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def tables(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(inspect(conn).get_table_names()) & CCV_TABLES


def fill(url: str, tmp_path: Path) -> None:
    """Definitions, a field, a profile and audit events: a row in most tables."""
    schema, records = tmp_path / "bot.yaml", tmp_path / "records.jsonl"
    schema.write_text(SCHEMA, encoding="utf-8")
    records.write_text(RECORD, encoding="utf-8")
    with Vault(Settings(database_url=url)) as vault:
        vault.apply_schema([schema])
        assert vault.import_files([records]).inserted == 1
        vault.get_profile("acme", "c-1", reveal_pii=True)


def test_code_head_revision_matches_the_migration_scripts() -> None:
    assert script_head() == HEAD_REVISION


def test_migrations_go_up_down_and_up_again_with_data(empty_url: str, tmp_path: Path) -> None:
    engine = make_engine(empty_url)
    try:
        upgrade(engine, "head")
        assert revision(engine) == HEAD_REVISION
        assert tables(engine) == CCV_TABLES
        fill(empty_url, tmp_path)

        downgrade(engine, "base")
        assert revision(engine) is None
        assert tables(engine) == set()

        upgrade(engine, "head")
        assert revision(engine) == HEAD_REVISION
        assert tables(engine) == CCV_TABLES
        with Vault(Settings(database_url=empty_url)) as vault, pytest.raises(NotFoundError):
            vault.get_profile("acme", "c-1")
        fill(empty_url, tmp_path)  # the re-created schema takes the same data again
    finally:
        engine.dispose()


def _rows(engine: Engine, sql: str) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(sql))]


def test_0003_judges_stored_values_and_renames_flow_actors_both_ways(empty_url: str) -> None:
    """Data written by 0002's ccv: 0003 stamps every active value by the definitions it finds
    and renames flow actors; the downgrade gives the 0002 schema and actors back."""
    engine = make_engine(empty_url)
    try:
        upgrade(engine, "0002")
        now = "2026-01-01 00:00:00"
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO field_definitions (tenant, agent, name, id, value_type,"
                    " allowed_values, validation_mode, required_verification, is_pii, enabled,"
                    " updated_at) VALUES ('acme', 'bot', 'tier', 'd-1', 'enum', :allowed,"
                    " 'warn', false, false, true, :now)"
                ),
                {"allowed": '["gold", "silver"]', "now": now},
            )
            for n, (name, value, status) in enumerate(
                [
                    ("tier", '"gold"', "active"),
                    ("tier", '"bronze"', "active"),
                    ("tier", '"bronze"', "superseded"),
                    ("nickname", '"Ana"', "active"),
                ]
            ):
                conn.execute(
                    text(
                        "INSERT INTO fields (tenant, id, customer, name, value, source, status,"
                        " confidence, requires_confirmation, verified, collected_at, updated_at,"
                        " content_hash) VALUES ('acme', :id, :customer, :name, :value,"
                        " 'imported', :status, 1.0, false, false, :now, :now, 'h')"
                    ),
                    {
                        "id": f"i-{n}",
                        "customer": f"c-{n}",
                        "name": name,
                        "value": value,
                        "status": status,
                        "now": now,
                    },
                )
            conn.execute(
                text(
                    "INSERT INTO audit_events (tenant, event, actor, at) VALUES"
                    " ('acme', 'status_change', 'flow:expire/run-1', :now),"
                    " ('acme', 'status_change', 'cli:profile expire', :now)"
                ),
                {"now": now},
            )

        upgrade(engine, "0003")
        assert _rows(engine, "SELECT id, invalid FROM fields ORDER BY id") == [
            ("i-0", False),
            ("i-1", True),
            ("i-2", None),  # not active: not judged
            ("i-3", None),  # no definition of nickname
        ]
        assert sorted(_rows(engine, "SELECT actor FROM audit_events")) == [
            ("cli:profile expire",),
            ("prefect:expire/run-1",),
        ]

        downgrade(engine, "0002")
        with engine.connect() as conn:
            assert "invalid" not in {c["name"] for c in inspect(conn).get_columns("fields")}
            indexes = {i["name"] for i in inspect(conn).get_indexes("fields")}
        assert not indexes & {
            "ix_fields_status",
            "ix_fields_invalid",
            "ix_fields_derived",
            "ix_fields_confirm",
        }
        assert "uq_fields_active" in indexes  # the partial unique index survives
        assert sorted(_rows(engine, "SELECT actor FROM audit_events")) == [
            ("cli:profile expire",),
            ("flow:expire/run-1",),
        ]
        assert len(_rows(engine, "SELECT id FROM fields")) == 4
    finally:
        engine.dispose()


def test_0004_adds_identities_and_aliases_and_goes_back_keeping_the_versions(
    empty_url: str, tmp_path: Path
) -> None:
    """Data of 0003's ccv: 0004 takes identities and merges; the downgrade drops them and
    keeps every version where the merge put it."""
    engine = make_engine(empty_url)
    try:
        upgrade(engine, "0003")
        with engine.begin() as conn:
            for n, customer in enumerate(("c-1", "c-2")):
                conn.execute(
                    text(
                        "INSERT INTO profiles (tenant, customer, created_at, updated_at)"
                        " VALUES ('acme', :customer, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
                    ),
                    {"customer": customer},
                )
                conn.execute(
                    text(
                        "INSERT INTO fields (tenant, id, customer, name, value, source, status,"
                        " confidence, requires_confirmation, verified, collected_at, updated_at,"
                        " content_hash) VALUES ('acme', :id, :customer, 'nickname', '\"A\"',"
                        " 'imported', 'active', 1.0, false, false, :at, :at, 'h')"
                    ),
                    {"id": f"i-{n}", "customer": customer, "at": f"2026-0{n + 1}-01 00:00:00"},
                )
        upgrade(engine, "head")  # 0004 and what follows: the vault needs the head
        with Vault(Settings(database_url=empty_url)) as vault:
            vault.link_identity("acme", "c-2", "web", "cookie-1")
            vault.merge_customers("acme", "c-2", "c-1", apply=True)
            assert vault.get_profile("acme", "c-2").merged_into == "c-1"
        assert _rows(engine, "SELECT customer, merged_into FROM profiles ORDER BY customer") == [
            ("c-1", None),
            ("c-2", "c-1"),
        ]

        downgrade(engine, "0003")
        with engine.connect() as conn:
            assert not inspect(conn).has_table("identities")
            columns = {c["name"] for c in inspect(conn).get_columns("profiles")}
            indexes = {i["name"] for i in inspect(conn).get_indexes("profiles")}
        assert not columns & {"merged_into", "merged_at"}
        assert "ix_profiles_merged" not in indexes
        assert _rows(engine, "SELECT id, customer, status FROM fields ORDER BY id") == [
            ("i-0", "c-1", "superseded"),
            ("i-1", "c-1", "active"),
        ]
        upgrade(engine, "head")
        assert _rows(engine, "SELECT count(*) FROM identities") == [(0,)]
    finally:
        engine.dispose()


def test_postgresql_without_schema_is_not_migrated_by_reads(fresh_pg_url: str) -> None:
    with (
        Vault(Settings(database_url=fresh_pg_url)) as vault,
        pytest.raises(SchemaOutdatedError) as caught,
    ):
        vault.get_profile("acme", "c-1")
    assert caught.value.exit_code == 5
    assert "run `ccv db upgrade`" in str(caught.value)
    engine = create_engine(fresh_pg_url)
    try:
        assert tables(engine) == set()
    finally:
        engine.dispose()


def test_postgresql_schema_behind_the_code_stops_with_upgrade_advice(
    fresh_pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(fresh_pg_url)
    try:
        upgrade(engine, "head")
    finally:
        engine.dispose()
    # The code of the next release: its head is one revision further.
    following = f"{int(HEAD_REVISION) + 1:04d}"
    monkeypatch.setattr(migrate, "HEAD_REVISION", following)
    with (
        Vault(Settings(database_url=fresh_pg_url)) as vault,
        pytest.raises(SchemaOutdatedError) as caught,
    ):
        vault.get_profile("acme", "c-1")
    assert caught.value.exit_code == 5
    assert f"at revision {HEAD_REVISION}, this ccv needs {following}" in str(caught.value)
    assert "run `ccv db upgrade`" in str(caught.value)


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_schema_of_a_newer_ccv_stops_every_command_including_upgrade(
    dialect: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'newer.db'}"
        if dialect == "sqlite"
        else request.getfixturevalue("fresh_pg_url")
    )
    engine = create_engine(url)
    try:
        upgrade(engine, "head")
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        engine.dispose()
    with Vault(Settings(database_url=url)) as vault:
        with pytest.raises(SchemaOutdatedError) as caught:
            vault.get_profile("acme", "c-1")
        assert caught.value.exit_code == 5
        message = str(caught.value)
        assert "revision 9999, which this ccv does not know" in message
        assert "upgraded by a newer ccv" in message
        # Upgrading cannot help: it says the same instead of failing inside Alembic.
        with pytest.raises(SchemaOutdatedError) as upgrading:
            admin.upgrade(vault.db)
        assert str(upgrading.value) == message
    engine = create_engine(url)
    try:
        assert revision(engine) == "9999"  # left alone
    finally:
        engine.dispose()


def test_sqlite_is_created_and_migrated_on_first_use(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'first-use.db'}"
    with Vault(Settings(database_url=url)) as vault, pytest.raises(NotFoundError):
        vault.get_profile("acme", "c-1")
    engine = create_engine(url)
    try:
        assert revision(engine) == HEAD_REVISION
        assert tables(engine) == CCV_TABLES
    finally:
        engine.dispose()
