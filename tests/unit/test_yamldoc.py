"""The YAML reader under hostile input: one sentence with a line and column, and never a hang."""

from __future__ import annotations

import pytest

from ccv.domain.yamldoc import MAX_EXPANDED_NODES, YamlError, parse_yaml


def _laughs(levels: int, width: int = 10) -> str:
    """The "billion laughs" document: `width ** levels` items in a few hundred bytes."""
    lines = ["l0: &l0 [" + ", ".join(["lol"] * width) + "]"]
    for level in range(1, levels):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def test_aliases_that_expand_past_the_budget_are_refused_where_they_explode() -> None:
    with pytest.raises(YamlError) as caught:
        parse_yaml(_laughs(9))  # 10**9 items
    assert str(caught.value) == (
        f"the document expands past {MAX_EXPANDED_NODES:,} nodes through YAML aliases"
    )
    # l5 expands to 10**6 scalars: the first level past the budget.
    assert (caught.value.line, caught.value.column) == (6, 5)


def test_aliases_within_the_budget_still_load_and_keep_their_marks() -> None:
    doc = parse_yaml("base: &b {kind: string}\nemail: *b\nlist: [*b, *b]\n")
    assert doc.data == {
        "base": {"kind": "string"},
        "email": {"kind": "string"},
        "list": [{"kind": "string"}, {"kind": "string"}],
    }
    assert doc.where("email") == (2, 1)
    assert doc.where("base", "kind") == (1, 11)
    assert doc.where("list", 1, "kind") == (1, 7)  # inside an alias: where its anchor stands


def test_an_alias_inside_its_own_anchor_is_an_error_not_a_recursion() -> None:
    with pytest.raises(YamlError, match="refers to a node that contains it") as caught:
        parse_yaml("fields:\n  - &x [*x]\n")
    assert caught.value.line == 2


@pytest.mark.parametrize(
    ("text", "message", "line", "column"),
    [
        ("a: b\nc: d\x00\n", "control character U+0000 is not allowed in YAML", 2, 5),
        ("a: b\x07\n", "control character U+0007 is not allowed in YAML", 1, 5),
        ("a: \ufffe\n", "character U+FFFE is not allowed in YAML", 1, 4),
    ],
)
def test_a_character_yaml_refuses_is_named_with_its_position(
    text: str, message: str, line: int, column: int
) -> None:
    with pytest.raises(YamlError) as caught:
        parse_yaml(text)
    assert str(caught.value) == message
    assert "\n" not in str(caught.value)
    assert (caught.value.line, caught.value.column) == (line, column)


def test_nesting_past_the_parser_limit_is_a_syntax_error() -> None:
    with pytest.raises(YamlError, match="maximum nesting depth"):
        parse_yaml("a: " + "[" * 5000 + "]" * 5000 + "\n")


def test_the_deepest_nesting_the_parser_allows_is_walked_without_recursion() -> None:
    depth = 990
    doc = parse_yaml("a: " + "[" * depth + "]" * depth + "\n")
    node = doc.data["a"]
    for _ in range(depth - 1):
        node = node[0]
    assert node == []


def test_a_duplicate_key_is_found_at_its_second_occurrence() -> None:
    with pytest.raises(YamlError, match="duplicate key 'email'") as caught:
        parse_yaml("fields:\n  email: 1\n  email: 2\n")
    assert (caught.value.line, caught.value.column) == (3, 3)
