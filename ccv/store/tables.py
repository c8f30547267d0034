"""SQLAlchemy Core tables. The schema itself is created only by the Alembic migrations.

Every primary key and unique index leads with `tenant` (SPEC §9), so the tables can be
distributed or partitioned by tenant without a schema change.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.dialects.postgresql import JSONB


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both dialects (SQLite keeps naive UTC text that sorts correctly)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JsonType = JSON().with_variant(JSONB(), "postgresql")
ID = String(36)

metadata = MetaData()

profiles = Table(
    "profiles",
    metadata,
    Column("tenant", String(128), primary_key=True),
    Column("customer", String(128), primary_key=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    # Set when the customer was merged into another: the final customer (never an alias), whom
    # every later command and import naming this one acts on (ccv.service.merge).
    Column("merged_into", String(128)),
    Column("merged_at", UTCDateTime()),
)

# Channel identities (SPEC §10): the primary key is the uniqueness rule, tenant first.
identities = Table(
    "identities",
    metadata,
    Column("tenant", String(128), primary_key=True),
    Column("channel", String(64), primary_key=True),
    Column("channel_user_id", String(256), primary_key=True),
    Column("customer", String(128), nullable=False),
    Column("verified", Boolean, nullable=False),
    Column("linked_at", UTCDateTime(), nullable=False),
    Column("source", String(64), nullable=False),
)

fields = Table(
    "fields",
    metadata,
    Column("tenant", String(128), primary_key=True),
    Column("id", ID, primary_key=True),
    Column("customer", String(128), nullable=False),
    Column("name", String(50), nullable=False),
    Column("value", JsonType),
    Column("value_type", String(16)),
    Column("source", String(32), nullable=False),
    Column("source_item_id", String(256)),
    Column("source_item_type", String(16)),
    Column("source_metadata", JsonType),
    Column("status", String(16), nullable=False),
    Column("superseded_by_id", ID),
    Column("superseded_at", UTCDateTime()),
    Column("confidence", Float, nullable=False),
    Column("requires_confirmation", Boolean, nullable=False),
    Column("verified", Boolean, nullable=False),
    Column("verification_method", String(64)),
    Column("collected_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime()),
    Column("field_definition_id", ID),
    Column("content_hash", String(64), nullable=False),
    # Fails the tenant's current definitions (null: the name has none); ccv.service.validity.
    Column("invalid", Boolean),
)

assets = Table(
    "assets",
    metadata,
    Column("tenant", String(128), primary_key=True),
    Column("id", ID, primary_key=True),
    Column("customer", String(128), nullable=False),
    Column("name", String(50), nullable=False),
    Column("asset_type", String(16), nullable=False),
    Column("storage_uri", Text),
    Column("mime_type", String(255)),
    Column("size_bytes", BigInteger),
    Column("checksum", String(64)),
    Column("source_item_id", String(256)),
    Column("source_item_type", String(16)),
    Column("derived_from_tool", String(128)),
    Column("status", String(16), nullable=False),
    Column("superseded_by_id", ID),
    Column("superseded_at", UTCDateTime()),
    Column("verified", Boolean, nullable=False),
    Column("collected_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime()),
    Column("content_hash", String(64), nullable=False),
)

field_definitions = Table(
    "field_definitions",
    metadata,
    Column("tenant", String(128), primary_key=True),
    Column("agent", String(64), primary_key=True),
    Column("name", String(50), primary_key=True),
    Column("id", ID, nullable=False),
    Column("display_name", Text),
    Column("description", Text),
    Column("value_type", String(16), nullable=False),
    Column("validation_regex", Text),
    Column("allowed_values", JsonType),
    Column("validation_mode", String(16), nullable=False),
    Column("required_verification", Boolean, nullable=False),
    Column("verification_methods", JsonType),
    Column("collection_prompt", Text),
    Column("extraction_examples", JsonType),
    Column("extraction_hint", Text),
    Column("is_pii", Boolean, nullable=False),
    Column("retention_days", Integer),
    Column("freshness_seconds", Integer),
    Column("enabled", Boolean, nullable=False),
    Column("source_file", Text),
    Column("updated_at", UTCDateTime(), nullable=False),
)

scenarios = Table(
    "scenarios",
    metadata,
    Column("tenant", String(128), primary_key=True),
    Column("scenario", String(64), primary_key=True),
    Column("agent", String(64), nullable=False),
    Column("description", Text),
    Column("source_file", Text),
    Column("content_hash", String(64)),
    Column("updated_at", UTCDateTime(), nullable=False),
)

scenario_requirements = Table(
    "scenario_requirements",
    metadata,
    Column("tenant", String(128), primary_key=True),
    Column("scenario", String(64), primary_key=True),
    Column("field", String(50), primary_key=True),
    # '' when the requirement applies to the whole scenario (a primary key cannot hold NULL).
    Column("step", String(64), primary_key=True),
    Column("agent", String(64), nullable=False),
    Column("rule", String(64)),
    Column("level", String(8), nullable=False),
    Column("fallback", String(8), nullable=False),
    Column("when_expr", Text),
    Column("depends_on", JsonType),
    Column("collection_order", Integer),
    Column("needs_human_review", Boolean, nullable=False),
    Column("confidence", Float),
    Column("position", Integer, nullable=False),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("tenant", String(128), primary_key=True),
    # SQLite makes this its rowid; PostgreSQL an identity column (see the initial migration).
    Column(
        "id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("customer", String(128)),
    Column("item_id", String(36)),
    Column("item_kind", String(16)),
    Column("item_name", String(50)),
    Column("event", String(32), nullable=False),
    Column("from_status", String(16)),
    Column("to_status", String(16)),
    Column("actor", String(200), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("details", JsonType),
)

# The transactional outbox of cache invalidations (README "Read cache"): a write records here,
# in its own transaction, whose cached reads it changes; after the commit the writer delivers
# them to Redis and deletes its rows, and a reader delivers whatever is still owed before it
# serves from Redis. Merged: one row per (tenant, scope, customer), whichever write came last.
cache_outbox = Table(
    "cache_outbox",
    metadata,
    Column("tenant", String(128), primary_key=True),
    # 'c' one customer's entries; 'e' every entry of the tenant; 'q' its scenarios.
    Column("scope", String(1), primary_key=True),
    # The customer for scope 'c', '' for the tenant-wide scopes (a primary key holds no NULL).
    Column("customer", String(128), primary_key=True),
    # The write that recorded the row last: a delivery deletes only the rows whose token it
    # saw, so an invalidation recorded again meanwhile stays owed.
    Column("token", String(32), nullable=False),
    Column("recorded_at", UTCDateTime(), nullable=False),
)

# The key each tenant's cache entries are sealed with (`ccv.store.sealing`): Redis never holds a
# value in the clear.
cache_keys = Table(
    "cache_keys",
    metadata,
    Column("tenant", String(128), primary_key=True),
    Column("key", LargeBinary(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

# Which scheduled run sweeps a tenant (a lease, renewed by every batch) and as of when the last
# applied run swept it: runs on several workers never sweep one tenant twice (`ccv.store.claims`).
sweep_claims = Table(
    "sweep_claims",
    metadata,
    Column("tenant", String(128), primary_key=True),
    Column("job", String(16), primary_key=True),
    Column("holder", String(200)),
    Column("claimed_until", UTCDateTime()),
    Column("swept_as_of", UTCDateTime()),
)
