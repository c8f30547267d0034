"""How a tenant's field definitions judge a value when several agents define the same name."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ccv.domain.enums import ValidationMode, ValueType
from ccv.domain.models import FieldDefinition
from ccv.domain.validators import Validator, make_validator

_STRICTNESS = {ValidationMode.DISABLED: 0, ValidationMode.WARN: 1, ValidationMode.STRICT: 2}


@dataclass
class FieldRules:
    """The merged rules of one field name across a tenant's agents (SPEC §3)."""

    name: str
    value_type: ValueType
    definitions: list[FieldDefinition]
    validators: list[Validator]
    is_pii: bool
    retention_days: int | None
    mode: ValidationMode

    def __post_init__(self) -> None:
        self._enabled = [
            (definition.id, validator)
            for definition, validator in zip(self.definitions, self.validators, strict=True)
            if definition.enabled
        ]

    def check(self, value: Any) -> tuple[str | None, str | None]:
        """(error or None, id of the accepting definition): valid if any enabled one accepts."""
        first_error: str | None = None
        for definition_id, validator in self._enabled:
            error = validator(value)
            if error is None:
                return None, definition_id
            first_error = first_error or error
        return first_error or "has no enabled definition", None


def compile_rules(definitions: Iterable[FieldDefinition]) -> dict[str, FieldRules]:
    grouped: dict[str, list[FieldDefinition]] = defaultdict(list)
    for definition in definitions:
        grouped[definition.name].append(definition)
    rules: dict[str, FieldRules] = {}
    for name, group in grouped.items():
        group.sort(key=lambda d: d.agent)
        enabled = [d for d in group if d.enabled] or group
        retention = [d.retention_days for d in enabled if d.retention_days]
        rules[name] = FieldRules(
            name=name,
            value_type=group[0].value_type,
            definitions=group,
            validators=[
                make_validator(
                    d.value_type,
                    validation_regex=d.validation_regex,
                    allowed_values=d.allowed_values,
                )
                for d in group
            ],
            is_pii=any(d.is_pii for d in group),
            retention_days=min(retention) if retention else None,
            mode=max((d.validation_mode for d in enabled), key=_STRICTNESS.__getitem__),
        )
    return rules
