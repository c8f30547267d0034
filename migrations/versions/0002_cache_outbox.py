"""The cache invalidation outbox: what committed writes owe the Redis read cache.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ccv.store.citus import distribute

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cache_outbox",
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("scope", sa.String(1), nullable=False),
        sa.Column("customer", sa.String(128), nullable=False),
        sa.Column("token", sa.String(32), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "scope", "customer", name="pk_cache_outbox"),
    )
    distribute(op.get_bind(), "cache_outbox")


def downgrade() -> None:
    # Whatever is still owed goes with the table: an older ccv has no outbox to read, so the
    # safe hand-over is to let every cached entry expire or be flushed (README, "Read cache").
    op.drop_table("cache_outbox")
