"""Rows to models, and the PII masking applied on the way out."""

from __future__ import annotations

from typing import Any

from ccv.domain.definitions import FieldRules
from ccv.domain.models import AssetVersion, FieldVersion
from ccv.domain.validators import mask_value


def field_model(row: Any, rules: dict[str, FieldRules], reveal: bool) -> FieldVersion:
    data = dict(row._mapping)
    data.pop("content_hash", None)
    data["source_metadata"] = data.get("source_metadata") or {}
    rule = rules.get(data["name"])
    data["is_pii"] = bool(rule and rule.is_pii)
    if data["is_pii"] and not reveal:
        data["value"] = mask_value(data["value"], rule.value_type if rule else None)
        data["masked"] = True
    return FieldVersion.model_validate(data)


def asset_model(row: Any, analysis: dict[str, list[str]]) -> AssetVersion:
    data = dict(row._mapping)
    data.pop("content_hash", None)
    data["analysis_field_ids"] = analysis.get(data["id"], [])
    return AssetVersion.model_validate(data)


def field_from_row(row: dict[str, Any]) -> FieldVersion:
    """The model of a row just written (PII flags need the schema: use get_profile for output)."""
    data = {k: v for k, v in row.items() if k != "content_hash"}
    data["source_metadata"] = data.get("source_metadata") or {}
    return FieldVersion.model_validate(data)
