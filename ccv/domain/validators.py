"""Value validation for field definitions (SPEC §2, §3): compile a definition once into a validator,
convert wide-CSV cells to JSON values, and mask PII for output. Pure: no I/O.

Error messages are sentence fragments ("is not a valid email address") that never contain the
value, because values may be PII and callers put the messages in logs and import reports.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ccv.domain.enums import ValidationMode, ValueType

__all__ = [
    "Definition",
    "Validator",
    "check_value",
    "coerce_cell",
    "json_type_name",
    "make_validator",
    "mask_value",
]

Validator = Callable[[Any], str | None]
"""Returns None when the value is valid, else a short error fragment without the value."""

MAX_EMAIL_LENGTH = 254
MAX_EMAIL_LOCAL_LENGTH = 64
MASK = "***"
_MAX_LISTED_VALUES = 10

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# Dot-atom local part (no quoted strings, no leading/trailing/double dots), an ASCII domain of at
# least two labels, and a TLD that is alphabetic or an IDN A-label (xn--...). Strict on purpose:
# exotic-but-legal RFC 5322 forms are far rarer in customer data than typos.
_TLD = r"(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59})"
_EMAIL_RE = re.compile(rf"(?P<local>{_ATOM}(?:\.{_ATOM})*)@(?P<domain>(?:{_LABEL}\.)+{_TLD})")
_PHONE_RE = re.compile(r"\+[1-9][0-9]{7,14}")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# datetime.fromisoformat (3.11) also takes basic forms ("20260301T1000Z") and week dates; values
# are exchanged with other systems, so only the common extended calendar form is accepted.
_DATETIME_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]{1,9})?)?"
    r"(?:[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)"
)
_INTEGER_TEXT_RE = re.compile(r"[+-]?[0-9]+")
_NUMBER_TEXT_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_TRUE_WORDS = frozenset({"true", "yes", "1"})
_FALSE_WORDS = frozenset({"false", "no", "0"})

_PHONE_ERROR = "is not an E.164 phone number (+ and 8-15 digits)"
_EMAIL_ERROR = "is not a valid email address"
_DATE_ERROR = "is not a calendar date in YYYY-MM-DD form"
_DATETIME_ERROR = "is not an ISO 8601 date-time (YYYY-MM-DDTHH:MM[:SS] with Z or an offset)"


def json_type_name(value: Any) -> str:
    """The JSON name of a value's type, for messages: the type, never the value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def _got(value: Any) -> str:
    return f"(got {json_type_name(value)})"


# --- one checker per value type -------------------------------------------------------------


def _check_string(value: Any) -> str | None:
    return None if isinstance(value, str) else f"is not a string {_got(value)}"


