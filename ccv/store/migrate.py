"""Alembic, driven from code: `ccv db upgrade/downgrade/current` and SQLite's first use."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

# Kept in code so the hot path can check the schema without loading Alembic's scripts;
# a test asserts it equals the head of migrations/.
HEAD_REVISION = "0002"


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


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command

    with engine.connect() as conn:
        command.upgrade(_config(engine, conn), revision)  # type: ignore[arg-type]
        conn.commit()


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    with engine.connect() as conn:
        command.downgrade(_config(engine, conn), revision)  # type: ignore[arg-type]
        conn.commit()


def script_head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(migrations_dir())).get_current_head()


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
