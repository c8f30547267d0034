"""Schema files (SPEC §3): one agent's field definitions, checked with file positions."""

from __future__ import annotations

import re
from typing import Any

from ccv.domain.enums import ValidationMode, ValueType
from ccv.domain.identifiers import check_field_name, check_key, check_slug
from ccv.domain.models import FieldDefinition, Finding
from ccv.domain.records import did_you_mean
from ccv.domain.yamldoc import YamlDoc

SCHEMA_KEYS = frozenset({"tenant", "agent", "description", "fields"})
DEFINITION_KEYS = frozenset(
    {
        "name",
        "display_name",
        "description",
        "value_type",
        "validation_regex",
        "allowed_values",
        "validation_mode",
        "required_verification",
        "verification_methods",
        "collection_prompt",
        "extraction_examples",
        "extraction_hint",
        "is_pii",
        "retention_days",
        "freshness_seconds",
        "enabled",
    }
)
_TEXT = ("display_name", "description", "collection_prompt", "extraction_hint")
_BOOLS = ("required_verification", "is_pii", "enabled")
_POSITIVE = ("retention_days", "freshness_seconds")


class _Collector:
    def __init__(self, path: str, doc: YamlDoc) -> None:
        self.path = path
        self.doc = doc
        self.findings: list[Finding] = []

    def add(self, code: str, message: str, *where: str | int) -> None:
        line, column = self.doc.where(*where)
        self.findings.append(
            Finding(file=self.path, line=line, column=column, code=code, message=message)
        )


def _check_definition(
    raw: Any, index: int, tenant: str, agent: str, out: _Collector
) -> FieldDefinition | None:
    at: tuple[str | int, ...] = ("fields", index)
    if not isinstance(raw, dict):
        out.add("invalid-value", "a field definition must be a mapping", *at)
        return None
    ok = True
    for key in raw:
        if key not in DEFINITION_KEYS:
            out.add(
                "unknown-key",
                f"unknown key '{key}' in a field definition"
                + did_you_mean(str(key), DEFINITION_KEYS),
                *at,
                key,
            )
            ok = False
    if "name" not in raw:
        out.add("missing-key", "a field definition needs a 'name'", *at)
        return None
    try:
        check_field_name(raw["name"])
    except ValueError as exc:
        out.add("invalid-name", str(exc), *at, "name")
        return None
    values: dict[str, Any] = {"tenant": tenant, "agent": agent, "name": raw["name"]}
    for key in _TEXT:
        if raw.get(key) is not None:
            if not isinstance(raw[key], str):
                out.add("invalid-value", f"{key} must be text", *at, key)
                ok = False
            else:
                values[key] = raw[key]
    for key in _BOOLS:
        if raw.get(key) is not None:
            if not isinstance(raw[key], bool):
                out.add("invalid-value", f"{key} must be true or false", *at, key)
                ok = False
            else:
                values[key] = raw[key]
    for key in _POSITIVE:
        value = raw.get(key)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                out.add("invalid-value", f"{key} must be a positive whole number", *at, key)
                ok = False
            else:
                values[key] = value
    try:
        values["value_type"] = ValueType(raw.get("value_type", "string"))
    except ValueError:
        allowed = ", ".join(v.value for v in ValueType)
        out.add("invalid-value", f"value_type must be one of: {allowed}", *at, "value_type")
        ok = False
    if raw.get("validation_mode") is not None:
        try:
            values["validation_mode"] = ValidationMode(raw["validation_mode"])
        except ValueError:
            out.add(
                "invalid-value",
                "validation_mode must be one of: strict, warn, disabled",
                *at,
                "validation_mode",
            )
            ok = False
    regex = raw.get("validation_regex")
    if regex is not None:
        try:
            if not isinstance(regex, str):
                raise re.error("not text")
            re.compile(regex)
            values["validation_regex"] = regex
        except re.error:
            out.add(
                "invalid-value",
                "validation_regex is not a valid regular expression",
                *at,
                "validation_regex",
            )
            ok = False
    allowed_values = raw.get("allowed_values")
    if allowed_values is not None:
        if not isinstance(allowed_values, list) or not allowed_values:
            out.add(
                "invalid-value", "allowed_values must be a non-empty list", *at, "allowed_values"
            )
            ok = False
        else:
            values["allowed_values"] = allowed_values
    if values.get("value_type") is ValueType.ENUM and "allowed_values" not in values and ok:
        out.add("missing-key", "an enum field needs allowed_values", *at)
        ok = False
    for key in ("verification_methods", "extraction_examples"):
        value = raw.get(key)
        if value is not None:
            if not isinstance(value, list):
                out.add("invalid-value", f"{key} must be a list", *at, key)
                ok = False
            else:
                values[key] = value
    return FieldDefinition(**values) if ok else None


def parse_schema(path: str, doc: YamlDoc) -> tuple[list[FieldDefinition], list[Finding]]:
    """The definitions of one schema file, or the findings that stop it from loading."""
    out = _Collector(path, doc)
    data = doc.data
    if not isinstance(data, dict):
        out.add("invalid-file", "a schema file must be a mapping with tenant, agent and fields")
        return [], out.findings
    for key in data:
        if key not in SCHEMA_KEYS:
            out.add("unknown-key", f"unknown key '{key}'{did_you_mean(str(key), SCHEMA_KEYS)}", key)
    for key in ("tenant", "agent", "fields"):
        if key not in data:
            out.add("missing-key", f"missing key '{key}'")
    if out.findings:
        return [], out.findings
    try:
        tenant = check_key(data["tenant"], "tenant")
    except ValueError as exc:
        out.add("invalid-value", str(exc), "tenant")
        tenant = ""
    try:
        agent = check_slug(data["agent"], "agent")
    except ValueError as exc:
        out.add("invalid-name", str(exc), "agent")
        agent = ""
    if not isinstance(data["fields"], list):
        out.add("invalid-value", "fields must be a list of field definitions", "fields")
        return [], out.findings
    definitions: list[FieldDefinition] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(data["fields"]):
        definition = _check_definition(raw, index, tenant, agent, out)
        if definition is None:
            continue
        if definition.name in seen:
            line, _ = doc.where("fields", seen[definition.name])
            out.add(
                "duplicate-field",
                f"field '{definition.name}' is defined twice (first at line {line})",
                "fields",
                index,
            )
            continue
        seen[definition.name] = index
        definition.source_file = path
        definitions.append(definition)
    return (definitions, out.findings) if not out.findings else ([], out.findings)
