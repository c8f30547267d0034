"""The `when` condition language of SPEC §4: a tokenizer, a recursive-descent parser, a type
check against field value types and a three-valued evaluator. Conditions are data: nothing here
hands user text to Python (no eval, no literal_eval).

Grammar (lowest precedence first; `not` binds looser than a comparison, as in Python)::

    condition  := or_expr END
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | comparison
    comparison := operand [compare_op operand]          # no chains: a < b < c is an error
    compare_op := "==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not" "in"
    operand    := NAME | literal | list | "(" or_expr ")"
    list       := "[" [literal ("," literal)* [","]] "]"
    literal    := STRING | ["-"] NUMBER | "true" | "false" | "null"
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from ccv.domain.enums import ValueType
from ccv.domain.timeutil import ensure_utc, parse_time

SYNTAX = "when-syntax"
CALL = "when-call"
TYPE = "when-type"
VALUE = "when-value"

MAX_LENGTH = 2000
MAX_DEPTH = 50  # nesting of parentheses and `not`; keeps the recursive parser off the stack limit

LiteralValue = str | int | float | bool | None


class ConditionError(ValueError):
    """A condition that does not parse; `column` is 1-based within the condition text."""

    def __init__(self, message: str, column: int, code: str = SYNTAX) -> None:
        super().__init__(message)
        self.message = message
        self.column = column
        self.code = code


@dataclass(frozen=True, slots=True)
class ConditionProblem:
    """A type or value problem of a condition that parsed."""

    column: int
    code: str
    message: str


# --- syntax tree -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Name:
    name: str
    column: int


@dataclass(frozen=True, slots=True)
class Literal:
    value: LiteralValue
    text: str
    column: int


@dataclass(frozen=True, slots=True)
class ListLiteral:
    items: tuple[Literal, ...]
    text: str
    column: int


@dataclass(frozen=True, slots=True)
class Compare:
    op: str  # == != < <= > >= in "not in"
    left: Node
    right: Node
    column: int  # of the operator


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node
    column: int


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str  # "and" | "or"
    operands: tuple[Node, ...]
    column: int


Node = Name | Literal | ListLiteral | Compare | Not | BoolOp


@dataclass(frozen=True, slots=True)
class Condition:
    """A parsed condition: its text, its tree and the field names it reads, in order."""

    source: str
    root: Node
    names: tuple[Name, ...]

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(name.name for name in self.names)


# --- tokenizer ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # NAME NUMBER STRING OP ( ) [ ] , . - END, or a keyword: and or not in true ...
    text: str
    column: int
    value: LiteralValue = None


_KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_PUNCT = {"(": "(", ")": ")", "[": "[", "]": "]", ",": ",", ".": ".", "-": "-"}
_COMPARE = ("==", "!=", "<=", ">=", "<", ">")
# Spellings borrowed from other languages, and what this one says instead.
_HINTS = {
    "&&": "and",
    "&": "and",
    "||": "or",
    "|": "or",
    "!": "not",
    "=": "==",
    "True": "true",
    "False": "false",
    "None": "null",
    "AND": "and",
    "OR": "or",
    "NOT": "not",
    "IN": "in",
}
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t"}


def _hint(text: str) -> str:
    better = _HINTS.get(text)
    return f" (write '{better}')" if better else ""


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        col = i + 1
        if ch in " \t\r\n":
            i += 1
            continue
        match = _NAME.match(text, i)
        if match:
            word = match.group()
            kind = word if word in _KEYWORDS else "NAME"
            value: LiteralValue = {"true": True, "false": False}.get(word)
            tokens.append(_Token(kind, word, col, value))
            i = match.end()
            continue
        match = _NUMBER.match(text, i)
        if match:
            end = match.end()
            if end < n and (text[end].isalnum() or text[end] in "_."):
                raise ConditionError(f"'{text[i : end + 1]}' is not a number", col)
            raw = match.group()
            number: int | float = float(raw) if any(c in raw for c in ".eE") else int(raw)
            if isinstance(number, float) and not math.isfinite(number):
                raise ConditionError(f"the number {raw} is too large", col)
            tokens.append(_Token("NUMBER", raw, col, number))
            i = end
            continue
        if ch in "\"'":
            i = _string(text, i, tokens)
            continue
        two = text[i : i + 2]
        if two in _COMPARE:
            tokens.append(_Token("OP", two, col))
            i += 2
            continue
        if ch in "<>":
            tokens.append(_Token("OP", ch, col))
            i += 1
            continue
        if two in _HINTS:
            raise ConditionError(f"'{two}' is not an operator here{_hint(two)}", col)
        if ch in _PUNCT:
            tokens.append(_Token(_PUNCT[ch], ch, col))
            i += 1
            continue
        if ch in _HINTS:
            raise ConditionError(f"'{ch}' is not an operator here{_hint(ch)}", col)
        raise ConditionError(f"unexpected character '{ch}'", col)
    tokens.append(_Token("END", "", n + 1))
    return tokens


def _string(text: str, start: int, tokens: list[_Token]) -> int:
    quote = text[start]
    chars: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == quote:
            value = "".join(chars)
            tokens.append(_Token("STRING", text[start : i + 1], start + 1, value))
            return i + 1
        if ch == "\\":
            escaped = text[i + 1 : i + 2]
            if escaped not in _ESCAPES:
                raise ConditionError(f"unknown escape '\\{escaped}' in a string", i + 1)
            chars.append(_ESCAPES[escaped])
            i += 2
            continue
        chars.append(ch)
        i += 1
    raise ConditionError(f"the string starting here is not closed with {quote}", start + 1)


# --- parser ------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0
        self.depth = 0
        self.names: list[Name] = []

    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def take(self) -> _Token:
        token = self.tokens[self.pos]
        if token.kind != "END":
            self.pos += 1
        return token

    def deeper(self, token: _Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ConditionError(f"the condition nests more than {MAX_DEPTH} deep", token.column)

    def unexpected(self, token: _Token, wanted: str) -> ConditionError:
        if token.kind == "END":
            return ConditionError(f"the condition ends where {wanted} was expected", token.column)
        return ConditionError(
            f"unexpected '{token.text}' where {wanted} was expected{_hint(token.text)}",
            token.column,
        )

    def parse(self) -> Node:
        if self.peek().kind == "END":
            raise ConditionError("the condition is empty", 1)
        node = self.or_expr()
        token = self.peek()
        if token.kind != "END":
            raise self.unexpected(token, "'and', 'or' or the end of the condition")
        return node

    def or_expr(self) -> Node:
        return self._chain("or", self.and_expr)

    def and_expr(self) -> Node:
        return self._chain("and", self.not_expr)

    def _chain(self, keyword: str, operand: Any) -> Node:
        first: Node = operand()
        operands = [first]
        while self.peek().kind == keyword:
            self.take()
            operands.append(operand())
        if len(operands) == 1:
            return first
        return BoolOp(keyword, tuple(operands), _column(first))

    def not_expr(self) -> Node:
        token = self.peek()
        if token.kind == "not":
            self.take()
            self.deeper(token)
            operand = self.not_expr()
            self.depth -= 1
            return Not(operand, token.column)
        return self.comparison()

    def _compare_op(self) -> tuple[str, _Token] | None:
        token = self.peek()
        if token.kind == "OP":
            return token.text, token
        if token.kind == "in":
            return "in", token
        if token.kind == "not" and self.peek(1).kind == "in":
            return "not in", token
        return None

    def comparison(self) -> Node:
        left = self.operand()
        found = self._compare_op()
        if found is None:
            return left
        op, token = found
        self.take()
        if op == "not in":
            self.take()
        right = self.operand()
        chained = self._compare_op()
        if chained is not None:
            raise ConditionError(
                "comparisons cannot be chained; join them with 'and'", chained[1].column
            )
        return Compare(op, left, right, token.column)

    def operand(self) -> Node:
        token = self.take()
        node: Node
        if token.kind == "NAME" and token.text in _HINTS:  # True, None, AND...: never a field
            raise self.unexpected(token, "a field name or a value")
        if token.kind == "NAME":
            node = Name(token.text, token.column)
            self.names.append(node)
        elif token.kind in ("NUMBER", "STRING", "true", "false", "null"):
            node = Literal(token.value, token.text, token.column)
        elif token.kind == "-":
            node = self._negative(token)
        elif token.kind == "[":
            node = self._list(token)
        elif token.kind == "(":
            self.deeper(token)
            node = self.or_expr()
            closing = self.take()
            if closing.kind != ")":
                raise self.unexpected(closing, f"')' to close the '(' at column {token.column}")
            self.depth -= 1
        else:
            raise self.unexpected(token, "a field name or a value")
        self._no_call(node, token)
        return node

    def _no_call(self, node: Node, first: _Token) -> None:
        """A call, attribute access or subscript after an operand: conditions never run code."""
        after = self.peek()
        what = self.text[first.column - 1 : after.column - 1].strip()
        if after.kind == "(":
            raise ConditionError(
                f"'{what}(...)' is a call: conditions compare field values and cannot "
                "call functions or methods",
                first.column,
                CALL,
            )
        if after.kind == ".":
            attribute = self.peek(1)
            shown = f"{what}.{attribute.text}" if attribute.kind == "NAME" else f"{what}."
            raise ConditionError(
                f"'{shown}' is attribute access: conditions compare field values and cannot "
                "reach into objects or call methods",
                first.column,
                CALL,
            )
        if after.kind == "[" and not isinstance(node, Literal | ListLiteral):
            raise ConditionError(
                f"'{what}[...]' is a subscript: conditions compare whole field values",
                first.column,
                CALL,
            )

    def _negative(self, minus: _Token) -> Literal:
        number = self.take()
        if number.kind != "NUMBER" or number.column != minus.column + 1:
            raise ConditionError("'-' must be followed directly by a number", minus.column)
        assert isinstance(number.value, int | float)
        return Literal(-number.value, "-" + number.text, minus.column)

    def _list(self, opening: _Token) -> ListLiteral:
        items: list[Literal] = []
        while True:
            token = self.take()
            if token.kind == "]":
                break
            if token.kind in ("NUMBER", "STRING", "true", "false", "null"):
                items.append(Literal(token.value, token.text, token.column))
            elif token.kind == "-":
                items.append(self._negative(token))
            elif token.kind == "NAME":
                raise ConditionError(
                    f"list items must be literal values, not field names ('{token.text}')",
                    token.column,
                )
            elif token.kind == "[":
                raise ConditionError("lists cannot be nested", token.column)
            else:
                raise self.unexpected(
                    token, f"a value or ']' to close the '[' at column {opening.column}"
                )
            separator = self.take()
            if separator.kind == "]":
                break
            if separator.kind != ",":
                raise self.unexpected(
                    separator, f"',' or ']' to close the '[' at column {opening.column}"
                )
        end = self.tokens[self.pos - 1].column
        return ListLiteral(tuple(items), self.text[opening.column - 1 : end], opening.column)


def _column(node: Node) -> int:
    if isinstance(node, Compare):
        return _column(node.left)
    if isinstance(node, BoolOp):
        return _column(node.operands[0])
    return node.column


@lru_cache(maxsize=4096)  # requirement files repeat the same few conditions many times
def parse_condition(text: str) -> Condition:
    """Parse a condition; raise ConditionError (with a 1-based column) if it does not parse."""
    if len(text) > MAX_LENGTH:
        raise ConditionError(f"the condition is longer than {MAX_LENGTH} characters", 1)
    parser = _Parser(text)
    root = parser.parse()
    return Condition(text, root, tuple(parser.names))


# --- type check --------------------------------------------------------------------------------

_KINDS = {
    ValueType.STRING: "text",
    ValueType.EMAIL: "text",
    ValueType.PHONE: "text",
    ValueType.ENUM: "text",
    ValueType.DATE: "date",
    ValueType.DATETIME: "datetime",
    ValueType.NUMBER: "number",
    ValueType.INTEGER: "number",
    ValueType.BOOLEAN: "boolean",
    ValueType.JSON: "any",
}
_TEMPORAL = frozenset({"date", "datetime"})
_ORDERED = frozenset({"text", "number", "date", "datetime"})
_PLURAL = {"boolean": "booleans", "null": "nulls", "list": "lists"}
_A = {
    "text": "text",
    "number": "a number",
    "boolean": "a boolean",
    "null": "null",
    "list": "a list",
}


class _Checker:
    def __init__(
        self,
        types: Mapping[str, ValueType],
        allowed_values: Mapping[str, Sequence[Any]],
    ) -> None:
        self.types = types
        self.allowed = allowed_values
        self.problems: list[ConditionProblem] = []

    # What an operand is, for the rules below and for messages.
    def kind(self, node: Node) -> str:
        if isinstance(node, Name):
            value_type = self.types.get(node.name)
            return "any" if value_type is None else _KINDS[value_type]
        if isinstance(node, Literal):
            value = node.value
            if value is None:
                return "null"
            if isinstance(value, bool):
                return "boolean"
            return "text" if isinstance(value, str) else "number"
        if isinstance(node, ListLiteral):
            return "list"
        return "boolean"  # a comparison or a combination of them

    def describe(self, node: Node) -> str:
        if isinstance(node, Name):
            value_type = self.types.get(node.name)
            if value_type is None:
                return f"'{node.name}'"
            article = "an" if value_type.value[0] in "aeiou" else "a"
            return f"'{node.name}' is {article} {value_type.value}"
        if isinstance(node, Literal | ListLiteral):
            return f"{node.text} is {_A[self.kind(node)]}"
        return "a condition"

    def fail(self, node: Node, code: str, message: str) -> None:
        self.problems.append(ConditionProblem(_column(node), code, message))

    def truth(self, node: Node) -> None:
        """`node` stands where true or false is needed."""
        if isinstance(node, BoolOp):
            for operand in node.operands:
                self.truth(operand)
        elif isinstance(node, Not):
            self.truth(node.operand)
        elif isinstance(node, Compare):
            self.compare(node)
        elif self.kind(node) not in ("boolean", "any"):
            example = node.name if isinstance(node, Name) else node.text
            self.fail(
                node,
                TYPE,
                f"{self.describe(node)}, not true or false: compare it with something "
                f"(e.g. {example} == ...)",
            )

    def compare(self, node: Compare) -> None:
        for side in (node.left, node.right):
            if isinstance(side, Compare | Not | BoolOp):
                self.truth(side)
        left, right = self.kind(node.left), self.kind(node.right)
        shown = f"'{_text(node)}'"
        if node.op in ("in", "not in"):
            self.membership(node, left, right, shown)
            return
        if node.op not in ("==", "!="):
            for side, kind in ((node.left, left), (node.right, right)):
                if self.is_enum(side):
                    why = "enum values have no order (use ==, != or in)"
                elif kind in _ORDERED or kind == "any":
                    continue
                else:
                    why = f"{_PLURAL[kind]} have no order (use == or !=)"
                self.fail(
                    node,
                    TYPE,
                    f"{shown} compares incompatible types: {self.describe(side)}, and {why}",
                )
                return
        self.pair(node, node.left, node.right, shown)

    def membership(self, node: Compare, left: str, right: str, shown: str) -> None:
        if left == "list":
            self.fail(node, TYPE, f"{shown}: the left side of '{node.op}' must be a single value")
            return
        if right == "any":
            return
        if not isinstance(node.right, ListLiteral):
            self.fail(
                node,
                TYPE,
                f"{shown} compares incompatible types: {self.describe(node.right)}, but "
                f'\'{node.op}\' needs a list on its right, e.g. ["a", "b"]',
            )
            return
        for item in node.right.items:
            if not self.pair(node, node.left, item, shown):
                return

    def is_enum(self, node: Node) -> bool:
        return isinstance(node, Name) and self.types.get(node.name) is ValueType.ENUM

    def pair(self, node: Compare, a: Node, b: Node, shown: str) -> bool:
        """Can `a` and `b` be compared for (in)equality? Reports and returns False if not."""
        ka, kb = self.kind(a), self.kind(b)
        if "null" in (ka, kb) and node.op in ("==", "!=", "in", "not in"):
            return True
        if "any" in (ka, kb):
            return True
        for x, y in ((a, b), (b, a)):
            if self.is_enum(x) and isinstance(y, Literal) and y.value is not None:
                assert isinstance(x, Name)
                allowed = list(self.allowed.get(x.name) or [])
                if allowed and not any(_same(y.value, v) for v in allowed):
                    choices = ", ".join(str(v) for v in allowed)
                    self.fail(
                        y,
                        VALUE,
                        f"{y.text} is not an allowed value of '{x.name}' ({choices})",
                    )
                    return False
                if allowed:
                    return True
        if ka == kb and ka not in ("null", "list"):
            return True
        if ka in _TEMPORAL and kb in _TEMPORAL:
            return True
        for kx, y in ((ka, b), (kb, a)):
            if kx in _TEMPORAL and isinstance(y, Literal) and isinstance(y.value, str):
                if _temporal_literal(y.value, kx) is None:
                    wanted = "a date (YYYY-MM-DD)" if kx == "date" else "an ISO 8601 time"
                    self.fail(
                        y,
                        TYPE,
                        f"{shown} compares incompatible types: {y.text} is not {wanted}",
                    )
                    return False
                return True
        self.fail(
            node,
            TYPE,
            f"{shown} compares incompatible types: {self.describe(a)}, {self.describe(b)}",
        )
        return False


def _text(node: Compare) -> str:
    return f"{_show(node.left)} {node.op} {_show(node.right)}"


def _show(node: Node) -> str:
    if isinstance(node, Name):
        return node.name
    if isinstance(node, Literal | ListLiteral):
        return node.text
    return "(...)"


def _temporal_literal(text: str, kind: str) -> datetime | None:
    try:
        if kind == "date":
            day = date.fromisoformat(text)
            if len(text) != 10:
                return None
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        return parse_time(text)
    except ValueError:
        return None


def _same(a: Any, b: Any) -> bool:
    """Equality that keeps booleans apart from numbers (True is not 1 here)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    return bool(a == b)


