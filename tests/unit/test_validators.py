"""Unit tests for ccv.domain.validators: type checks, regex, enums, CSV cells, masking."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccv.domain.enums import ValidationMode, ValueType
from ccv.domain.validators import (
    Definition,
    check_value,
    coerce_cell,
    make_validator,
    mask_value,
)

VALID: list[tuple[ValueType, Any]] = [
    (ValueType.STRING, "Ana Lima"),
    (ValueType.STRING, ""),
    (ValueType.STRING, "42"),
    (ValueType.STRING, "ünïcødé ✓"),
    (ValueType.EMAIL, "ana@example.com"),
    (ValueType.EMAIL, "ana.lima+kyc@mail.example.co.uk"),
    (ValueType.EMAIL, "o'brien@example.ie"),
    (ValueType.EMAIL, "x@a-b.io"),
    (ValueType.EMAIL, "user@xn--bcher-kva.example"),
    (ValueType.EMAIL, "user@example.xn--p1ai"),
    (ValueType.PHONE, "+4915112345678"),
    (ValueType.PHONE, "+12025550123"),
    (ValueType.PHONE, "+12345678"),
    (ValueType.PHONE, "+123456789012345"),
    (ValueType.DATE, "2026-03-01"),
    (ValueType.DATE, "2024-02-29"),
    (ValueType.DATE, "1900-01-01"),
    (ValueType.DATETIME, "2026-03-01T10:00:00Z"),
    (ValueType.DATETIME, "2026-03-01T10:00:00z"),
    (ValueType.DATETIME, "2026-03-01T10:00:00+02:00"),
    (ValueType.DATETIME, "2026-03-01T10:00:00.123456-05:30"),
    (ValueType.DATETIME, "2026-03-01T10:00Z"),
    (ValueType.DATETIME, "2026-03-01 10:00:00+00:00"),
    (ValueType.DATETIME, "2026-03-01T10:00:00+0100"),
    (ValueType.NUMBER, 0),
    (ValueType.NUMBER, -3),
    (ValueType.NUMBER, 4.2),
    (ValueType.NUMBER, 1e300),
    (ValueType.NUMBER, 10**400),
    (ValueType.INTEGER, 0),
    (ValueType.INTEGER, -42),
    (ValueType.INTEGER, 10**30),
    (ValueType.BOOLEAN, True),
    (ValueType.BOOLEAN, False),
    (ValueType.JSON, {"a": [1, 2.5, None, True, "x", {"b": {}}]}),
    (ValueType.JSON, []),
    (ValueType.JSON, "text"),
    (ValueType.JSON, 7),
    (ValueType.JSON, None),
    (ValueType.JSON, False),
]

INVALID: list[tuple[ValueType, Any]] = [
    (ValueType.STRING, 42),
    (ValueType.STRING, None),
    (ValueType.STRING, ["a"]),
    (ValueType.EMAIL, "ana.example.com"),
    (ValueType.EMAIL, "ana@@example.com"),
    (ValueType.EMAIL, "ana@exa@mple.com"),
    (ValueType.EMAIL, "ana@localhost"),
    (ValueType.EMAIL, "ana lima@example.com"),
    (ValueType.EMAIL, "ana@example .com"),
    (ValueType.EMAIL, " ana@example.com"),
    (ValueType.EMAIL, "ana@example.com\n"),
    (ValueType.EMAIL, "@example.com"),
    (ValueType.EMAIL, "ana@"),
    (ValueType.EMAIL, ".ana@example.com"),
    (ValueType.EMAIL, "ana.@example.com"),
    (ValueType.EMAIL, "a..na@example.com"),
    (ValueType.EMAIL, "ana@-example.com"),
    (ValueType.EMAIL, "ana@example-.com"),
    (ValueType.EMAIL, "ana@example..com"),
    (ValueType.EMAIL, "ana@example.c"),
    (ValueType.EMAIL, "ana@example.123"),
    (ValueType.EMAIL, "a" * 65 + "@example.com"),
    (ValueType.EMAIL, "ana@" + "b" * 64 + ".com"),
    (ValueType.EMAIL, 42),
    (ValueType.EMAIL, None),
    (ValueType.PHONE, "4915112345678"),
    (ValueType.PHONE, "+0915112345678"),
    (ValueType.PHONE, "+1234567"),
    (ValueType.PHONE, "+1234567890123456"),
    (ValueType.PHONE, "+49 151 12345678"),
    (ValueType.PHONE, "+49-151-12345678"),
    (ValueType.PHONE, "+4915112345678\n"),
    (ValueType.PHONE, "+٤٩١٥١١٢٣٤٥٦٧٨"),
    (ValueType.PHONE, 4915112345678),
    (ValueType.DATE, "2026-02-30"),
    (ValueType.DATE, "2025-02-29"),
    (ValueType.DATE, "2026-13-01"),
    (ValueType.DATE, "20260301"),
    (ValueType.DATE, "2026-3-1"),
    (ValueType.DATE, "01/03/2026"),
    (ValueType.DATE, "2026-03-01T00:00:00Z"),
    (ValueType.DATE, "2026-03-01\n"),
    (ValueType.DATE, "2026-W09-1"),
    (ValueType.DATE, 20260301),
    (ValueType.DATETIME, "2026-03-01T10:00:00"),
    (ValueType.DATETIME, "2026-03-01"),
    (ValueType.DATETIME, "2026-03-01T25:00:00Z"),
    (ValueType.DATETIME, "2026-02-30T10:00:00Z"),
    (ValueType.DATETIME, "20260301T100000Z"),
    (ValueType.DATETIME, "2026-W09-1T10:00:00Z"),
    (ValueType.DATETIME, "2026-03-01T10:00:00 UTC"),
    (ValueType.DATETIME, "2026-03-01T10:00:00+25:00"),
    (ValueType.DATETIME, "yesterday"),
    (ValueType.DATETIME, ""),
    (ValueType.DATETIME, 1767225600),
    (ValueType.NUMBER, "42"),
    (ValueType.NUMBER, True),
    (ValueType.NUMBER, None),
    (ValueType.NUMBER, math.nan),
    (ValueType.NUMBER, math.inf),
    (ValueType.NUMBER, -math.inf),
    (ValueType.INTEGER, "42"),
    (ValueType.INTEGER, 3.0),
    (ValueType.INTEGER, 4.2),
    (ValueType.INTEGER, True),
    (ValueType.INTEGER, False),
    (ValueType.INTEGER, None),
    (ValueType.BOOLEAN, 1),
    (ValueType.BOOLEAN, 0),
    (ValueType.BOOLEAN, "true"),
    (ValueType.BOOLEAN, None),
    (ValueType.JSON, {1, 2}),
    (ValueType.JSON, {1: "a"}),
    (ValueType.JSON, [1, [2, {"x": math.nan}]]),
    (ValueType.JSON, b"bytes"),
    (ValueType.JSON, object()),
]


@pytest.mark.parametrize(("value_type", "value"), VALID)
def test_valid_values_are_accepted(value_type: ValueType, value: Any) -> None:
    assert make_validator(value_type)(value) is None


@pytest.mark.parametrize(("value_type", "value"), INVALID)
def test_invalid_values_are_rejected_with_a_message(value_type: ValueType, value: Any) -> None:
    error = make_validator(value_type)(value)
    assert isinstance(error, str)
    assert error


@pytest.mark.parametrize(("value_type", "value"), INVALID)
def test_error_messages_never_contain_the_value(value_type: ValueType, value: Any) -> None:
    error = make_validator(value_type)(value)
    assert error is not None
    if isinstance(value, str) and value.strip():
        assert value.strip() not in error
    if isinstance(value, str) and "@" in value:
        assert "@" not in error


def test_string_42_is_not_an_integer() -> None:
    assert make_validator(ValueType.INTEGER)("42") == "is not an integer (got string)"


def test_float_3_0_is_not_an_integer() -> None:
    assert make_validator(ValueType.INTEGER)(3.0) == "is not an integer (got number)"


def test_true_is_not_an_integer_nor_a_number() -> None:
    assert make_validator(ValueType.INTEGER)(True) == "is not an integer (got boolean)"
    assert make_validator(ValueType.NUMBER)(True) == "is not a number (got boolean)"


def test_nan_is_not_a_finite_number() -> None:
    assert make_validator(ValueType.NUMBER)(math.nan) == "is not a finite number"


def test_bad_email_message_is_generic() -> None:
    assert make_validator(ValueType.EMAIL)("ana.example.com") == "is not a valid email address"


def test_email_longer_than_254_characters_is_rejected() -> None:
    local = "a" * 64
    domain = ".".join(["b" * 60] * 3) + ".com"
    too_long = f"{local}@{domain}{'x' * (255 - len(local) - len(domain) - 1)}.com"
    assert len(too_long) > 254
    error = make_validator(ValueType.EMAIL)(too_long)
    assert error is not None
    assert "254" in error


def test_email_at_the_length_limit_is_accepted() -> None:
    local = "a" * 64
    domain = ".".join(["b" * 61] * 3) + ".com"
    address = f"{local}@{domain}"
    assert len(address) <= 254
    assert make_validator(ValueType.EMAIL)(address) is None


def test_bad_phone_message_explains_e164() -> None:
    assert (
        make_validator(ValueType.PHONE)("0151 1234")
        == "is not an E.164 phone number (+ and 8-15 digits)"
    )


def test_naive_datetime_is_rejected_for_missing_timezone() -> None:
    error = make_validator(ValueType.DATETIME)("2026-03-01T10:00:00")
    assert error is not None
    assert "timezone" in error


def test_type_mismatch_names_the_received_json_type() -> None:
    assert make_validator(ValueType.STRING)({"a": 1}) == "is not a string (got object)"
    assert make_validator(ValueType.BOOLEAN)([True]) == "is not a boolean (got array)"
    assert make_validator(ValueType.EMAIL)(None) == "is not a valid email address (got null)"


def test_make_validator_accepts_plain_string_type_names() -> None:
    assert make_validator(ValueType("integer"))(5) is None
    assert make_validator("integer")(5) is None  # type: ignore[arg-type]


def test_deeply_nested_json_does_not_overflow_the_stack() -> None:
    value: Any = []
    for _ in range(100_000):
        value = [value]
    assert make_validator(ValueType.JSON)(value) is None


# --- validation_regex -----------------------------------------------------------------------


def test_regex_must_match_the_whole_string() -> None:
    validate = make_validator(ValueType.STRING, validation_regex=r"[A-Z]{2}[0-9]{4}")
    assert validate("AB1234") is None
    assert validate("xAB1234") is not None
    assert validate("AB12345") is not None


def test_regex_error_names_the_pattern_but_not_the_value() -> None:
    validate = make_validator(ValueType.STRING, validation_regex=r"ORD-[0-9]+")
    assert validate("secret-value") == "does not match the pattern ORD-[0-9]+"


def test_regex_applies_after_the_type_check() -> None:
    validate = make_validator(ValueType.EMAIL, validation_regex=r".*@acme\.com")
    assert validate("ana@acme.com") is None
    assert validate("ana@example.com") == "does not match the pattern .*@acme\\.com"
    assert validate("not an email@acme.com") == "is not a valid email address"


def test_regex_is_not_applied_to_non_string_values() -> None:
    validate = make_validator(ValueType.INTEGER, validation_regex=r"[0-9]")
    assert validate(12345) is None
    assert validate("1") == "is not an integer (got string)"


def test_regex_applies_to_string_values_of_a_json_field() -> None:
    validate = make_validator(ValueType.JSON, validation_regex=r"[a-z]+")
    assert validate("abc") is None
    assert validate("ABC") is not None
    assert validate({"any": "object"}) is None


def test_invalid_regex_raises_at_compile_time() -> None:
    with pytest.raises(ValueError, match="not a valid regular expression"):
        make_validator(ValueType.STRING, validation_regex="[unclosed")


# --- enum and allowed_values ----------------------------------------------------------------

TIERS = ("free", "pro", "enterprise")


@pytest.mark.parametrize("value", ["free", "pro", "enterprise"])
def test_enum_accepts_allowed_values(value: str) -> None:
    assert make_validator(ValueType.ENUM, allowed_values=TIERS)(value) is None


@pytest.mark.parametrize("value", ["Free", "gold", "", None, 1, ["free"]])
def test_enum_rejects_other_values_listing_the_allowed_ones(value: Any) -> None:
    error = make_validator(ValueType.ENUM, allowed_values=TIERS)(value)
    assert error == "is not one of: free, pro, enterprise"


def test_enum_true_does_not_match_1() -> None:
    validate = make_validator(ValueType.ENUM, allowed_values=[1, 2])
    assert validate(1) is None
    assert validate(True) is not None


def test_enum_1_does_not_match_true() -> None:
    validate = make_validator(ValueType.ENUM, allowed_values=[True, "maybe"])
    assert validate(True) is None
    assert validate(1) is not None
    assert validate(False) is not None


def test_enum_0_does_not_match_false() -> None:
    validate = make_validator(ValueType.ENUM, allowed_values=[False])
    assert validate(False) is None
    assert validate(0) is not None


def test_enum_with_null_and_structured_values() -> None:
    validate = make_validator(ValueType.ENUM, allowed_values=[None, {"a": [1, True]}, [1, 2]])
    assert validate(None) is None
    assert validate({"a": [1, True]}) is None
    assert validate([1, 2]) is None
    assert validate({"a": [1, 1]}) is not None
    assert validate([2, 1]) is not None


def test_enum_without_allowed_values_is_a_compile_error() -> None:
    with pytest.raises(ValueError, match="allowed_values"):
        make_validator(ValueType.ENUM)
    with pytest.raises(ValueError, match="allowed_values"):
        make_validator(ValueType.ENUM, allowed_values=[])


def test_enum_message_lists_at_most_ten_values() -> None:
    options = [f"v{i}" for i in range(15)]
    error = make_validator(ValueType.ENUM, allowed_values=options)("nope")
    assert error is not None
    assert error.endswith("v9 (and 5 more)")
    assert "v10" not in error


def test_allowed_values_also_restrict_other_types_after_the_type_check() -> None:
    validate = make_validator(ValueType.INTEGER, allowed_values=[1, 2, 3])
    assert validate(2) is None
    assert validate(4) == "is not one of: 1, 2, 3"
    assert validate("2") == "is not an integer (got string)"


def test_enum_combines_allowed_values_and_regex() -> None:
    validate = make_validator(ValueType.ENUM, allowed_values=TIERS, validation_regex=r"[a-z]{3,4}")
    assert validate("pro") is None
    assert validate("free") is None
    assert validate("enterprise") == "does not match the pattern [a-z]{3,4}"


# --- coerce_cell ----------------------------------------------------------------------------

COERCIONS: list[tuple[str, ValueType, Any]] = [
    ("  Ana Lima ", ValueType.STRING, "Ana Lima"),
    ("42", ValueType.STRING, "42"),
    (" ana@example.com ", ValueType.EMAIL, "ana@example.com"),
    ("+4915112345678 ", ValueType.PHONE, "+4915112345678"),
    (" pro", ValueType.ENUM, "pro"),
    ("1", ValueType.ENUM, "1"),
    (" 2026-03-01 ", ValueType.DATE, "2026-03-01"),
    ("2026-03-01T10:00:00Z", ValueType.DATETIME, "2026-03-01T10:00:00Z"),
    ("42", ValueType.INTEGER, 42),
    ("-3", ValueType.INTEGER, -3),
    ("+7", ValueType.INTEGER, 7),
    (" 12 ", ValueType.INTEGER, 12),
    ("007", ValueType.INTEGER, 7),
    ("42", ValueType.NUMBER, 42),
    ("-3", ValueType.NUMBER, -3),
    ("4.2", ValueType.NUMBER, 4.2),
    ("4.", ValueType.NUMBER, 4.0),
    (".5", ValueType.NUMBER, 0.5),
    ("1e3", ValueType.NUMBER, 1000.0),
    ("-2.5E-2", ValueType.NUMBER, -0.025),
    ("true", ValueType.BOOLEAN, True),
    ("TRUE", ValueType.BOOLEAN, True),
    (" Yes ", ValueType.BOOLEAN, True),
    ("1", ValueType.BOOLEAN, True),
    ("false", ValueType.BOOLEAN, False),
    ("No", ValueType.BOOLEAN, False),
    ("0", ValueType.BOOLEAN, False),
    ('{"a": [1, 2]}', ValueType.JSON, {"a": [1, 2]}),
    ("[1, 2.5]", ValueType.JSON, [1, 2.5]),
    ('"text"', ValueType.JSON, "text"),
    ("null", ValueType.JSON, None),
    (" 3 ", ValueType.JSON, 3),
]


@pytest.mark.parametrize(("text", "value_type", "expected"), COERCIONS)
def test_coerce_cell_converts_to_the_json_type(
    text: str, value_type: ValueType, expected: Any
) -> None:
    result = coerce_cell(text, value_type)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("text", "value_type", "message"),
    [
        ("4.2", ValueType.INTEGER, "is not an integer"),
        ("abc", ValueType.INTEGER, "is not an integer"),
        ("", ValueType.INTEGER, "is not an integer"),
        ("1_000", ValueType.INTEGER, "is not an integer"),
        ("1e3", ValueType.INTEGER, "is not an integer"),
        ("٤٢", ValueType.INTEGER, "is not an integer"),
        ("abc", ValueType.NUMBER, "is not a number"),
        ("nan", ValueType.NUMBER, "is not a number"),
        ("NaN", ValueType.NUMBER, "is not a number"),
        ("inf", ValueType.NUMBER, "is not a number"),
        ("-Infinity", ValueType.NUMBER, "is not a number"),
        ("1e999", ValueType.NUMBER, "is not a finite number"),
        ("1,5", ValueType.NUMBER, "is not a number"),
        ("0x10", ValueType.NUMBER, "is not a number"),
        ("", ValueType.NUMBER, "is not a number"),
        ("maybe", ValueType.BOOLEAN, "is not a boolean"),
        ("t", ValueType.BOOLEAN, "is not a boolean"),
        ("2", ValueType.BOOLEAN, "is not a boolean"),
        ("{not json", ValueType.JSON, "is not valid JSON"),
        ("NaN", ValueType.JSON, "is not valid JSON"),
        ("[Infinity]", ValueType.JSON, "is not valid JSON"),
        ("", ValueType.JSON, "is not valid JSON"),
    ],
)
def test_coerce_cell_rejects_unconvertible_text(
    text: str, value_type: ValueType, message: str
) -> None:
    with pytest.raises(ValueError, match=message) as excinfo:
        coerce_cell(text, value_type)
    if len(text) >= 3:
        assert text not in str(excinfo.value)


def test_coerce_cell_integer_with_too_many_digits_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="is not an integer"):
        coerce_cell("9" * 5000, ValueType.INTEGER)


def test_coerce_cell_deeply_nested_json_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="is not valid JSON"):
        coerce_cell("[" * 100_000 + "]" * 100_000, ValueType.JSON)


def test_coerced_cell_passes_the_validator_of_its_type() -> None:
    cells = {
        ValueType.INTEGER: "42",
        ValueType.NUMBER: "4.2",
        ValueType.BOOLEAN: "yes",
        ValueType.DATE: " 2026-03-01",
        ValueType.EMAIL: "ana@example.com ",
        ValueType.JSON: '{"a": 1}',
    }
    for value_type, text in cells.items():
        assert make_validator(value_type)(coerce_cell(text, value_type)) is None


def test_coerced_invalid_date_is_left_to_the_validator() -> None:
    value = coerce_cell("2026-02-30", ValueType.DATE)
    assert value == "2026-02-30"
    assert make_validator(ValueType.DATE)(value) is not None


# --- mask_value -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "value_type", "expected"),
    [
        ("ana@example.com", ValueType.EMAIL, "a***@example.com"),
        ("a@example.com", ValueType.EMAIL, "a***@example.com"),
        ("x.y+z@mail.example.org", ValueType.EMAIL, "x***@mail.example.org"),
        ("ana@example.com", None, "a***@example.com"),
        ("broken-email", ValueType.EMAIL, "***"),
        ("ana@", ValueType.EMAIL, "***"),
        ("ana@example.com", ValueType.STRING, "***"),
        ("Ana Lima", ValueType.STRING, "***"),
        ("Ana Lima", None, "***"),
        ("+4915112345678", ValueType.PHONE, "***"),
        ("1990-01-01", ValueType.DATE, "***"),
        (42, ValueType.INTEGER, "***"),
        (False, ValueType.BOOLEAN, "***"),
        ({"a": 1}, ValueType.JSON, "***"),
        ("", ValueType.STRING, "***"),
        (None, ValueType.EMAIL, None),
        (None, None, None),
    ],
)
def test_mask_value(value: Any, value_type: ValueType | None, expected: Any) -> None:
    assert mask_value(value, value_type) == expected


# --- check_value across agents --------------------------------------------------------------


def _compiled(*definitions: Definition) -> tuple[list[Definition], list[Any]]:
    return list(definitions), [definition.compile() for definition in definitions]


def test_value_valid_if_any_enabled_definition_accepts_it() -> None:
    definitions, validators = _compiled(
        Definition("support-bot", ValueType.STRING, validation_regex=r"ORD-[0-9]+"),
        Definition("sales-bot", ValueType.STRING, validation_regex=r"SO-[0-9]+"),
    )
    assert check_value("ORD-1", definitions, validators) is None
    assert check_value("SO-1", definitions, validators) is None


def test_check_value_returns_the_first_enabled_definitions_error() -> None:
    definitions, validators = _compiled(
        Definition("support-bot", ValueType.STRING, validation_regex=r"ORD-[0-9]+"),
        Definition("sales-bot", ValueType.STRING, validation_regex=r"SO-[0-9]+"),
    )
    assert check_value("X-1", definitions, validators) == "does not match the pattern ORD-[0-9]+"


def test_disabled_definition_neither_accepts_nor_reports() -> None:
    definitions, validators = _compiled(
        Definition("old-bot", ValueType.ENUM, allowed_values=("gold",), enabled=False),
        Definition("support-bot", ValueType.ENUM, allowed_values=TIERS),
    )
    assert check_value("gold", definitions, validators) == "is not one of: free, pro, enterprise"
    assert check_value("pro", definitions, validators) is None


def test_no_enabled_definition_is_reported() -> None:
    definitions, validators = _compiled(
        Definition("old-bot", ValueType.STRING, enabled=False),
    )
    assert check_value("anything", definitions, validators) == "has no enabled definition"
    assert check_value("anything", [], []) == "has no enabled definition"


def test_check_value_ignores_validation_mode() -> None:
    definitions, validators = _compiled(
        Definition("support-bot", ValueType.INTEGER, validation_mode=ValidationMode.DISABLED),
    )
    assert check_value("42", definitions, validators) == "is not an integer (got string)"


def test_check_value_requires_one_validator_per_definition() -> None:
    definitions, validators = _compiled(Definition("support-bot", ValueType.STRING))
    with pytest.raises(ValueError):
        check_value("x", definitions, [*validators, *validators])


def test_definition_is_immutable_and_hashable() -> None:
    definition = Definition("support-bot", ValueType.ENUM, allowed_values=TIERS)
    assert hash(definition) == hash(Definition("support-bot", ValueType.ENUM, allowed_values=TIERS))
    with pytest.raises(AttributeError):
        definition.enabled = False  # type: ignore[misc]


# --- property: validators are total ---------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.sampled_from(["ana@example.com", "+4915112345678", "2026-03-01", "2026-03-01T10:00Z"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    value_type=st.sampled_from(list(ValueType)),
    value=json_values,
    allowed=st.lists(json_values, min_size=1, max_size=5),
    use_regex=st.booleans(),
)
def test_validators_never_raise_on_json_values(
    value_type: ValueType, value: Any, allowed: list[Any], use_regex: bool
) -> None:
    validate = make_validator(
        value_type,
        validation_regex=r"[a-z0-9@.+-]*" if use_regex else None,
        allowed_values=allowed if value_type == ValueType.ENUM else None,
    )
    result = validate(value)
    assert result is None or isinstance(result, str)


SECRET = "Zq9SECRETmarker"


@settings(max_examples=300, deadline=None)
@given(
    value_type=st.sampled_from(list(ValueType)),
    prefix=st.text(max_size=20),
    suffix=st.text(max_size=20),
    use_regex=st.booleans(),
)
def test_validator_errors_never_echo_string_values(
    value_type: ValueType, prefix: str, suffix: str, use_regex: bool
) -> None:
    validate = make_validator(
        value_type,
        validation_regex=r"[0-9]+" if use_regex else None,
        allowed_values=("free", "pro") if value_type == ValueType.ENUM else None,
    )
    error = validate(prefix + SECRET + suffix)
    assert error is None or SECRET not in error


@settings(max_examples=200, deadline=None)
@given(text=st.text(), value_type=st.sampled_from(list(ValueType)))
def test_coerce_cell_errors_never_echo_the_cell(text: str, value_type: ValueType) -> None:
    try:
        result = coerce_cell(SECRET + text, value_type)
    except ValueError as exc:
        assert SECRET not in str(exc)
    else:
        json.dumps(result, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(text=st.text(), value_type=st.sampled_from(list(ValueType)))
def test_coerce_cell_never_raises_anything_but_value_error(
    text: str, value_type: ValueType
) -> None:
    try:
        result = coerce_cell(text, value_type)
    except ValueError:
        return
    json.dumps(result, allow_nan=False)
