"""Pydantic models that services return and every renderer (Rich, JSON, Prefect) shares."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, PlainSerializer
from pydantic import Field as ModelField

from ccv.domain.enums import (
    AssetType,
    Fallback,
    ItemKind,
    Level,
    Source,
    SourceItemType,
    Status,
    ValidationMode,
    ValueType,
)
from ccv.domain.timeutil import format_time

# SPEC: output times are ISO 8601 with an offset (+00:00, never a bare Z).
Time = Annotated[datetime, PlainSerializer(format_time, return_type=str, when_used="json")]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=False, use_enum_values=False)


class FieldVersion(_Model):
    """One version of one fact about a customer."""

    kind: Literal["field"] = "field"
    id: str
    tenant: str
    customer: str
    name: str
    value: Any
    value_type: ValueType | None = None
    source: Source
    source_item_id: str | None = None
    source_item_type: SourceItemType | None = None
    source_metadata: dict[str, Any] = ModelField(default_factory=dict)
    status: Status
    superseded_by_id: str | None = None
    superseded_at: Time | None = None
    confidence: float = 1.0
    requires_confirmation: bool = False
    verified: bool = False
    verification_method: str | None = None
    collected_at: Time
    updated_at: Time
    expires_at: Time | None = None
    field_definition_id: str | None = None
    is_pii: bool = False
    masked: bool = False


class AssetVersion(_Model):
    """One version of a document or file kept for a customer (the bytes live at storage_uri)."""

    kind: Literal["asset"] = "asset"
    id: str
    tenant: str
    customer: str
    name: str
    asset_type: AssetType
    storage_uri: str | None = None
    mime_type: str | None = None
    size_bytes: int | None = None
    checksum: str | None = None
    source_item_id: str | None = None
    source_item_type: SourceItemType | None = None
    derived_from_tool: str | None = None
    status: Status
    superseded_by_id: str | None = None
    superseded_at: Time | None = None
    verified: bool = False
    collected_at: Time
    updated_at: Time
    expires_at: Time | None = None
    analysis_field_ids: list[str] = ModelField(default_factory=list)


class Identity(_Model):
    """A channel identity (SPEC §10): an email address or phone number as `channel_user_id` is
    masked in output unless revealed (`masked` says so)."""

    tenant: str
    channel: str
    channel_user_id: str
    customer: str
    verified: bool = False
    linked_at: Time
    source: str
    masked: bool = False


class Profile(_Model):
    """A customer's profile. `merged_into`: the customer asked for was merged, and this is the
    profile of the customer it was merged into (`customer`)."""

    tenant: str
    customer: str
    merged_into: str | None = None
    as_of: Time
    fields: dict[str, FieldVersion]
    assets: list[AssetVersion]
    identities: list[Identity] = ModelField(default_factory=list)
    history: dict[str, list[FieldVersion]] | None = None
    asset_history: dict[str, list[AssetVersion]] | None = None


class CustomerSummary(_Model):
    """A customer in `profile list`: counts of active fields and assets, identities, and when
    the profile was last written."""

    customer: str
    fields: int
    assets: int
    identities: int
    updated_at: Time


class CustomerList(_Model):
    tenant: str
    customers: list[CustomerSummary]
    next_cursor: str | None = None


class ExportResult(_Model):
    """`profile export`: what was written (`output`: the file, or `-` for stdout)."""

    tenant: str
    output: str
    customers: int
    fields: int
    assets: int
    identities: int
    aliases: int
    records: int


class IdentityResult(_Model):
    """`identity resolve / link / unlink`: the identity and what the command did to it
    (`created`, `linked`, `moved`, `updated`, `unchanged`, `found`, `unlinked`)."""

    identity: Identity
    customer: str
    outcome: Literal["created", "linked", "moved", "updated", "unchanged", "found", "unlinked"]
    created: bool = False
    moved_from: str | None = None


class IdentityList(_Model):
    tenant: str
    customer: str
    merged_into: str | None = None
    identities: list[Identity]


class MergeChange(_Model):
    """A version a merge supersedes: the newest of both customers' versions of a name wins."""

    kind: ItemKind
    name: str
    id: str
    customer: str
    from_status: Status
    superseded_by_id: str


class MergeResult(_Model):
    """`profile merge`: what moves from `source` to `target` (moved when `applied`)."""

    tenant: str
    source: str
    target: str
    applied: bool
    fields: int
    assets: int
    identities: int
    names: list[str]
    superseded: list[MergeChange]
    aliases: list[str] = ModelField(default_factory=list)


class FieldDefinition(_Model):
    id: str | None = None
    tenant: str
    agent: str
    name: str
    display_name: str | None = None
    description: str | None = None
    value_type: ValueType = ValueType.STRING
    validation_regex: str | None = None
    allowed_values: list[Any] | None = None
    validation_mode: ValidationMode = ValidationMode.STRICT
    required_verification: bool = False
    verification_methods: list[str] | None = None
    collection_prompt: str | None = None
    extraction_examples: list[Any] | None = None
    extraction_hint: str | None = None
    is_pii: bool = False
    retention_days: int | None = None
    freshness_seconds: int | None = None
    enabled: bool = True
    source_file: str | None = None


