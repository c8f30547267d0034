"""Sweep claims: which scheduled run is sweeping a tenant, and as of when it last swept it.

A flow run claims (tenant, job) before it sweeps the tenant and leaves it to another run that
holds the claim, or that already swept it as of a later time (README "Scaling out"): two workers
of the `ccv` pool sweeping every tenant at once never sweep one tenant twice. The claim is a
lease (`claimed_until`), renewed by every batch, so a run that dies frees its tenants.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ccv.store.citus import distribute

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sweep_claims",
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("job", sa.String(16), nullable=False),
        sa.Column("holder", sa.String(200)),
        sa.Column("claimed_until", sa.DateTime(timezone=True)),
        sa.Column("swept_as_of", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("tenant", "job", name="pk_sweep_claims"),
    )
    distribute(op.get_bind(), "sweep_claims")


def downgrade() -> None:
    op.drop_table("sweep_claims")
