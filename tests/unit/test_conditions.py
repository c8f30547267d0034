"""Unit tests for ccv.domain.conditions: the `when` language of SPEC §4 (parse, type, evaluate)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccv.domain.conditions import (
    BoolOp,
    Compare,
    ConditionError,
    ListLiteral,
    Literal,
    Name,
    Not,
    check_types,
    evaluate,
    parse_condition,
)
from ccv.domain.enums import ValueType

TYPES = {
    "refund_amount": ValueType.NUMBER,
    "age": ValueType.INTEGER,
    "date_of_birth": ValueType.DATE,
    "verified_at": ValueType.DATETIME,
    "is_adult": ValueType.BOOLEAN,
    "kyc_status": ValueType.ENUM,
    "email": ValueType.EMAIL,
    "legal_name": ValueType.STRING,
    "preferences": ValueType.JSON,
}
ALLOWED = {"kyc_status": ["pending", "verified", "rejected"]}


def problems(text: str) -> list[tuple[str, int]]:
    return [(p.code, p.column) for p in check_types(parse_condition(text), TYPES, ALLOWED)]


def parse_error(text: str) -> ConditionError:
    with pytest.raises(ConditionError) as caught:
        parse_condition(text)
    return caught.value


# --- parsing -----------------------------------------------------------------------------------


def test_a_comparison_parses_into_a_tree_with_columns() -> None:
    root = parse_condition("refund_amount > 500").root
    assert root == Compare(">", Name("refund_amount", 1), Literal(500, "500", 17), 15)


def test_and_binds_tighter_than_or() -> None:
    root = parse_condition("a == 1 or b == 2 and c == 3").root
    assert isinstance(root, BoolOp) and root.op == "or"
    assert isinstance(root.operands[1], BoolOp) and root.operands[1].op == "and"


def test_parentheses_override_precedence() -> None:
    root = parse_condition("(a == 1 or b == 2) and c == 3").root
    assert isinstance(root, BoolOp) and root.op == "and"
    assert isinstance(root.operands[0], BoolOp) and root.operands[0].op == "or"


def test_not_applies_to_the_whole_comparison() -> None:
    root = parse_condition("not a == 1").root
    assert isinstance(root, Not) and isinstance(root.operand, Compare)


def test_chains_of_and_are_flat() -> None:
    root = parse_condition("a and b and c").root
    assert isinstance(root, BoolOp) and len(root.operands) == 3


@pytest.mark.parametrize(("text", "op"), [("x in [1, 2]", "in"), ("x not in [1, 2]", "not in")])
def test_in_and_not_in_take_a_list(text: str, op: str) -> None:
    root = parse_condition(text).root
    assert isinstance(root, Compare) and root.op == op
    assert isinstance(root.right, ListLiteral)
    assert [item.value for item in root.right.items] == [1, 2]


def test_literals_of_every_kind() -> None:
    root = parse_condition("x in ['a', \"b\", -1.5, 2e3, 7, true, false, null, ]").root
    assert isinstance(root, Compare) and isinstance(root.right, ListLiteral)
    values = [item.value for item in root.right.items]
    assert values == ["a", "b", -1.5, 2000.0, 7, True, False, None]
    assert isinstance(values[4], int)


def test_empty_list_and_string_escapes() -> None:
    root = parse_condition(r"x in [] or y == 'it\'s \"q\" \\ \n'").root
    assert isinstance(root, BoolOp)
    assert isinstance(root.operands[0], Compare)
    assert root.operands[0].right == ListLiteral((), "[]", 6)
    right = root.operands[1]
    assert isinstance(right, Compare) and isinstance(right.right, Literal)
    assert right.right.value == 'it\'s "q" \\ \n'


def test_fields_are_the_names_the_condition_reads() -> None:
    condition = parse_condition("a == 1 and (b > c or not d) and a != null")
    assert condition.fields == {"a", "b", "c", "d"}
    assert [name.column for name in condition.names] == [1, 13, 17, 26, 33]


def test_keywords_and_literals_are_not_field_names() -> None:
    assert parse_condition("x == true and y != null").fields == {"x", "y"}


@pytest.mark.parametrize(
    ("text", "column", "words"),
    [
        ("", 1, "empty"),
        ("   ", 1, "empty"),
        ("refund_amount >> 500", 16, "unexpected '>'"),
        ("refund_amount > ", 17, "ends where"),
        ("(a == 1", 8, "')'"),
        ("a == 1)", 7, "unexpected ')'"),
        ("a == 1 b", 8, "unexpected 'b'"),
        ("a = 1", 3, "'=='"),
        ("a == 1 && b", 8, "'and'"),
        ("a == 1 || b", 8, "'or'"),
        ("!a", 1, "'not'"),
        ("a == True", 6, "'true'"),
        ("a == None", 6, "'null'"),
        ("a == 1 AND b", 8, "'and'"),
        ("a < b < c", 7, "chained"),
        ("a == 'open", 6, "not closed"),
        ("a == 'x\\q'", 8, "escape"),
        ("a in [b]", 7, "literal values"),
        ("a in [[1]]", 7, "nested"),
        ("a in [1 2]", 9, "','"),
        ("a in [1,", 9, "ends where"),
        ("a == - 1", 6, "followed directly by a number"),
        ("a == 12abc", 6, "not a number"),
        ("a == 1.", 6, "not a number"),
        ("a == $x", 6, "unexpected character '$'"),
        ("a == 1 not b", 8, "unexpected 'not'"),
    ],
)
def test_syntax_errors_say_what_and_where(text: str, column: int, words: str) -> None:
    error = parse_error(text)
    assert error.code == "when-syntax"
    assert error.column == column, error.message
    assert words in error.message


@pytest.mark.parametrize(
    ("text", "column", "words"),
    [
        ("len(order_id) > 3", 1, "'len(...)' is a call"),
        ("__import__('os').system('id') == 0", 1, "call"),
        ("a == 1 and exec('x')", 12, "'exec(...)' is a call"),
        ("order.total > 3", 1, "'order.total' is attribute access"),
        ("'abc'.upper() == 'ABC'", 1, "attribute access"),
        ("items[0] == 3", 1, "subscript"),
        ("(a)(b)", 1, "call"),
    ],
)
def test_calls_attributes_and_subscripts_are_refused(text: str, column: int, words: str) -> None:
    error = parse_error(text)
    assert error.code == "when-call"
    assert error.column == column
    assert words in error.message


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    error = parse_error("(" * 100 + "a" + ")" * 100)
    assert "nests more than" in error.message
    error = parse_error("not " * 100 + "a")
    assert "nests more than" in error.message
    assert "longer than" in parse_error("a == 1 and " * 300 + "b").message


@given(st.text(max_size=40))
@settings(max_examples=300, deadline=None)
def test_any_text_parses_or_fails_with_a_condition_error(text: str) -> None:
    try:
        condition = parse_condition(text)
    except ConditionError as error:
        assert 1 <= error.column <= len(text) + 1
    else:
        assert condition.source == text


# --- type check --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "refund_amount > 500",
        "age >= 18 and refund_amount < 12.5",
        "date_of_birth < '2008-01-01'",
        "date_of_birth <= verified_at",
        "verified_at > '2026-03-01T10:00:00Z'",
        "is_adult",
        "not is_adult or is_adult == false",
        "kyc_status == 'verified'",
        "kyc_status in ['pending', 'rejected']",
        "kyc_status != null",
        "email == null",
        "legal_name > 'M'",
        "legal_name in ['Ana', 'Bo']",
        "preferences == 3 and preferences",
        "(refund_amount > 1) == true",
        "refund_amount == age",
    ],
)
def test_well_typed_conditions_have_no_problems(text: str) -> None:
    assert problems(text) == []


@pytest.mark.parametrize(
    ("text", "code", "column"),
    [
        ("date_of_birth > 18", "when-type", 1),
        ("refund_amount == 'high'", "when-type", 1),
        ("is_adult < true", "when-type", 1),
        ("is_adult > false", "when-type", 1),
        ("kyc_status > 'pending'", "when-type", 1),
        ("refund_amount > null", "when-type", 1),
        ("date_of_birth < '2008-13-01'", "when-type", 17),
        ("date_of_birth < 'yesterday'", "when-type", 17),
        ("refund_amount in [1, 'two']", "when-type", 1),
        ("email in 'example.com'", "when-type", 1),
        ("[1] in [1]", "when-type", 1),
        ("refund_amount", "when-type", 1),
        ("is_adult and email", "when-type", 14),
        ("'yes'", "when-type", 1),
        ("legal_name == email and is_adult == 1", "when-type", 25),
        ("kyc_status == 'approved'", "when-value", 15),
        ("kyc_status in ['verified', 'done']", "when-value", 28),
    ],
)
def test_ill_typed_conditions_are_reported_at_the_comparison(
    text: str, code: str, column: int
) -> None:
    assert problems(text) == [(code, column)]


def test_incompatible_types_message_names_both_sides() -> None:
    [problem] = check_types(parse_condition("date_of_birth > 18"), TYPES)
    assert "compares incompatible types" in problem.message
    assert "'date_of_birth' is a date" in problem.message
    assert "18 is a number" in problem.message


def test_boolean_order_message_says_why() -> None:
    [problem] = check_types(parse_condition("is_adult < true"), TYPES)
    assert "compares incompatible types" in problem.message
    assert "booleans have no order" in problem.message


def test_unknown_names_are_left_to_the_caller() -> None:
    assert check_types(parse_condition("nobody_knows > 3"), TYPES) == []


# --- evaluation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [
        ("refund_amount > 500", {"refund_amount": 749.0}, True),
        ("refund_amount > 500", {"refund_amount": 312.5}, False),
        ("refund_amount > 500", {}, None),
        ("refund_amount > 500", {"refund_amount": None}, None),
        ("age >= 18", {"age": 18}, True),
        ("kyc_status in ['pending', 'rejected']", {"kyc_status": "pending"}, True),
        ("kyc_status not in ['pending', 'rejected']", {"kyc_status": "pending"}, False),
        ("kyc_status not in ['pending']", {}, None),
        ("is_adult", {"is_adult": True}, True),
        ("not is_adult", {"is_adult": True}, False),
        ("not is_adult", {}, None),
        ("is_adult == true", {"is_adult": 1}, None),
        ("refund_amount == 1", {"refund_amount": True}, None),
        ("email == null", {}, True),
        ("email == null", {"email": "a@example.com"}, False),
        ("email != null", {}, False),
        ("null == email", {"email": None}, True),
        ("email == 'a@example.com'", {"email": "a@example.com"}, True),
        ("refund_amount > 'x'", {"refund_amount": 3}, None),
    ],
)
def test_evaluation(text: str, values: dict[str, Any], expected: bool | None) -> None:
    assert evaluate(text, values, TYPES) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("refund_amount > 500 and is_adult", False),  # false and unknown
        ("refund_amount < 500 and is_adult", None),  # true and unknown
        ("refund_amount < 500 or is_adult", True),  # true or unknown
        ("refund_amount > 500 or is_adult", None),  # false or unknown
        ("not (refund_amount > 500 or is_adult)", None),
        ("is_adult and refund_amount > 500", False),  # order does not matter
        ("is_adult or refund_amount < 500", True),
    ],
)
def test_three_valued_logic_with_a_missing_value(text: str, expected: bool | None) -> None:
    assert evaluate(text, {"refund_amount": 100}, TYPES) is expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"date_of_birth": "2009-06-15"}, False),
        ({"date_of_birth": "1988-04-17"}, True),
        ({"date_of_birth": date(2007, 12, 31)}, True),
        ({"date_of_birth": "not a date"}, None),
    ],
)
def test_dates_compare_as_dates(values: dict[str, Any], expected: bool | None) -> None:
    assert evaluate("date_of_birth < '2008-01-01'", values, TYPES) is expected


def test_dates_and_times_compare_with_each_other() -> None:
    values = {"date_of_birth": "2026-03-01", "verified_at": "2026-03-01T10:00:00+02:00"}
    assert evaluate("date_of_birth < verified_at", values, TYPES) is True
    assert evaluate("verified_at > '2026-03-01T08:30:00Z'", values, TYPES) is False


def test_without_types_text_compares_as_text() -> None:
    assert evaluate("d < '2008-01-01'", {"d": "2009-01-01"}) is False
    assert evaluate("d < '2008-01-01'", {"d": date(2007, 1, 1)}) is True


def test_json_values_compare_whole() -> None:
    values = {"preferences": {"channel": "sms"}}
    assert evaluate("preferences == 3", values, TYPES) is None
    assert evaluate("'sms' in preferences", {"preferences": ["sms", "email"]}, TYPES) is True


def test_a_null_in_a_list_never_matches_a_present_value() -> None:
    assert evaluate("x in [null, 1]", {"x": 2}) is False
    assert evaluate("x in [null, 2]", {"x": 2}) is True


def test_parsing_is_cached_and_conditions_are_immutable() -> None:
    first = parse_condition("refund_amount > 500")
    assert parse_condition("refund_amount > 500") is first
    with pytest.raises(AttributeError):
        first.source = "x"  # type: ignore[misc]
