"""Initial schema: profiles, fields, assets, definitions, scenarios, requirements, audit events.

On a database with the `citus` extension each table is distributed by `tenant` as it is created,
all colocated with `profiles` (ccv.store.citus); elsewhere `distribute` does nothing.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from ccv.store.citus import distribute

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSON_T = sa.JSON().with_variant(JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def _lineage_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("source_item_id", sa.String(256)),
        sa.Column("source_item_type", sa.String(16)),
    ]


def _lifecycle_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("superseded_by_id", sa.String(36)),
        sa.Column("superseded_at", TS),
    ]


def _item_indexes(table: str) -> None:
    active = sa.text("status = 'active'")
    op.create_index(
        f"uq_{table}_active",
        table,
        ["tenant", "customer", "name"],
        unique=True,
        postgresql_where=active,
        sqlite_where=active,
    )
    op.create_index(
        f"ix_{table}_profile", table, ["tenant", "customer", "name", "collected_at", "id"]
    )
    has_source = sa.text("source_item_id IS NOT NULL")
    op.create_index(
        f"ix_{table}_source",
        table,
        ["tenant", "source_item_id"],
        postgresql_where=has_source,
        sqlite_where=has_source,
    )
    expiring = sa.text("status IN ('active', 'orphaned') AND expires_at IS NOT NULL")
    op.create_index(
        f"ix_{table}_expiry",
        table,
        ["tenant", "expires_at"],
        postgresql_where=expiring,
        sqlite_where=expiring,
    )


def upgrade() -> None:
    op.create_table(
        "profiles",
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("customer", sa.String(128), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("tenant", "customer", name="pk_profiles"),
    )
    distribute(op.get_bind(), "profiles")
    op.create_table(
        "fields",
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("customer", sa.String(128), nullable=False),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("value", JSON_T),
        sa.Column("value_type", sa.String(16)),
        sa.Column("source", sa.String(32), nullable=False),
        *_lineage_columns(),
        sa.Column("source_metadata", JSON_T),
        *_lifecycle_columns(),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("requires_confirmation", sa.Boolean, nullable=False),
        sa.Column("verified", sa.Boolean, nullable=False),
        sa.Column("verification_method", sa.String(64)),
        sa.Column("collected_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("expires_at", TS),
        sa.Column("field_definition_id", sa.String(36)),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "id", name="pk_fields"),
    )
    distribute(op.get_bind(), "fields")
    _item_indexes("fields")
    op.create_table(
        "assets",
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("customer", sa.String(128), nullable=False),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("asset_type", sa.String(16), nullable=False),
        sa.Column("storage_uri", sa.Text),
        sa.Column("mime_type", sa.String(255)),
        sa.Column("size_bytes", sa.BigInteger),
        sa.Column("checksum", sa.String(64)),
        *_lineage_columns(),
        sa.Column("derived_from_tool", sa.String(128)),
        *_lifecycle_columns(),
        sa.Column("verified", sa.Boolean, nullable=False),
        sa.Column("collected_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("expires_at", TS),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "id", name="pk_assets"),
    )
    distribute(op.get_bind(), "assets")
    _item_indexes("assets")
    op.create_table(
        "field_definitions",
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("display_name", sa.Text),
        sa.Column("description", sa.Text),
        sa.Column("value_type", sa.String(16), nullable=False),
        sa.Column("validation_regex", sa.Text),
        sa.Column("allowed_values", JSON_T),
        sa.Column("validation_mode", sa.String(16), nullable=False),
        sa.Column("required_verification", sa.Boolean, nullable=False),
        sa.Column("verification_methods", JSON_T),
        sa.Column("collection_prompt", sa.Text),
        sa.Column("extraction_examples", JSON_T),
        sa.Column("extraction_hint", sa.Text),
        sa.Column("is_pii", sa.Boolean, nullable=False),
        sa.Column("retention_days", sa.Integer),
        sa.Column("freshness_seconds", sa.Integer),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("source_file", sa.Text),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("tenant", "agent", "name", name="pk_field_definitions"),
    )
    distribute(op.get_bind(), "field_definitions")
    op.create_index("ix_field_definitions_name", "field_definitions", ["tenant", "name"])
    op.create_table(
        "scenarios",
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("scenario", sa.String(64), nullable=False),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("source_file", sa.Text),
        sa.Column("content_hash", sa.String(64)),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("tenant", "scenario", name="pk_scenarios"),
    )
    distribute(op.get_bind(), "scenarios")
    op.create_table(
        "scenario_requirements",
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("scenario", sa.String(64), nullable=False),
        sa.Column("field", sa.String(50), nullable=False),
        sa.Column("step", sa.String(64), nullable=False),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(64)),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("fallback", sa.String(8), nullable=False),
        sa.Column("when_expr", sa.Text),
        sa.Column("depends_on", JSON_T),
        sa.Column("collection_order", sa.Integer),
        sa.Column("needs_human_review", sa.Boolean, nullable=False),
        sa.Column("confidence", sa.Float),
        sa.Column("position", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant", "scenario", "field", "step", name="pk_scenario_requirements"
        ),
    )
    distribute(op.get_bind(), "scenario_requirements")
    audit_columns = [
        sa.Column("customer", sa.String(128)),
        sa.Column("item_id", sa.String(36)),
        sa.Column("item_kind", sa.String(16)),
        sa.Column("item_name", sa.String(50)),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("from_status", sa.String(16)),
        sa.Column("to_status", sa.String(16)),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("details", JSON_T),
    ]
    if op.get_bind().dialect.name == "sqlite":
        # SQLite only auto-numbers a lone INTEGER PRIMARY KEY (the rowid).
        op.create_table(
            "audit_events",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("tenant", sa.String(128), nullable=False),
            *audit_columns,
        )
    else:
        op.create_table(
            "audit_events",
            sa.Column("tenant", sa.String(128), nullable=False),
            sa.Column("id", sa.BigInteger, sa.Identity(always=False), nullable=False),
            *audit_columns,
            sa.PrimaryKeyConstraint("tenant", "id", name="pk_audit_events"),
        )
    distribute(op.get_bind(), "audit_events")
    op.create_index("ix_audit_events_item", "audit_events", ["tenant", "item_id"])
    op.create_index("ix_audit_events_customer", "audit_events", ["tenant", "customer", "at"])


def downgrade() -> None:
    for table in (
        "audit_events",
        "scenario_requirements",
        "scenarios",
        "field_definitions",
        "assets",
        "fields",
        "profiles",
    ):
        op.drop_table(table)
