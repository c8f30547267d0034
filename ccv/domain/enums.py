"""The closed vocabularies of SPEC §2: statuses, sources, value types and modes."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    ACTIVE = "active"
    SUPERSEDED = "superseded"
    EXPIRED = "expired"
    ORPHANED = "orphaned"


class Source(StrEnum):
    USER_PROVIDED = "user_provided"
    LLM_EXTRACTED = "llm_extracted"
    TOOL_RESULT = "tool_result"
    DOCUMENT_EXTRACTED = "document_extracted"
    HUMAN_ENTERED = "human_entered"
    SYSTEM_INFERRED = "system_inferred"
    IMPORTED = "imported"


class SourceItemType(StrEnum):
    PROFILE_FIELD = "profile_field"
    PROFILE_ASSET = "profile_asset"
    SESSION = "session"
    TOOL = "tool"
    EXTERNAL = "external"

    @property
    def is_vault_item(self) -> bool:
        return self in (SourceItemType.PROFILE_FIELD, SourceItemType.PROFILE_ASSET)


class AssetType(StrEnum):
    IMAGE = "image"
    PDF = "pdf"
    DOCUMENT = "document"
    AUDIO = "audio"
    OTHER = "other"


class ValueType(StrEnum):
    STRING = "string"
    EMAIL = "email"
    PHONE = "phone"
    DATE = "date"
    DATETIME = "datetime"
    NUMBER = "number"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    ENUM = "enum"
    JSON = "json"


class ValidationMode(StrEnum):
    STRICT = "strict"
    WARN = "warn"
    DISABLED = "disabled"


class ItemKind(StrEnum):
    FIELD = "field"
    ASSET = "asset"


class Level(StrEnum):
    HARD = "hard"
    SOFT = "soft"


class Fallback(StrEnum):
    ASK = "ask"
    SKIP = "skip"
    BLOCK = "block"
    EXTRACT = "extract"
