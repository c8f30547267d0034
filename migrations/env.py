"""Alembic environment: the URL comes from ccv Settings, or a connection handed over by ccv."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from ccv.store.tables import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from ccv.config import get_settings
    from ccv.store.engine import make_engine
    from ccv.store.migrate import migration_connection

    # Run by the alembic command itself: take the same migration lock as `ccv db upgrade`.
    engine = make_engine(get_settings().database_url)
    try:
        with migration_connection(engine) as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("ccv migrations run online only: use `ccv db upgrade`")
run_migrations_online()
