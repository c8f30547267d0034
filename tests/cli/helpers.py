"""Helpers for the CLI tests: run `ccv` through typer's CliRunner against real databases.

stdout and stderr are captured apart, so a `--json` command's stdout must parse as one document.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner, Result

from ccv.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "fixtures" / "demo"
DEMO_SCHEMAS = sorted((DEMO / "schema").glob("*.yaml"))
TENANT = "northwind-bank"
PG_ADMIN_URL = os.environ.get(
    "CCV_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
# Nothing listens on port 1: connecting fails at once with "connection refused".
DEAD_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:1/x"


def flat(text: str) -> str:
    """The text with every run of whitespace made one space (error lines may wrap)."""
    return " ".join(text.split())


def assert_exit(result: Result, code: int) -> None:
    """The exit code is `code`, reached without an unhandled exception or a traceback."""
    assert result.exit_code == code, (
        f"exit {result.exit_code}, wanted {code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output


def error_lines(result: Result) -> list[str]:
    """The `error:` messages printed on stderr."""
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


class Ccv:
    """`ccv --database-url URL ...` through CliRunner."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.runner = CliRunner()

    def __call__(self, *args: str | Path) -> Result:
        argv = ["--database-url", self.database_url, *(str(arg) for arg in args)]
        return self.runner.invoke(app, argv)

    def json(self, *args: str | Path, code: int = 0) -> Any:
        """Run with --json, check the exit code and that stdout is exactly one JSON document."""
        result = self(*args, "--json")
        assert_exit(result, code)
        return json.loads(result.stdout)

    def fails(self, *args: str | Path, code: int) -> Result:
        """Run with --json: exit `code`, an `error:` message on stderr, nothing on stdout."""
        result = self(*args, "--json")
        assert_exit(result, code)
        assert result.stdout == ""
        assert error_lines(result), result.stderr
        return result


def run(*args: str | Path) -> Result:
    """`ccv ...` with no --database-url (for usage errors and the environment path)."""
    return CliRunner().invoke(app, [str(arg) for arg in args])


def write_jsonl(path: Path, records: Sequence[dict[str, Any] | str]) -> Path:
    """One line per record; a str is written as given (to make malformed lines)."""
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _pg_unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required under CI=true: {reason}")
    pytest.skip(f"PostgreSQL not available: {reason}")


@contextmanager
def empty_pg_database() -> Iterator[str]:
    """A brand-new PostgreSQL database with no ccv schema, dropped afterwards."""
    name = f"ccv_cli_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any failure means "no server"
        admin.dispose()
        _pg_unavailable(str(exc).splitlines()[0])
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def load_demo(ccv: Ccv) -> None:
    ccv.json("schema", "apply", *DEMO_SCHEMAS)
    imported = ccv.json("profile", "import", DEMO / "profiles.jsonl")
    assert imported["rejected"] == 0, imported["errors"]
