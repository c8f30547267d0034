"""Finding customers by a value (`ccv profile list --where NAME=VALUE`, SPEC §12).

An index of the active values per (tenant, name): on PostgreSQL of the md5 of the JSONB text
(a btree entry of the value itself would fail for values over ~2.7 KB), on SQLite of the stored
JSON text. The lookup compares the digest through the index and then the value itself.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX ix_fields_value ON fields (tenant, name, md5(value::text))"
            " WHERE status = 'active'"
        )
    else:
        active = sa.text("status = 'active'")
        op.create_index(
            "ix_fields_value", "fields", ["tenant", "name", "value"], sqlite_where=active
        )


def downgrade() -> None:
    op.drop_index("ix_fields_value", table_name="fields")
