"""`ccv db ...` on both dialects, a dead database and a PostgreSQL schema behind the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import DEAD_PG_URL, DEMO_SCHEMAS, Ccv, assert_exit, error_lines, flat, run

REVISION_KEYS = {"database", "current", "head", "up_to_date", "citus"}


@pytest.mark.postgres
def test_upgrade_current_and_downgrade_base_on_a_fresh_postgresql(fresh_pg_url: str) -> None:
    # A postgres:// URL is read as psycopg 3.
    ccv = Ccv(fresh_pg_url.replace("postgresql+psycopg://", "postgres://", 1))
    before = ccv.json("db", "current")
    assert before.keys() >= REVISION_KEYS
    assert (before["current"], before["up_to_date"]) == (None, False)
    assert before["citus"] is None  # plain PostgreSQL
    assert before["head"]

    upgraded = ccv.json("db", "upgrade")
    assert (upgraded["current"], upgraded["up_to_date"]) == (before["head"], True)
    assert ccv.json("db", "current")["current"] == before["head"]
    assert ccv.json("schema", "apply", *DEMO_SCHEMAS)["created"] == 20

    downgraded = ccv.json("db", "downgrade", "base")
    assert (downgraded["current"], downgraded["up_to_date"]) == (None, False)
    assert ccv.json("db", "current")["current"] is None
    # Upgrading again works from scratch: the downgrade removed everything.
    assert ccv.json("db", "upgrade")["up_to_date"] is True
    assert ccv.json("schema", "show", "--tenant", "northwind-bank")["definitions"] == []


def test_upgrade_current_and_downgrade_base_on_sqlite(tmp_path: Path) -> None:
    ccv = Ccv(f"sqlite:///{tmp_path / 'fresh.db'}")
    upgraded = ccv.json("db", "upgrade")
    assert upgraded.keys() >= REVISION_KEYS
    assert upgraded["up_to_date"] is True
    assert ccv.json("db", "current")["current"] == upgraded["head"]
    downgraded = ccv.json("db", "downgrade", "base")
    assert downgraded["current"] is None
    assert ccv.json("db", "upgrade")["current"] == upgraded["head"]


@pytest.mark.parametrize(
    "dialect", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_upgrade_and_downgrade_say_which_revisions_they_ran(
    dialect: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'steps.db'}"
        if dialect == "sqlite"
        else request.getfixturevalue("fresh_pg_url")
    )
    ccv = Ccv(url)
    if dialect == "sqlite":  # created and migrated on first use: start from nothing
        ccv.json("db", "downgrade", "base")
    assert ccv.json("db", "upgrade", "0002")["ran"] == ["0001", "0002"]
    upgraded = ccv.json("db", "upgrade")
    # Every revision after 0002, in order, up to the head.
    assert upgraded["ran"] == [f"{n:04d}" for n in range(3, int(upgraded["head"]) + 1)]
    assert "0004" in upgraded["ran"]
    assert ccv.json("db", "upgrade")["ran"] == []  # nothing left to run
    assert ccv.json("db", "downgrade", "0002")["ran"] == list(reversed(upgraded["ran"]))
    as_text = ccv("db", "downgrade", "base")
    assert_exit(as_text, 0)
    assert [line.strip() for line in as_text.stdout.splitlines()[1:]] == ["ran 0002", "ran 0001"]


def test_sqlite_is_created_and_migrated_on_first_use(tmp_path: Path) -> None:
    ccv = Ccv(f"sqlite:///{tmp_path / 'new.db'}")
    assert ccv.json("schema", "show", "--tenant", "acme")["definitions"] == []
    assert ccv.json("db", "current")["up_to_date"] is True


@pytest.mark.postgres
def test_an_outdated_postgresql_schema_says_to_run_db_upgrade(fresh_pg_url: str) -> None:
    ccv = Ccv(fresh_pg_url)
    for args in (
        ["profile", "show", "c-1001", "--tenant", "acme"],
        ["schema", "show", "--tenant", "acme"],
        ["profile", "expire", "--all-tenants"],
    ):
        result = ccv.fails(*args, code=5)
        assert "ccv db upgrade" in flat(result.stderr)
        assert len(error_lines(result)) == 1


@pytest.mark.postgres
def test_an_outdated_postgresql_schema_is_not_migrated_behind_the_users_back(
    fresh_pg_url: str,
) -> None:
    ccv = Ccv(fresh_pg_url)
    ccv.fails("schema", "show", "--tenant", "acme", code=5)
    assert ccv.json("db", "current")["current"] is None


@pytest.mark.parametrize(
    "args",
    [
        ["profile", "show", "c-1001", "--tenant", "acme"],
        ["profile", "import", "in.jsonl"],
        ["db", "current"],
        ["schema", "apply", "s.yaml"],
    ],
    ids=["show", "import", "db-current", "schema-apply"],
)
def test_a_dead_database_is_one_error_line_and_exit_5(args: list[str]) -> None:
    Path("in.jsonl").write_text('{"tenant": "t", "customer": "c", "name": "x"}\n')
    Path("s.yaml").write_text("tenant: t\nagent: a\nfields:\n  - name: x\n    value_type: string\n")
    result = Ccv(DEAD_PG_URL).fails(*args, code=5)
    assert len(result.stderr.strip().splitlines()) == 1
    assert len(error_lines(result)) == 1
    assert "Traceback" not in result.stderr


def test_a_dead_database_from_the_environment_is_exit_5(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCV_DATABASE_URL", DEAD_PG_URL)
    result = run("profile", "show", "c-1001", "--tenant", "acme", "--json")
    assert_exit(result, 5)
    assert result.stdout == ""
    assert len(error_lines(result)) == 1


def test_the_database_flag_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CCV_DATABASE_URL", DEAD_PG_URL)
    ccv = Ccv(f"sqlite:///{tmp_path / 'flag.db'}")
    assert ccv.json("schema", "show", "--tenant", "acme")["definitions"] == []


def test_a_password_in_the_url_is_not_printed() -> None:
    result = Ccv("postgresql+psycopg://postgres:hunter2@127.0.0.1:1/x").fails(
        "db", "current", code=5
    )
    assert "hunter2" not in result.output