class ScenarioRequirement(_Model):
    tenant: str
    agent: str
    scenario: str
    step: str | None = None
    rule: str | None = None
    field: str
    level: Level = Level.HARD
    fallback: Fallback = Fallback.ASK
    when: str | None = None
    depends_on: list[str] = ModelField(default_factory=list)
    collection_order: int | None = None
    needs_human_review: bool = False
    confidence: float | None = None


class TraceItem(_Model):
    id: str
    kind: Literal["field", "asset", "external", "missing"]
    name: str | None
    status: Status | None
    customer: str | None = None
    source_item_id: str | None = None
    source_item_type: SourceItemType | None = None


class TraceNode(_Model):
    item: TraceItem
    dependents: list[TraceNode] = ModelField(default_factory=list)


class Trace(_Model):
    item: TraceItem
    chain: list[TraceItem]
    dependents: list[TraceNode]
    truncated: bool = False


class SweepItem(_Model):
    id: str
    kind: ItemKind
    customer: str
    name: str
    status: Status
    expires_at: Time | None = None
    source_item_id: str | None = None


class TenantSweep(_Model):
    """`count` is exact; `items` lists at most the sweep's item limit (`truncated` says so)."""

    count: int
    items: list[SweepItem]
    truncated: bool = False


class SweepResult(_Model):
    applied: bool
    now: Time | None = None
    tenants: dict[str, TenantSweep]
    total: int
    # Tenants a claiming (scheduled) run left to the run that sweeps them or swept them as of
    # this run's time or later. Not in the CLI's JSON: the CLI never claims.
    skipped: list[str] = ModelField(default_factory=list, exclude=True)


class ImportIssue(_Model):
    file: str
    line: int
    message: str


class ImportResult(_Model):
    records: int = 0
    inserted: int = 0
    superseded: int = 0
    unchanged: int = 0
    rejected: int = 0
    warnings: int = 0
    errors: list[ImportIssue] = ModelField(default_factory=list)
    warning_details: list[ImportIssue] = ModelField(default_factory=list)
    dry_run: bool = False


class DefinitionChange(_Model):
    """What `schema apply` does to one definition; `attributes` names what an update changes."""

    tenant: str
    agent: str
    name: str
    change: Literal["created", "updated", "disabled"]
    attributes: list[str] = ModelField(default_factory=list)


class SchemaApplyResult(_Model):
    files: int
    created: int
    updated: int
    unchanged: int
    # Definitions the files no longer have: disabled (kept for PII masking and lineage).
    disabled: int = 0
    definitions: list[FieldDefinition]
    dry_run: bool = False
    changes: list[DefinitionChange] = ModelField(default_factory=list)


class FieldCheck(_Model):
    field: str
    status: Literal["valid", "invalid", "undefined", "expired"]
    message: str | None = None


class ValidationReport(_Model):
    tenant: str
    customer: str
    merged_into: str | None = None
    agent: str
    valid: bool
    checked: int
    results: list[FieldCheck]


class DeleteResult(_Model):
    id: str
    kind: ItemKind
    deleted: bool
    orphaned: list[str]


class EraseResult(_Model):
    tenant: str
    customer: str
    fields: int
    assets: int
    identities: int = 0
    # Ids of customers merged into this one: erased with it.
    aliases: list[str] = ModelField(default_factory=list)
    orphaned: list[str]


class AuditEvent(_Model):
    """One audit event (SPEC §11 keys): ids, names, statuses and actors, never a value."""

    at: Time
    tenant: str
    customer: str | None
    item_id: str | None
    kind: str | None = None
    name: str | None
    event: str
    from_status: str | None = None
    to_status: str | None = None
    actor: str
    detail: dict[str, Any] = ModelField(default_factory=dict)


class AuditPage(_Model):
    """`ccv audit`: events newest first; `next_cursor` continues where `truncated` stopped."""

    events: list[AuditEvent]
    truncated: bool
    next_cursor: str | None = None


class LineageDepths(_Model):
    """Active values by lineage depth: how many vault items lie above each up to its root."""

    max_depth: int = 0
    histogram: dict[str, int] = ModelField(default_factory=dict)


class TenantReport(_Model):
    """One tenant in `ccv report` (SPEC §11): stored statuses; `overdue` counts the active
    values and assets past `expires_at` that the expiry sweep has not marked yet."""

    customers: int = 0
    identities: int = 0
    fields: dict[str, int] = ModelField(default_factory=dict)
    assets: dict[str, int] = ModelField(default_factory=dict)
    overdue: int = 0
    expiring: dict[str, int] = ModelField(default_factory=lambda: {"1d": 0, "7d": 0})
    requires_confirmation: int = 0
    lineage: LineageDepths = ModelField(default_factory=LineageDepths)
    invalid: dict[str, int] = ModelField(default_factory=dict)


class Report(_Model):
    now: Time
    tenants: dict[str, TenantReport]


class Finding(_Model):
    """One problem in an input file, where it is and a stable code."""

    file: str
    line: int
    column: int
    code: str
    message: str


class CacheStats(_Model):
    """`cache stats` (SPEC §5 JSON shape): counters of every process sharing the cache."""

    hits: int
    misses: int
    errors: int
    # hits / (hits + misses); None before the first lookup.
    hit_rate: float | None


class CacheFlush(_Model):
    """`cache flush`: which entries were dropped (`deleted` counts keys when all were)."""

    tenant: str | None
    deleted: int | None