def _check_email(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"{_EMAIL_ERROR} {_got(value)}"
    if len(value) > MAX_EMAIL_LENGTH:
        return f"{_EMAIL_ERROR} (longer than {MAX_EMAIL_LENGTH} characters)"
    match = _EMAIL_RE.fullmatch(value)
    if match is None or len(match.group("local")) > MAX_EMAIL_LOCAL_LENGTH:
        return _EMAIL_ERROR
    return None


def _check_phone(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"{_PHONE_ERROR} {_got(value)}"
    return None if _PHONE_RE.fullmatch(value) else _PHONE_ERROR


def _check_date(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"{_DATE_ERROR} {_got(value)}"
    if not _DATE_RE.fullmatch(value):
        return _DATE_ERROR
    try:
        date.fromisoformat(value)
    except ValueError:
        return _DATE_ERROR
    return None


def _check_datetime(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"{_DATETIME_ERROR} {_got(value)}"
    if not _DATETIME_RE.fullmatch(value):
        # Say what is missing when that is the only problem: the commonest mistake.
        if _DATETIME_RE.fullmatch(value + "Z"):
            return "is a date-time without a timezone (add Z or an offset such as +02:00)"
        return _DATETIME_ERROR
    text = value[:-1] + "+00:00" if value[-1] in "Zz" else value
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return _DATETIME_ERROR
    if parsed.tzinfo is None:  # unreachable with the shape check; kept as the real rule
        return "is a date-time without a timezone (add Z or an offset such as +02:00)"
    return None


def _check_number(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"is not a number {_got(value)}"
    # Only floats can be non-finite; math.isfinite on a huge int would overflow.
    if isinstance(value, float) and not math.isfinite(value):
        return "is not a finite number"
    return None


def _check_integer(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return f"is not an integer {_got(value)}"
    return None


def _check_boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"is not a boolean {_got(value)}"


def _check_json(value: Any) -> str | None:
    # Iterative, so that deeply nested values cannot raise RecursionError.
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if item is None or isinstance(item, str | bool | int):
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                return "is not JSON: NaN and infinity have no JSON form"
            continue
        if isinstance(item, list | tuple):
            stack.extend(item)
            continue
        if isinstance(item, dict):
            if not all(isinstance(key, str) for key in item):
                return "is not JSON: object keys must be strings"
            stack.extend(item.values())
            continue
        return f"is not JSON-serialisable {_got(item)}"
    return None


_TYPE_CHECKS: dict[ValueType, Validator] = {
    ValueType.STRING: _check_string,
    ValueType.EMAIL: _check_email,
    ValueType.PHONE: _check_phone,
    ValueType.DATE: _check_date,
    ValueType.DATETIME: _check_datetime,
    ValueType.NUMBER: _check_number,
    ValueType.INTEGER: _check_integer,
    ValueType.BOOLEAN: _check_boolean,
    ValueType.ENUM: _check_json,  # membership in allowed_values is the real check
    ValueType.JSON: _check_json,
}


# --- allowed values -------------------------------------------------------------------------


def _kind(value: Any) -> str:
    """Equality class for allowed_values: True must not match 1, but 1 may match 1.0."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return json_type_name(value)


def _canonical(value: Any) -> str:
    # Unhashable values (objects, arrays) compare by canonical JSON, which keeps true != 1.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)


def _render(value: Any) -> str:
    return value if isinstance(value, str) else _canonical(value)


def _membership(allowed: Sequence[Any]) -> Validator:
    hashable: set[tuple[str, Any]] = set()
    unhashable: set[str] = set()
    for option in allowed:
        try:
            hashable.add((_kind(option), option))
        except TypeError:  # objects and arrays
            unhashable.add(_canonical(option))
    shown = [_render(option) for option in allowed[:_MAX_LISTED_VALUES]]
    more = len(allowed) - len(shown)
    listing = ", ".join(shown) + (f" (and {more} more)" if more > 0 else "")
    error = f"is not one of: {listing}"

    def check(value: Any) -> str | None:
        try:
            return None if (_kind(value), value) in hashable else error
        except TypeError:  # objects and arrays
            pass
        try:
            key = _canonical(value)
        except (TypeError, ValueError, RecursionError):
            return error
        return None if key in unhashable else error

    return check


# --- public API -----------------------------------------------------------------------------


def make_validator(
    value_type: ValueType,
    *,
    validation_regex: str | None = None,
    allowed_values: Sequence[Any] | None = None,
) -> Validator:
    """Compile once, call per value; must be cheap (target < 20 microseconds per call).

    The type check runs first; then `allowed_values` (required for `enum`, honoured for any type
    when given); then `validation_regex` with re.fullmatch. The regex applies only to string
    values: matching str(42) or str(True) against a pattern written for text would make the
    outcome depend on Python's spelling of numbers ("True", "1e+20"), which users never see.
    Raises ValueError for an invalid regex or an enum without allowed values.
    """
    type_check = _TYPE_CHECKS[ValueType(value_type)]
    pattern: re.Pattern[str] | None = None
    if validation_regex is not None:
        try:
            pattern = re.compile(validation_regex)
        except re.error as exc:
            raise ValueError(
                f"validation_regex {validation_regex!r} is not a valid regular expression: {exc}"
            ) from None
    if value_type == ValueType.ENUM and not allowed_values:
        raise ValueError("an enum field needs a non-empty allowed_values list")
    member_check = _membership(list(allowed_values)) if allowed_values is not None else None
    if pattern is None and member_check is None:
        return type_check
    pattern_error = f"does not match the pattern {pattern.pattern}" if pattern is not None else ""

    def validate(value: Any) -> str | None:
        error = type_check(value)
        if error is not None:
            return error
        if member_check is not None:
            error = member_check(value)
            if error is not None:
                return error
        if pattern is not None and isinstance(value, str) and not pattern.fullmatch(value):
            return pattern_error
        return None

    return validate


def failure_code(error: str) -> str:
    """A stable code for a validator's message (logs and metrics carry codes, not values):
    `allowed_values`, `pattern`, `disabled` (no enabled definition) or `type`."""
    if error.startswith("is not one of"):
        return "allowed_values"
    if error.startswith("does not match the pattern"):
        return "pattern"
    if error == "has no enabled definition":
        return "disabled"
    return "type"


def coerce_cell(text: str, value_type: ValueType) -> Any:
    """Convert a wide-CSV cell (always a string) to the JSON value of value_type.

    Text types (string, email, phone, enum, date, datetime) come back stripped; their format is
    left to the validator. Raises ValueError with a fragment such as "is not an integer" — never
    the cell text, which may be PII.
    """
    value_type = ValueType(value_type)
    stripped = text.strip()
    if value_type == ValueType.INTEGER:
        if not _INTEGER_TEXT_RE.fullmatch(stripped):
            raise ValueError("is not an integer")
        try:
            return int(stripped)
        except ValueError:  # beyond Python's int-from-string digit limit
            raise ValueError("is not an integer (too many digits)") from None
    if value_type == ValueType.NUMBER:
        if _INTEGER_TEXT_RE.fullmatch(stripped):
            try:
                return int(stripped)
            except ValueError:
                raise ValueError("is not a number (too many digits)") from None
        if not _NUMBER_TEXT_RE.fullmatch(stripped):
            raise ValueError("is not a number")
        number = float(stripped)
        if not math.isfinite(number):
            raise ValueError("is not a finite number")
        return number
    if value_type == ValueType.BOOLEAN:
        word = stripped.casefold()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
        raise ValueError("is not a boolean (use true/false, yes/no or 1/0)")
    if value_type == ValueType.JSON:
        return _loads_cell(stripped)
    return stripped


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _loads_cell(text: str) -> Any:
    try:
        # parse_constant: Python's json accepts NaN and Infinity, which are not JSON.
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise ValueError("is not valid JSON") from None


def mask_value(value: Any, value_type: ValueType | None) -> Any:
    """PII masking for output: 'ana@example.com' -> 'a***@example.com', anything else -> '***'.

    None stays None (there is nothing to hide). With no value_type, a string shaped like an email
    address is masked as one.
    """
    if value is None:
        return None
    if (
        isinstance(value, str)
        and "@" in value
        and (value_type == ValueType.EMAIL or (value_type is None and _check_email(value) is None))
    ):
        local, _, domain = value.rpartition("@")
        if domain:
            return f"{local[:1]}{MASK}@{domain}"
    return MASK


@dataclass(frozen=True)
class Definition:
    """The subset of a field definition that validation needs."""

    agent: str
    value_type: ValueType
    validation_regex: str | None = None
    allowed_values: tuple[Any, ...] | None = None
    validation_mode: ValidationMode = ValidationMode.STRICT
    enabled: bool = True

    def compile(self) -> Validator:
        return make_validator(
            self.value_type,
            validation_regex=self.validation_regex,
            allowed_values=self.allowed_values,
        )


def check_value(
    value: Any, definitions: Sequence[Definition], validators: Sequence[Validator]
) -> str | None:
    """Validate against every definition of one name across a tenant's agents (SPEC §2).

    A value is valid if ANY enabled definition accepts it. Returns None if valid, else the error of
    the first enabled definition. `validators[i]` is the compiled validator of `definitions[i]`.
    `validation_mode` is not applied here: what an error costs (reject, warn, ignore) is the
    caller's decision.
    """
    if len(definitions) != len(validators):
        raise ValueError("check_value needs exactly one validator per definition")
    first_error: str | None = None
    for definition, validator in zip(definitions, validators, strict=True):
        if not definition.enabled:
            continue
        error = validator(value)
        if error is None:
            return None
        if first_error is None:
            first_error = error
    return "has no enabled definition" if first_error is None else first_error
