"""The pure rules of `gaps` (ccv.domain.gaps): collection order and the reason for each gap."""

from __future__ import annotations

from typing import Any

from ccv.domain.enums import ValueType
from ccv.domain.gaps import CustomerValues, collection_sequence, compile_plan, find_gaps
from ccv.domain.models import FieldDefinition, ScenarioRequirement


def req(field: str, **options: Any) -> ScenarioRequirement:
    return ScenarioRequirement(tenant="t", agent="a", scenario="s", field=field, **options)


def definition(name: str, value_type: ValueType = ValueType.STRING, **options: Any) -> Any:
    return FieldDefinition(tenant="t", agent="a", name=name, value_type=value_type, **options)


def values(current: dict[str, Any] | None = None, expired: set[str] | None = None) -> Any:
    return CustomerValues(
        current={name: (value, True) for name, value in (current or {}).items()},
        expired=expired or set(),
    )


def test_collection_order_comes_first_and_none_goes_last() -> None:
    requirements = [req("a"), req("b", collection_order=2), req("c", collection_order=1)]
    assert collection_sequence(requirements) == [2, 1, 0]


def test_a_field_comes_after_its_dependencies_at_equal_collection_order() -> None:
    requirements = [req("c", depends_on=["b"]), req("b", depends_on=["a"]), req("a")]
    assert collection_sequence(requirements) == [2, 1, 0]


def test_file_order_breaks_the_remaining_ties() -> None:
    requirements = [req("x"), req("y"), req("z")]
    assert collection_sequence(requirements) == [0, 1, 2]


def test_a_dependency_cycle_does_not_loop() -> None:
    requirements = [req("a", depends_on=["b"]), req("b", depends_on=["a"])]
    assert sorted(collection_sequence(requirements)) == [0, 1]


def test_reasons_absent_expired_invalid_and_unknown() -> None:
    plan = compile_plan(
        "a",
        [
            req("amount"),
            req("email"),
            req("code"),
            req("extra", when="amount > 10"),
        ],
        [
            definition("amount", ValueType.NUMBER),
            definition("email", ValueType.EMAIL),
            definition("code", validation_regex="^[0-9]+$"),
            definition("extra"),
        ],
    )
    missing, satisfied = find_gaps(plan, values({"code": "x1"}, expired={"email"}))
    assert [(m.field, m.reason) for m in missing] == [
        ("amount", "absent"),
        ("email", "expired"),
        ("code", "invalid"),
        ("extra", "condition_unknown"),
    ]
    assert satisfied == []


def test_an_unverified_value_is_missing_only_where_verification_is_required() -> None:
    plan = compile_plan(
        "a",
        [req("email"), req("phone")],
        [
            definition("email", ValueType.EMAIL, required_verification=True),
            definition("phone"),
        ],
    )
    current = CustomerValues(
        current={"email": ("a@example.com", False), "phone": ("+4915112345678", False)},
        expired=set(),
    )
    missing, satisfied = find_gaps(plan, current)
    assert [(m.field, m.reason) for m in missing] == [("email", "unverified")]
    assert satisfied == ["phone"]


def test_a_false_condition_and_unmet_dependencies_leave_a_requirement_out() -> None:
    plan = compile_plan(
        "a",
        [req("amount"), req("dob", when="amount > 500"), req("card", depends_on=["order"])],
        [definition("amount", ValueType.NUMBER), definition("dob"), definition("card")],
    )
    missing, satisfied = find_gaps(plan, values({"amount": 100}))
    assert missing == []
    assert satisfied == ["amount"]
