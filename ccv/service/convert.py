"""Rows to models, and the PII masking applied on the way out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ccv.domain.enums import Status, ValueType
from ccv.domain.identity import is_pii as identity_is_pii
from ccv.domain.identity import mask as identity_mask
from ccv.domain.lifecycle import status_at
from ccv.domain.models import AssetVersion, FieldVersion, Identity
from ccv.domain.validators import MASK, mask_value

# source_metadata keys that hold free text quoting the customer, masked with a PII value.
FREE_TEXT_KEYS = frozenset({"quote", "text", "snippet", "excerpt", "evidence"})


def _effective(data: dict[str, Any], now: datetime) -> None:
    data["status"] = status_at(Status(data["status"]), data.get("expires_at"), now)


def field_model(row: Any, reveal: bool, now: datetime) -> FieldVersion:
    """A stored field version (its row carries `is_pii`), masked unless `reveal`."""
    return field_from_data(dict(row._mapping), reveal, now)


def field_from_data(data: dict[str, Any], reveal: bool, now: datetime) -> FieldVersion:
    """`field_model` of a row already turned into a dict (which it changes), e.g. from the
    cache, where rows are kept unmasked and masked on the way out like database rows."""
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
    return asset_from_data(dict(row._mapping), analysis, now)


def asset_from_data(
    data: dict[str, Any], analysis: dict[str, list[str]], now: datetime
) -> AssetVersion:
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
