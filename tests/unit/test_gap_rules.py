"""The pure rules of `gaps` (ccv.domain.gaps): collection order, which requirements apply, and
the reason for each gap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ccv.domain.enums import ValueType
from ccv.domain.gaps import (
    CurrentValue,
    CustomerValues,
    GapPlan,
    collection_sequence,
    compile_plan,
    find_gaps,
)
from ccv.domain.models import FieldDefinition, ScenarioRequirement

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def req(field: str, **options: Any) -> ScenarioRequirement:
    return ScenarioRequirement(tenant="t", agent="a", scenario="s", field=field, **options)


def definition(name: str, value_type: ValueType = ValueType.STRING, **options: Any) -> Any:
    options.setdefault("agent", "a")
    return FieldDefinition(tenant="t", name=name, value_type=value_type, **options)


def held(value: Any, *, verified: bool = True, age: timedelta = timedelta(0)) -> CurrentValue:
    return CurrentValue(value, verified, NOW - age)


def values(
    current: dict[str, Any] | None = None,
    expired: set[str] | None = None,
    *,
    age: timedelta = timedelta(0),
) -> CustomerValues:
    """Verified values collected `age` before NOW (a CurrentValue is taken as given)."""
    return CustomerValues(
        current={
            name: value if isinstance(value, CurrentValue) else held(value, age=age)
            for name, value in (current or {}).items()
        },
        expired=expired or set(),
    )


NOTHING = values()


def reasons(plan: GapPlan, customer: CustomerValues) -> list[tuple[str, str]]:
    return [(m.field, m.reason) for m in find_gaps(plan, customer, NOW)[0]]


# --- collection order ---------------------------------------------------------------------


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


# --- reasons ------------------------------------------------------------------------------


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
    customer = values({"code": "x1"}, expired={"email"})
    assert reasons(plan, customer) == [
        ("amount", "absent"),
        ("email", "expired"),
        ("code", "invalid"),
        ("extra", "condition_unknown"),
    ]
    assert find_gaps(plan, customer, NOW)[1] == []


def test_an_unverified_value_is_missing_only_where_verification_is_required() -> None:
    plan = compile_plan(
        "a",
        [req("email"), req("phone")],
        [
            definition("email", ValueType.EMAIL, required_verification=True),
            definition("phone"),
        ],
    )
    customer = values(
        {
            "email": held("a@example.com", verified=False),
            "phone": held("+4915112345678", verified=False),
        }
    )
    missing, satisfied = find_gaps(plan, customer, NOW)
    assert [(m.field, m.reason) for m in missing] == [("email", "unverified")]
    assert satisfied == ["phone"]


def test_a_false_condition_and_unmet_dependencies_leave_a_requirement_out() -> None:
    plan = compile_plan(
        "a",
        [req("amount"), req("dob", when="amount > 500"), req("card", depends_on=["order"])],
        [definition("amount", ValueType.NUMBER), definition("dob"), definition("card")],
    )
    missing, satisfied = find_gaps(plan, values({"amount": 100}), NOW)
    assert missing == []
    assert satisfied == ["amount"]


# --- one rule for every customer, with or without values ----------------------------------

REFUND_PLAN = compile_plan(
    "a",
    [
        req("order", collection_order=1),
        req("amount", collection_order=2, depends_on=["order"]),
        req("dob", collection_order=3, when="amount > 500", depends_on=["amount"]),
        req("tier", collection_order=4, when="country == 'DE'"),
        req("note", collection_order=5, when="country == null"),
        req("nickname"),
    ],
    [
        definition("order"),
        definition("amount", ValueType.NUMBER),
        definition("dob", ValueType.DATE),
        definition("tier"),
        definition("country"),
        definition("note"),
        definition("nickname"),
        definition("unrelated"),
    ],
)
# What both customers below are missing of REFUND_PLAN: amount and dob wait on absent fields,
# tier's condition reads an absent field, note's tests the absence itself.
EXPECTED = [
    ("order", "absent"),
    ("tier", "condition_unknown"),
    ("note", "absent"),
    ("nickname", "absent"),
]


def test_a_customer_with_nothing_stored_has_only_the_requirements_that_apply_missing() -> None:
    assert reasons(REFUND_PLAN, NOTHING) == EXPECTED
    assert find_gaps(REFUND_PLAN, NOTHING, NOW)[1] == []


def test_nothing_stored_and_only_unrelated_values_give_the_same_gaps() -> None:
    other = values({"unrelated": "x"})
    assert find_gaps(REFUND_PLAN, NOTHING, NOW) == find_gaps(REFUND_PLAN, other, NOW)
    assert reasons(REFUND_PLAN, other) == EXPECTED


def test_a_blank_customer_is_not_asked_for_what_waits_on_an_absent_dependency() -> None:
    plan = compile_plan("a", [req("card", depends_on=["order"])], [definition("card")])
    assert find_gaps(plan, NOTHING, NOW) == ([], [])


def test_a_false_condition_leaves_a_requirement_out_for_a_blank_customer() -> None:
    plan = compile_plan("a", [req("card", when="order != null")], [definition("card")])
    assert find_gaps(plan, NOTHING, NOW) == ([], [])


# --- stale: freshness_seconds ----------------------------------------------------------------

FRESH_PLAN = compile_plan(
    "a",
    [req("address"), req("email"), req("nickname")],
    [
        definition("address", freshness_seconds=3600),
        definition("email", ValueType.EMAIL, required_verification=True, freshness_seconds=60),
        definition("nickname"),  # no freshness: never stale
    ],
)


def test_a_value_older_than_freshness_seconds_is_missing_as_stale() -> None:
    customer = values({"address": "Main St 1", "nickname": "Ana"}, age=2 * HOUR)
    missing, satisfied = find_gaps(FRESH_PLAN, customer, NOW)
    assert [(m.field, m.reason) for m in missing] == [("address", "stale"), ("email", "absent")]
    assert satisfied == ["nickname"]


def test_a_value_exactly_freshness_seconds_old_is_still_fresh() -> None:
    customer = values({"address": held("Main St 1", age=HOUR)})
    assert ("address", "stale") not in reasons(FRESH_PLAN, customer)
    assert "address" in find_gaps(FRESH_PLAN, customer, NOW)[1]
    older = values({"address": held("Main St 1", age=HOUR + timedelta(seconds=1))})
    assert ("address", "stale") in reasons(FRESH_PLAN, older)


@pytest.mark.parametrize(
    ("email", "reason"),
    [
        pytest.param(held("not an email", age=2 * HOUR), "invalid", id="invalid over stale"),
        pytest.param(
            held("a@example.com", verified=False, age=2 * HOUR), "stale", id="stale over unverified"
        ),
        pytest.param(held("a@example.com", verified=False), "unverified", id="fresh unverified"),
    ],
)
def test_invalid_wins_over_stale_and_stale_over_unverified(
    email: CurrentValue, reason: str
) -> None:
    assert ("email", reason) in reasons(FRESH_PLAN, values({"email": email}))


def test_an_unknown_condition_wins_over_stale() -> None:
    plan = compile_plan(
        "a",
        [req("address", when="country == 'DE'")],
        [definition("address", freshness_seconds=60), definition("country")],
    )
    customer = values({"address": "Main St 1"}, age=HOUR)
    assert reasons(plan, customer) == [("address", "condition_unknown")]


def test_a_stale_value_still_counts_as_present_for_dependencies_and_conditions() -> None:
    plan = compile_plan(
        "a",
        [req("order"), req("amount", depends_on=["order"]), req("dob", when="amount > 500")],
        [
            definition("order", freshness_seconds=60),
            definition("amount", ValueType.NUMBER, freshness_seconds=60),
            definition("dob", ValueType.DATE),
        ],
    )
    customer = values({"order": "ORD-1", "amount": 900}, age=HOUR)
    assert sorted(reasons(plan, customer)) == [
        ("amount", "stale"),  # applies: its stale dependency is present
        ("dob", "absent"),  # applies: the condition reads the stale amount
        ("order", "stale"),
    ]


@pytest.mark.parametrize(
    ("own", "other", "stale"),
    [
        pytest.param(7200, 60, False, id="the scenario agent's longer freshness wins"),
        pytest.param(60, 7200, True, id="the scenario agent's shorter freshness wins"),
        pytest.param(None, 60, False, id="the scenario agent's definition without one wins"),
    ],
)
def test_the_scenario_agents_definition_decides_freshness(
    own: int | None, other: int, stale: bool
) -> None:
    plan = compile_plan(
        "a",
        [req("address")],
        [
            definition("address", freshness_seconds=own),
            definition("address", agent="b", freshness_seconds=other),
        ],
    )
    customer = values({"address": "Main St 1"}, age=HOUR)
    assert (reasons(plan, customer) == [("address", "stale")]) is stale


def test_without_a_definition_of_the_scenario_agent_the_shortest_freshness_applies() -> None:
    plan = compile_plan(
        "a",
        [req("address")],
        [
            definition("address", agent="b", freshness_seconds=7200),
            definition("address", agent="c", freshness_seconds=60),
            definition("address", agent="d"),
            definition("address", agent="e", freshness_seconds=1, enabled=False),
        ],
    )
    assert reasons(plan, values({"address": "Main St 1"}, age=30 * timedelta(seconds=1))) == []
    assert reasons(plan, values({"address": "Main St 1"}, age=HOUR)) == [("address", "stale")]
