"""Alembic, driven from code: `ccv db upgrade/downgrade/current` and SQLite's first use."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text

# Kept in code so the hot path can check the schema without loading Alembic's scripts;
# a test asserts it equals the head of migrations/.
HEAD_REVISION = "0006"


def migrations_dir() -> Path:
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "_migrations", package.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError("the ccv migrations are missing from this installation")


def _config(engine: Engine, connection: object | None = None) -> object:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    config.attributes["connection"] = connection
    return config


@contextmanager
def migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection holding the database's migration lock; what is done on it is committed
    when the block ends.

    Alembic reads the current revision on this connection, after the lock is taken: a process
    that waited behind another's migration finds the work done instead of redoing it.
    SQLite: one IMMEDIATE transaction around every step (its DDL is transactional), so the
    waiting happens under the busy timeout and a failed migration leaves nothing behind.
    PostgreSQL: a session advisory lock; Alembic commits each migration on its own.
    """
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.execution_options(ccv_write=True)
            with conn.begin():
                yield conn
            return
        conn.execute(text("SELECT pg_advisory_lock(hashtextextended('ccv:migrate', 0))"))
        conn.commit()
        try:
            yield conn
            conn.commit()
        except BaseException:
            # Closing the session (not reusing it) is what releases the lock after a failure.
            conn.invalidate()
            raise
        conn.execute(text("SELECT pg_advisory_unlock(hashtextextended('ccv:migrate', 0))"))
        conn.commit()


def locked_revision(conn: Connection) -> str | None:
    """The revision as read inside `migration_connection`: on a database without the version
    table yet, without the failed query that would end the transaction holding the lock."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    return None if row is None else str(row[0])


def upgrade_on(conn: Connection, revision: str = "head") -> None:
    """Upgrade on a connection from `migration_connection`."""
    from alembic import command

    command.upgrade(_config(conn.engine, conn), revision)  # type: ignore[arg-type]


def upgrade(engine: Engine, revision: str = "head") -> None:
    with migration_connection(engine) as conn:
        upgrade_on(conn, revision)


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    with migration_connection(engine) as conn:
        command.downgrade(_config(engine, conn), revision)  # type: ignore[arg-type]


def script_head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(migrations_dir())).get_current_head()


def revisions_between(lower: str | None, upper: str | None) -> list[str]:
    """The revisions above `lower` up to and including `upper` (None: base), oldest first:
    what an upgrade from `lower` to `upper` runs, and a downgrade the other way undoes."""
    from alembic.script import ScriptDirectory

    if upper is None or lower == upper:
        return []
    script = ScriptDirectory(str(migrations_dir()))
    walked = [
        rev.revision for rev in script.iterate_revisions(upper, lower or "base") if rev is not None
    ]
    return [revision for revision in reversed(walked) if revision != lower]


def is_known(revision: str) -> bool:
    """Whether this installation's migrations include `revision` (a newer ccv may have
    upgraded the database past them)."""
    from alembic.script import ScriptDirectory
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    try:
        return ScriptDirectory(str(migrations_dir())).get_revision(revision) is not None
    except (CommandError, RevisionError):
        return False


def newer_database_message(revision: str) -> str:
    return (
        f"the database schema is at revision {revision}, which this ccv does not know "
        f"(its newest is {HEAD_REVISION}): the database was upgraded by a newer ccv; "
        "run that release (or its `ccv db downgrade`)"
    )
