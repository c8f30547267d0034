"""Rows to models, and the PII masking applied on the way out."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from ccv.domain.enums import AssetType, Source, SourceItemType, Status, ValueType
from ccv.domain.identity import is_pii as identity_is_pii
from ccv.domain.identity import mask as identity_mask
from ccv.domain.lifecycle import status_at
from ccv.domain.models import AssetVersion, FieldVersion, Identity, Profile
from ccv.domain.validators import MASK, mask_value

M = TypeVar("M", bound=BaseModel)

# source_metadata keys that hold free text quoting the customer, masked with a PII value.
FREE_TEXT_KEYS = frozenset({"quote", "text", "snippet", "excerpt", "evidence"})


def _effective(data: dict[str, Any], now: datetime) -> None:
    data["status"] = status_at(Status(data["status"]), data.get("expires_at"), now)


def field_model(row: Any, reveal: bool, now: datetime) -> FieldVersion:
    """A stored field version of any status (its row carries `is_pii`), masked unless
    `reveal`; the status as of `now`. (The current view builds its own: `current_field`.)"""
    data = dict(row._mapping)
    data.pop("content_hash", None)
    _effective(data, now)
    data["source_metadata"] = data.get("source_metadata") or {}
    data["is_pii"] = bool(data.get("is_pii"))
    if data["is_pii"] and not reveal:
        value_type = ValueType(data["value_type"]) if data.get("value_type") else None
        data["value"] = mask_value(data["value"], value_type)
        data["masked"] = True
        # A supporting quote from a conversation or document repeats the value verbatim.
        data["source_metadata"] = {
            key: MASK if key in FREE_TEXT_KEYS and value is not None else value
            for key, value in data["source_metadata"].items()
        }
    return FieldVersion.model_validate(data)


def asset_model(row: Any, analysis: dict[str, list[str]], now: datetime) -> AssetVersion:
    """A stored asset version of any status; the status as of `now`."""
    data = dict(row._mapping)
    data.pop("content_hash", None)
    _effective(data, now)
    data["analysis_field_ids"] = analysis.get(data["id"], [])
    return AssetVersion.model_validate(data)


def field_from_row(row: dict[str, Any]) -> FieldVersion:
    """The model of a row just written (PII flags need the schema: use get_profile for output)."""
    data = {k: v for k, v in row.items() if k != "content_hash"}
    data["source_metadata"] = data.get("source_metadata") or {}
    return FieldVersion.model_validate(data)


def identity_from_data(data: dict[str, Any], reveal: bool) -> Identity:
    """A channel identity (a row as a dict, from the database or the cache), its id masked
    when it is an email address or a phone number, unless `reveal`."""
    shown = dict(data)
    if not reveal and identity_is_pii(shown["channel"], shown["channel_user_id"]):
        shown["channel_user_id"] = identity_mask(shown["channel"], shown["channel_user_id"])
        shown["masked"] = True
    return Identity.model_validate(shown)


def identity_model(row: Any, reveal: bool) -> Identity:
    """`identity_from_data` of a stored identity (`ccv.store.identities.IdentityRow`)."""
    return identity_from_data(row._asdict(), reveal)


# --- the hot read: models straight from rows the vault wrote (ccv.store.reads) ---------------
# Those rows were validated when they were written, and their values are already decoded, so
# the models are built without validating them again: the same instances `model_validate`
# would build (a test compares them), at a fraction of the cost per field.

_STATUS = {member.value: member for member in Status}
_VALUE_TYPE = {member.value: member for member in ValueType}
_SOURCE = {member.value: member for member in Source}
_SOURCE_TYPE = {member.value: member for member in SourceItemType}
_ASSET_TYPE = {member.value: member for member in AssetType}
_FIELD_SET = frozenset(FieldVersion.model_fields)
_ASSET_SET = frozenset(AssetVersion.model_fields)
_IDENTITY_SET = frozenset(Identity.model_fields)
_PROFILE_SET = frozenset(Profile.model_fields)
_new = object.__new__
_set = object.__setattr__


def built(cls: type[M], values: dict[str, Any], fields_set: frozenset[str] | None = None) -> M:
    """A model of `values`, which hold every field of `cls` in its types already."""
    model = _new(cls)
    _set(model, "__dict__", values)
    _set(model, "__pydantic_fields_set__", set(values if fields_set is None else fields_set))
    _set(model, "__pydantic_extra__", None)
    _set(model, "__pydantic_private__", None)
    return model


def current_field(row: dict[str, Any], tenant: str) -> FieldVersion:
    """A current field version (active, unexpired) from its decoded row, PII masked."""
    value = row["value"]
    value_type = _VALUE_TYPE.get(row["value_type"]) if row["value_type"] else None
    metadata = row["source_metadata"] or {}
    pii = bool(row["is_pii"])
    if pii:
        value = mask_value(value, value_type)
        metadata = {
            key: MASK if key in FREE_TEXT_KEYS and item is not None else item
            for key, item in metadata.items()
        }
    source_type = row["source_item_type"]
    return built(
        FieldVersion,
        {
            "kind": "field",
            "id": row["id"],
            "tenant": tenant,
            "customer": row["customer"],
            "name": row["name"],
            "value": value,
            "value_type": value_type,
            "source": _SOURCE[row["source"]],
            "source_item_id": row["source_item_id"],
            "source_item_type": _SOURCE_TYPE[source_type] if source_type else None,
            "source_metadata": metadata,
            "status": _STATUS[row["status"]],
            "superseded_by_id": row["superseded_by_id"],
            "superseded_at": row["superseded_at"],
            "confidence": row["confidence"],
            "requires_confirmation": row["requires_confirmation"],
            "verified": row["verified"],
            "verification_method": row["verification_method"],
            "collected_at": row["collected_at"],
            "updated_at": row["updated_at"],
            "expires_at": row["expires_at"],
            "field_definition_id": row["field_definition_id"],
            "is_pii": pii,
            "masked": pii,
        },
        _FIELD_SET,
    )


def current_asset(row: dict[str, Any], tenant: str, analysis: dict[str, list[str]]) -> AssetVersion:
    """A current asset version from its decoded row."""
    source_type = row["source_item_type"]
    return built(
        AssetVersion,
        {
            "kind": "asset",
            "id": row["id"],
            "tenant": tenant,
            "customer": row["customer"],
            "name": row["name"],
            "asset_type": _ASSET_TYPE[row["asset_type"]],
            "storage_uri": row["storage_uri"],
            "mime_type": row["mime_type"],
            "size_bytes": row["size_bytes"],
            "checksum": row["checksum"],
            "source_item_id": row["source_item_id"],
            "source_item_type": _SOURCE_TYPE[source_type] if source_type else None,
            "derived_from_tool": row["derived_from_tool"],
            "status": _STATUS[row["status"]],
            "superseded_by_id": row["superseded_by_id"],
            "superseded_at": row["superseded_at"],
            "verified": row["verified"],
            "collected_at": row["collected_at"],
            "updated_at": row["updated_at"],
            "expires_at": row["expires_at"],
            "analysis_field_ids": list(analysis.get(row["id"], ())),
        },
        _ASSET_SET,
    )


def current_identity(row: dict[str, Any]) -> Identity:
    """A channel identity from its decoded row, masked when it is PII."""
    channel, user_id = row["channel"], row["channel_user_id"]
    masked = identity_is_pii(channel, user_id)
    return built(
        Identity,
        {
            "tenant": row["tenant"],
            "channel": channel,
            "channel_user_id": identity_mask(channel, user_id) if masked else user_id,
            "customer": row["customer"],
            "verified": row["verified"],
            "linked_at": row["linked_at"],
            "source": row["source"],
            "masked": masked,
        },
        _IDENTITY_SET,
    )
