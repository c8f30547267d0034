"""Customer identity: channel identities and merged customers (SPEC §10).

- `identities`: one (tenant, channel, channel_user_id) belongs to at most one customer, the
  primary key (it leads with the tenant); `(tenant, customer)` lists a customer's identities.
- `profiles.merged_into` / `merged_at`: a merged customer keeps its profile row as an alias of
  the customer it was merged into (always the final one: a merge repoints the aliases of its
  source). A partial index holds the aliases only, so `ccv report` counts customers and a merge
  finds a source's aliases without reading the profiles that are not aliases.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ccv.store.citus import distribute

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identities",
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("channel_user_id", sa.String(256), nullable=False),
        sa.Column("customer", sa.String(128), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "channel", "channel_user_id", name="pk_identities"),
    )
    distribute(op.get_bind(), "identities")
    op.create_index("ix_identities_customer", "identities", ["tenant", "customer"])
    op.add_column("profiles", sa.Column("merged_into", sa.String(128)))
    op.add_column("profiles", sa.Column("merged_at", sa.DateTime(timezone=True)))
    aliases = sa.text("merged_into IS NOT NULL")
    op.create_index(
        "ix_profiles_merged",
        "profiles",
        ["tenant", "merged_into"],
        postgresql_where=aliases,
        sqlite_where=aliases,
    )


def downgrade() -> None:
    # The moved versions stay with the customer they were merged into; the aliases go (an
    # older ccv cannot follow them), and so do the identities.
    op.drop_index("ix_profiles_merged", table_name="profiles")
    op.drop_column("profiles", "merged_at")  # SQLite >= 3.35 drops a column in place
    op.drop_column("profiles", "merged_into")
    op.drop_index("ix_identities_customer", table_name="identities")
    op.drop_table("identities")