def check_types(
    condition: Condition,
    types: Mapping[str, ValueType],
    allowed_values: Mapping[str, Sequence[Any]] | None = None,
) -> list[ConditionProblem]:
    """Problems of a parsed condition against field value types (and enum allowed values).

    Names missing from `types` are not checked here: report them as undefined fields.
    """
    checker = _Checker(types, allowed_values or {})
    checker.truth(condition.root)
    return checker.problems


# --- evaluation --------------------------------------------------------------------------------


class _Missing:
    """A referenced value that is absent (or null): its comparisons are unknown."""


_MISSING = _Missing()


def evaluate(
    condition: Condition | str,
    values: Mapping[str, Any],
    types: Mapping[str, ValueType] | None = None,
) -> bool | None:
    """True or False, or None when the answer depends on a value that is missing (or cannot be
    compared). `x == null` and `x != null` test presence and are never unknown. `types` tells
    which fields hold dates and times (stored as ISO 8601 text); without it only date and
    datetime objects compare as times. `and`/`or` follow three-valued logic: false and unknown
    is false, true or unknown is true.
    """
    parsed = parse_condition(condition) if isinstance(condition, str) else condition
    return _Evaluator(values, types or {}).truth(parsed.root)


class _Evaluator:
    def __init__(self, values: Mapping[str, Any], types: Mapping[str, ValueType]) -> None:
        self.values = values
        self.types = types

    def truth(self, node: Node) -> bool | None:
        if isinstance(node, BoolOp):
            return self.bool_op(node)
        if isinstance(node, Not):
            inner = self.truth(node.operand)
            return None if inner is None else not inner
        if isinstance(node, Compare):
            return self.compare(node)
        value = self.value(node)
        return value if isinstance(value, bool) else None

    def bool_op(self, node: BoolOp) -> bool | None:
        decisive = node.op == "or"  # true decides an `or`, false an `and`
        result: bool | None = not decisive
        for operand in node.operands:
            value = self.truth(operand)
            if value is decisive:
                return decisive
            if value is None:
                result = None
        return result

    def value(self, node: Node) -> Any:
        if isinstance(node, Name):
            value = self.values.get(node.name)
            return _MISSING if value is None else value
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, ListLiteral):
            return [item.value for item in node.items]
        result = self.truth(node)
        return _MISSING if result is None else result

    def temporal(self, node: Node) -> bool:
        if isinstance(node, Name):
            return _KINDS.get(self.types.get(node.name, ValueType.JSON)) in _TEMPORAL
        return False

    def compare(self, node: Compare) -> bool | None:
        op = node.op
        for null, other in ((node.left, node.right), (node.right, node.left)):
            if isinstance(null, Literal) and null.value is None and op in ("==", "!="):
                absent = self.value(other) is _MISSING or (
                    isinstance(other, Literal) and other.value is None
                )
                return absent if op == "==" else not absent
        left, right = self.value(node.left), self.value(node.right)
        if left is _MISSING or right is _MISSING:
            return None
        as_time = self.temporal(node.left) or self.temporal(node.right)
        if op in ("in", "not in"):
            if not isinstance(right, list):
                return None
            found: bool | None = False
            for item in right:
                equal = _equal(left, item, as_time)
                if equal:
                    found = True
                    break
                if equal is None:
                    found = None
            if found is None:
                return None
            return found if op == "in" else not found
        if op in ("==", "!="):
            equal = _equal(left, right, as_time)
            if equal is None:
                return None
            return equal if op == "==" else not equal
        return _order(op, left, right, as_time)


