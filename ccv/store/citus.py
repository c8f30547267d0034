"""Citus: tenant-scoped tables distributed by `tenant`, and what `ccv db current` says of it.

Every table ccv keeps leads its primary key (and every unique index) with `tenant`, and no
statement joins two tenants, so each table can be a hash-distributed Citus table on `tenant`,
all in one colocation group: a statement about one tenant is routed to one shard group, a sweep
of every tenant runs as multi-shard statements. Nothing here does anything on a database
without the `citus` extension (plain PostgreSQL, SQLite).
"""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import Connection, text

# The table every other one is colocated with: the first that migration 0001 creates.
ANCHOR = "profiles"


def enabled(conn: Connection) -> bool:
    """Whether the database has the `citus` extension."""
    if conn.dialect.name != "postgresql":
        return False
    found = conn.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'citus'")).first()
    return found is not None


def distribute(conn: Connection, table: str) -> bool:
    """Make `table` a distributed table on `tenant`, colocated with `profiles`, where the
    database has Citus and the table is not distributed yet; whether it did."""
    if not enabled(conn):
        return False
    already = conn.execute(
        text("SELECT 1 FROM pg_dist_partition WHERE logicalrelid = to_regclass(:table)"),
        {"table": table},
    ).first()
    if already is not None:
        return False
    colocate = "none" if table == ANCHOR else ANCHOR
    conn.execute(
        text("SELECT create_distributed_table(:table, 'tenant', colocate_with => :colocate)"),
        {"table": table, "colocate": colocate},
    )
    return True


class Cluster(NamedTuple):
    """A Citus coordinator: its version and how many active workers it has."""

    version: str
    workers: int


def cluster(conn: Connection) -> Cluster | None:
    """The Citus cluster this database coordinates (None: not a Citus database)."""
    if not enabled(conn):
        return None
    version = conn.execute(
        text("SELECT extversion FROM pg_extension WHERE extname = 'citus'")
    ).scalar_one()
    workers = conn.execute(text("SELECT count(*) FROM citus_get_active_worker_nodes()"))
    return Cluster(version=str(version), workers=int(workers.scalar_one()))
