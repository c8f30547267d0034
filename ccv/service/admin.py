"""Database administration: Alembic upgrade, downgrade and the current revision."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError

from ccv.errors import SchemaOutdatedError, UsageError
from ccv.store import citus, migrate
from ccv.store.database import Database
from ccv.store.engine import backend_error, current_revision


class Revision(BaseModel):
    database: str
    current: str | None
    head: str | None
    up_to_date: bool
    # A Citus coordinator: {"version": ..., "workers": N}; null on any other database.
    citus: dict[str, str | int] | None = None
    # `db upgrade` / `db downgrade`: the revisions they ran, in the order they ran them.
    ran: list[str] = []


def current(db: Database) -> Revision:
    try:
        with db.engine.connect() as conn:
            revision = current_revision(conn)
            cluster = citus.cluster(conn)
    except DBAPIError as exc:
        raise backend_error(exc, db.url) from exc
    head = migrate.script_head()
    return Revision(
        database=db.engine.url.render_as_string(hide_password=True),
        current=revision,
        head=head,
        up_to_date=revision == head,
        citus=None if cluster is None else cluster._asdict(),
    )


def _run(db: Database, action: str, revision: str) -> Revision:
    from alembic.util import CommandError

    stored = current(db).current
    if stored is not None and not migrate.is_known(stored):
        raise SchemaOutdatedError(migrate.newer_database_message(stored))
    try:
        if action == "upgrade":
            migrate.upgrade(db.engine, revision)
        else:
            migrate.downgrade(db.engine, revision)
    except CommandError as exc:
        raise UsageError(f"cannot {action} to {revision}: {exc}") from None
    except DBAPIError as exc:
        raise backend_error(exc, db.url) from exc
    after = current(db)
    if action == "upgrade":
        after.ran = migrate.revisions_between(stored, after.current)
    else:
        after.ran = list(reversed(migrate.revisions_between(after.current, stored)))
    return after


def upgrade(db: Database, revision: str = "head") -> Revision:
    return _run(db, "upgrade", revision)


def downgrade(db: Database, revision: str) -> Revision:
    return _run(db, "downgrade", revision)
