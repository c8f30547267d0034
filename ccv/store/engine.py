"""Engines for both dialects, schema checks, and translation of driver errors."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

from ccv.errors import BackendError, SchemaOutdatedError

# How long a SQLite statement waits for another process's lock before "database is locked".
# Generous: a writer waits behind a whole import, not one row. `?timeout=SECONDS` in the URL
# overrides it.
SQLITE_BUSY_TIMEOUT = 30.0


def sqlite_busy_timeout(url: str) -> float:
    """How long SQLite waits for a lock: `?timeout=SECONDS` in the URL, else the default."""
    given = make_url(url).query.get("timeout")
    return float(given) if isinstance(given, str) else SQLITE_BUSY_TIMEOUT


def make_engine(url: str, *, autocommit: bool = False) -> Engine:
    """An engine tuned for the dialect; SQLite gets WAL and explicit write transactions."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        timeout = sqlite_busy_timeout(url)
        file_backed = bool(parsed.database) and parsed.database != ":memory:"
        engine = create_engine(
            url,
            # The driver installs the busy timeout as it opens the file, before any statement
            # (the PRAGMAs below included) runs; nothing later resets it. isolation_level=None
            # leaves BEGIN to the "begin" listener below.
            connect_args={"check_same_thread": False, "timeout": timeout, "isolation_level": None},
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            try:
                if file_backed:
                    _use_wal(cursor, timeout)
                cursor.execute("PRAGMA synchronous=NORMAL")
            finally:
                cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            # A write transaction takes the write lock up front, waiting its turn under the busy
            # timeout: a deferred one that later writes fails at once with "database is locked"
            # (the lock upgrade, or a WAL snapshot gone stale, is not retried by SQLite).
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
        connect_args={
            "connect_timeout": 5,
            "application_name": "ccv",
            "options": server_options("-c jit=off"),
        },
    )

    @event.listens_for(engine, "connect")
    def _json(dbapi_conn: Any, _record: Any) -> None:
        # orjson parses JSONB several times faster than the standard library; per connection,
        # so an application embedding ccv keeps its own psycopg settings.
        from psycopg.types.json import set_json_dumps, set_json_loads

        set_json_loads(orjson.loads, dbapi_conn)
        set_json_dumps(orjson.dumps, dbapi_conn)

    return engine


def server_options(ours: str) -> str:
    """The server options of ccv's PostgreSQL connections: the operator's PGOPTIONS (which
    libpq would otherwise drop, as ccv passes options of its own) followed by ccv's."""
    theirs = os.environ.get("PGOPTIONS", "").strip()
    return f"{theirs} {ours}" if theirs else ours


def _use_wal(cursor: Any, timeout: float) -> None:
    """Put the file in WAL mode (persistent: once per file, a no-op read afterwards).

    Switching needs an exclusive lock, and SQLite reports SQLITE_BUSY at once, without the busy
    handler, when another connection holds the write lock of a file still in rollback mode (a
    new file several processes open at once): retry until the busy timeout is spent.
    """
    import sqlite3
    import time

    if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return
    deadline = time.monotonic() + timeout
    pause = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL").fetchone()
            return
        except sqlite3.OperationalError as exc:
            busy = (exc.sqlite_errorcode & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
            if not busy or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


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
    from ccv.store.migrate import (
        HEAD_REVISION,
        is_known,
        locked_revision,
        migration_connection,
        newer_database_message,
        upgrade_on,
    )

    with translate_errors(str(engine.url)), engine.connect() as conn:
        revision = current_revision(conn)
    if revision == HEAD_REVISION:
        return
    if revision is not None and not is_known(revision):
        raise SchemaOutdatedError(newer_database_message(revision))
    if engine.dialect.name == "sqlite":
        # Processes that start together on a new file all get here: they take turns on the
        # migration lock, and each reads the revision again once it holds it.
        with translate_errors(str(engine.url)), migration_connection(engine) as conn:
            revision = locked_revision(conn)
            if revision is not None and not is_known(revision):
                raise SchemaOutdatedError(newer_database_message(revision))
            if revision != HEAD_REVISION:
                upgrade_on(conn, "head")
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