def _as_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return ensure_utc(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        try:
            return parse_time(value)
        except ValueError:
            return None
    return None


def _comparable(a: Any, b: Any, as_time: bool) -> tuple[Any, Any] | None:
    """Both values in one comparable form, or None when they are of different kinds."""
    if as_time or isinstance(a, date) or isinstance(b, date):
        ta, tb = _as_time(a), _as_time(b)
        return None if ta is None or tb is None else (ta, tb)
    if isinstance(a, bool) or isinstance(b, bool):
        return (a, b) if isinstance(a, bool) and isinstance(b, bool) else None
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a, b
    if isinstance(a, str) and isinstance(b, str):
        return a, b
    if isinstance(a, list | dict) and isinstance(b, list | dict):
        return a, b
    return None


def _equal(a: Any, b: Any, as_time: bool) -> bool | None:
    if b is None:  # a null inside a list literal matches nothing that is present
        return False
    pair = _comparable(a, b, as_time)
    return None if pair is None else bool(pair[0] == pair[1])


def _order(op: str, a: Any, b: Any, as_time: bool) -> bool | None:
    pair = _comparable(a, b, as_time)
    if pair is None or isinstance(pair[0], bool | list | dict):
        return None
    x, y = pair
    if op == "<":
        return bool(x < y)
    if op == "<=":
        return bool(x <= y)
    if op == ">":
        return bool(x > y)
    return bool(x >= y)
