"""Observability: audit listing index, flow actors, stored validity of values, report indexes.

- `audit_events`: an index for `ccv audit`'s newest-first keyset pages of a tenant; actors of
  flow runs recorded as `flow:<job>/<run>` become `prefect:<job>/<run>` (SPEC §11).
- `fields.invalid`: whether an active value fails its tenant's current definitions (null: no
  definition), judged for the values already stored, so `ccv report` counts with one query.
- `(tenant, status, expires_at)` on fields and assets: the report's counts by status, overdue
  and expiring values are index scans; partial indexes of the derived items (the lineage walk),
  of the values that require confirmation and of the invalid ones make those counts cost what
  they count.
- `cache_keys`: the key each tenant's Redis entries are sealed with, so Redis never holds a
  value (PII included) in the clear.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from ccv.store.citus import distribute

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# The definition attributes that decide validity, read with this revision's columns.
_RULE_COLUMNS = (
    "id",
    "tenant",
    "agent",
    "name",
    "value_type",
    "validation_regex",
    "allowed_values",
    "validation_mode",
    "retention_days",
    "is_pii",
    "enabled",
)


def _judge_stored_values(conn: sa.Connection) -> None:
    from ccv.domain.definitions import compile_rules
    from ccv.domain.models import FieldDefinition
    from ccv.service.validity import restamp

    definitions = sa.table(
        "field_definitions",
        *(sa.column(name) for name in _RULE_COLUMNS if name != "allowed_values"),
        sa.column("allowed_values", sa.JSON().with_variant(JSONB(), "postgresql")),
    )
    by_tenant: dict[str, list[FieldDefinition]] = {}
    for row in conn.execute(sa.select(*(definitions.c[name] for name in _RULE_COLUMNS))):
        values: dict[str, Any] = dict(row._mapping)
        by_tenant.setdefault(values["tenant"], []).append(FieldDefinition.model_validate(values))
    for tenant, tenant_definitions in sorted(by_tenant.items()):
        restamp(conn, tenant, compile_rules(tenant_definitions))


def _postgres() -> bool:
    return bool(op.get_bind().dialect.name == "postgresql")


def upgrade() -> None:
    op.create_index("ix_audit_events_at", "audit_events", ["tenant", "at", "id"])
    op.execute(
        "UPDATE audit_events SET actor = 'prefect:' || substr(actor, 6) WHERE actor LIKE 'flow:%'"
    )
    op.add_column("fields", sa.Column("invalid", sa.Boolean()))
    derived = sa.text("source_item_type IN ('profile_field', 'profile_asset')")
    for table in ("fields", "assets"):
        op.create_index(f"ix_{table}_status", table, ["tenant", "status", "expires_at"])
        # The lineage walk of `ccv report` reads only derived items: starts and steps are
        # index-only scans over them, whatever the number of values with an outside source.
        op.create_index(
            f"ix_{table}_derived",
            table,
            ["tenant", "id"] + ([] if _postgres() else ["source_item_id", "status"]),
            postgresql_include=["source_item_id", "status"],
            postgresql_where=derived,
            sqlite_where=derived,
        )
    for name, columns, where in (
        ("ix_fields_invalid", ["tenant", "name"], "status = 'active' AND invalid"),
        ("ix_fields_confirm", ["tenant"], "status = 'active' AND requires_confirmation"),
    ):
        flagged = sa.text(where)
        op.create_index(name, "fields", columns, postgresql_where=flagged, sqlite_where=flagged)
    _judge_stored_values(op.get_bind())
    op.create_table(
        "cache_keys",
        sa.Column("tenant", sa.String(128), primary_key=True),
        sa.Column("key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    distribute(op.get_bind(), "cache_keys")


def downgrade() -> None:
    op.drop_table("cache_keys")
    op.drop_index("ix_fields_confirm", table_name="fields")
    op.drop_index("ix_fields_invalid", table_name="fields")
    for table in ("fields", "assets"):
        op.drop_index(f"ix_{table}_derived", table_name=table)
        op.drop_index(f"ix_{table}_status", table_name=table)
    op.drop_column("fields", "invalid")  # SQLite >= 3.35 drops a column in place
    op.execute(
        "UPDATE audit_events SET actor = 'flow:' || substr(actor, 9) WHERE actor LIKE 'prefect:%'"
    )
    op.drop_index("ix_audit_events_at", table_name="audit_events")
