"""The database the benchmark runs on: a dedicated database next to CCV_DATABASE_URL.

PostgreSQL (the figures that count): a database named `ccv_bench` (by default) on the server of
CCV_DATABASE_URL, dropped and created by the benchmark. SQLite (allowed, figures do not count): a
file `ccv_bench.db` next to the configured one.

`raw` baselines talk to it through the plainest client: psycopg 3 (or the sqlite3 module), with
hand-written SQL in `%s` paramstyle, translated to `?` for SQLite.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url

from ccv.config import normalize_database_url

NULL = "\\N"
# Rows per COPY write: big enough to amortise the call, small enough to stream.
COPY_BUFFER_ROWS = 5000


class BackendError(RuntimeError):
    """The benchmark database cannot be used (one sentence for the user)."""


class Backend:
    """Connection details and dialect differences of the benchmark database."""

    def __init__(self, url: str, database: str = "ccv_bench") -> None:
        self.source_url = normalize_database_url(url)
        parsed = make_url(self.source_url)
        self.kind = parsed.get_backend_name()
        if self.kind not in ("postgresql", "sqlite"):
            raise BackendError(f"the benchmark runs on PostgreSQL or SQLite, not {self.kind}")
        self.database = database
        if self.kind == "postgresql":
            self.url: URL = parsed.set(drivername="postgresql+psycopg", database=database)
            self.admin_url: URL = parsed.set(
                drivername="postgresql", database=parsed.database or "postgres"
            )
            self.path: Path | None = None
        else:
            given = parsed.database
            base = Path(given).resolve().parent if given and given != ":memory:" else Path.cwd()
            self.path = base / f"{database}.db"
            self.url = make_url(f"sqlite:///{self.path}")
            self.admin_url = self.url

    # --- names ------------------------------------------------------------------------------

    @property
    def is_postgres(self) -> bool:
        return self.kind == "postgresql"

    @property
    def ccv_url(self) -> str:
        """The URL ccv's Settings get (SQLAlchemy form, password included)."""
        return self.url.render_as_string(hide_password=False)

    def describe(self) -> str:
        return self.url.render_as_string(hide_password=True)

    def _libpq(self, url: URL) -> str:
        return url.set(drivername="postgresql").render_as_string(hide_password=False)

    # --- lifecycle --------------------------------------------------------------------------

    def check_server(self) -> str:
        """The server version string; raises BackendError when it cannot be reached."""
        if not self.is_postgres:
            return f"SQLite {sqlite3.sqlite_version}"
        import psycopg

        try:
            with psycopg.connect(self._libpq(self.admin_url), connect_timeout=5) as conn:
                row = conn.execute("SHOW server_version").fetchone()
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BackendError(
                f"cannot reach PostgreSQL at "
                f"{self.admin_url.render_as_string(hide_password=True)}: {first}"
            ) from None
        return f"PostgreSQL {row[0] if row else '?'}"

    def exists(self) -> bool:
        if not self.is_postgres:
            assert self.path is not None
            return self.path.exists()
        import psycopg

        with psycopg.connect(self._libpq(self.admin_url), autocommit=True) as conn:
            row = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)
            ).fetchone()
        return row is not None

    def recreate(self) -> None:
        """Drop the benchmark database (never any other) and create it empty."""
        if not self.is_postgres:
            assert self.path is not None
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            return
        import psycopg
        from psycopg import sql

        name = sql.Identifier(self.database)
        workers = self.citus_workers()
        nodes = [self.admin_url] + [
            self.admin_url.set(host=host, port=port) for host, port in workers
        ]
        for node in nodes:
            with psycopg.connect(self._libpq(node), autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
                conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
        if not workers:
            return
        # A Citus cluster: the new database gets the extension on every node and the nodes in
        # its own metadata, so that `ccv db upgrade` distributes the tables over the workers.
        for node in nodes:
            with psycopg.connect(self._libpq(node.set(database=self.database))) as conn:
                conn.execute("CREATE EXTENSION citus")
        with psycopg.connect(self._libpq(self.url), autocommit=True) as conn:
            coordinator = (self.admin_url.host or "localhost", self.admin_url.port or 5432)
            conn.execute("SELECT citus_set_coordinator_host(%s, %s)", coordinator)
            for host, port in workers:
                conn.execute("SELECT citus_add_node(%s, %s)", (host, port))

    def citus_workers(self) -> list[tuple[str, int]]:
        """The active workers of the Citus cluster the server coordinates (none: not Citus)."""
        if not self.is_postgres:
            return []
        import psycopg

        with psycopg.connect(self._libpq(self.admin_url), autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'citus'").fetchone():
                rows = conn.execute(
                    "SELECT node_name, node_port FROM citus_get_active_worker_nodes() ORDER BY 2"
                ).fetchall()
                return [(str(host), int(port)) for host, port in rows]
        return []

    # --- raw connections --------------------------------------------------------------------

    def connect(self) -> Any:
        """A raw DB-API connection in autocommit mode (use `transaction` for several writes)."""
        if self.is_postgres:
            import psycopg

            return psycopg.connect(self._libpq(self.url), autocommit=True)
        assert self.path is not None
        conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    @contextmanager
    def transaction(self, conn: Any) -> Iterator[Any]:
        if self.is_postgres:
            with conn.transaction():
                yield conn
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def sql(self, text: str) -> str:
        """Hand-written SQL uses %s placeholders; SQLite wants ?."""
        return text if self.is_postgres else text.replace("%s", "?")

    def execute(self, conn: Any, text: str, params: Sequence[Any] = ()) -> Any:
        return conn.execute(self.sql(text), tuple(params))

    def ts(self, value: datetime) -> Any:
        """A timestamp parameter in the form ccv stores (naive UTC text on SQLite)."""
        value = value.astimezone(UTC)
        if self.is_postgres:
            return value
        return value.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")

    def ts_text(self, value: datetime) -> str:
        """A timestamp as COPY text / SQLite storage text."""
        value = value.astimezone(UTC)
        if self.is_postgres:
            return value.strftime("%Y-%m-%d %H:%M:%S.%f+00")
        return value.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")

    @property
    def null(self) -> str | None:
        """NULL in generated rows: COPY's marker on PostgreSQL, None for SQLite's executemany."""
        return NULL if self.is_postgres else None

    @property
    def true(self) -> str:
        return "t" if self.is_postgres else "1"

    @property
    def false(self) -> str:
        return "f" if self.is_postgres else "0"

    # --- bulk load --------------------------------------------------------------------------

    def copy_rows(
        self,
        conn: Any,
        table: str,
        columns: Sequence[str],
        rows: Iterable[Sequence[str | None]],
    ) -> int:
        """Bulk-load rows of text values (None = NULL): PostgreSQL COPY, SQLite executemany.

        Values must not contain tabs, newlines or backslashes (the generator never makes any).
        """
        count = 0
        if self.is_postgres:
            from psycopg import sql

            statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
            )
            with conn.cursor() as cursor, cursor.copy(statement) as copy:
                buffer: list[str] = []
                for row in rows:
                    try:
                        buffer.append("\t".join(row))  # type: ignore[arg-type]
                    except TypeError:  # a None among the values
                        buffer.append("\t".join(NULL if v is None else v for v in row))
                    if len(buffer) >= COPY_BUFFER_ROWS:
                        copy.write("\n".join(buffer) + "\n")
                        count += len(buffer)
                        buffer.clear()
                if buffer:
                    copy.write("\n".join(buffer) + "\n")
                    count += len(buffer)
            return count
        placeholders = ", ".join("?" for _ in columns)
        statement_text = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"
        batch: list[Sequence[str | None]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= COPY_BUFFER_ROWS:
                conn.executemany(statement_text, batch)
                count += len(batch)
                batch.clear()
        if batch:
            conn.executemany(statement_text, batch)
            count += len(batch)
        return count
