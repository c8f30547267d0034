"""Engines for both dialects, schema checks, and translation of driver errors."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

from ccv.errors import BackendError, SchemaOutdatedError


def make_engine(url: str, *, autocommit: bool = False) -> Engine:
    """An engine tuned for the dialect; SQLite gets WAL and explicit write transactions."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30, "isolation_level": None},
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            if parsed.database and parsed.database != ":memory:":
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            # Take the write lock up front: a deferred transaction that later writes can fail
            # with "database is locked" instead of waiting its turn.
            mode = "IMMEDIATE" if conn.get_execution_options().get("ccv_write") else "DEFERRED"
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    engine = create_engine(
        url,
        isolation_level="AUTOCOMMIT" if autocommit else "READ COMMITTED",
        pool_size=5,
        max_overflow=5,
        # JIT compilation costs hundreds of milliseconds on the recursive lineage queries, whose
        # row estimates are huge, and buys nothing on ccv's short indexed statements.
        connect_args={"connect_timeout": 5, "application_name": "ccv", "options": "-c jit=off"},
    )

    @event.listens_for(engine, "connect")
    def _json(dbapi_conn: Any, _record: Any) -> None:
        # orjson parses JSONB several times faster than the standard library; per connection,
        # so an application embedding ccv keeps its own psycopg settings.
        from psycopg.types.json import set_json_dumps, set_json_loads

        set_json_loads(orjson.loads, dbapi_conn)
        set_json_dumps(orjson.dumps, dbapi_conn)

    return engine


def describe_url(url: str) -> str:
    """The database URL without its password, for error messages."""
    return make_url(url).render_as_string(hide_password=True)


def backend_error(exc: DBAPIError, url: str) -> BackendError:
    """One sentence for a database failure, without the driver's multi-line detail."""
    first = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
    first = re.sub(r"\s+", " ", first)
    if isinstance(exc, OperationalError):
        return BackendError(f"cannot use the database at {describe_url(url)}: {first}")
    return BackendError(f"database error at {describe_url(url)}: {first}")


def current_revision(conn: Connection) -> str | None:
    try:
        row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    except (OperationalError, ProgrammingError):
        conn.rollback()
        return None
    return None if row is None else str(row[0])


@contextmanager
def translate_errors(url: str) -> Iterator[None]:
    try:
        yield
    except DBAPIError as exc:
        raise backend_error(exc, url) from exc


def ensure_schema(engine: Engine) -> None:
    """SQLite is created and migrated on first use; PostgreSQL must be at the head revision."""
    from ccv.store.migrate import HEAD_REVISION, is_known, newer_database_message, upgrade

    with translate_errors(str(engine.url)), engine.connect() as conn:
        revision = current_revision(conn)
    if revision == HEAD_REVISION:
        return
    if revision is not None and not is_known(revision):
        raise SchemaOutdatedError(newer_database_message(revision))
    if engine.dialect.name == "sqlite":
        with translate_errors(str(engine.url)):
            upgrade(engine, "head")
        return
    if revision is None:
        raise SchemaOutdatedError(
            f"the database at {describe_url(str(engine.url))} has no ccv schema: "
            "run `ccv db upgrade`"
        )
    raise SchemaOutdatedError(
        f"the database schema is at revision {revision}, this ccv needs {HEAD_REVISION}: "
        "run `ccv db upgrade`"
    )
