"""YAML documents that remember where every key and item stood, for file:line:column findings."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Any

import yaml

try:  # the C loader is several times faster; fall back where libyaml is missing
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

PathKey = tuple[str | int, ...]


class YamlError(ValueError):
    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


@dataclass
class YamlDoc:
    data: Any
    marks: dict[PathKey, tuple[int, int]] = field(default_factory=dict)

    def where(self, *path: str | int) -> tuple[int, int]:
        """Line and column (1-based) of the longest prefix of `path` that the file has."""
        key: PathKey = tuple(path)
        while key:
            if key in self.marks:
                return self.marks[key]
            key = key[:-1]
        return self.marks.get((), (1, 1))


# A document whose aliases expand past this many nodes is refused: a few lines of anchors can
# stand for billions of items ("billion laughs"), and every reader after the parser would walk them.
MAX_EXPANDED_NODES = 1_000_000


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [value for _, value in node.value]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _walk(root: yaml.Node, marks: dict[PathKey, tuple[int, int]]) -> None:
    """Record where every key and item stands; refuse duplicate keys, cyclic or exploding aliases.

    Iterative (libyaml allows 1000 levels of nesting, more than Python's recursion limit leaves),
    and an aliased node is walked once: its expanded size is remembered, not recomputed.
    """
    sizes: dict[int, int] = {}  # expanded node count of every finished node
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, PathKey, bool]] = [(root, (), False)]
    while stack:
        node, path, finished = stack.pop()
        ident = id(node)
        if finished:
            open_nodes.discard(ident)
            size = 1 + sum(sizes[id(c)] for c in _children(node))
            if isinstance(node, yaml.MappingNode):
                size += len(node.value)  # the keys
            if size > MAX_EXPANDED_NODES:
                raise YamlError(
                    f"the document expands past {MAX_EXPANDED_NODES:,} nodes through YAML aliases",
                    *_mark(node),
                )
            sizes[ident] = size
            continue
        marks.setdefault(path, _mark(node))
        if ident in sizes:
            continue  # an alias of a node already walked
        if ident in open_nodes:
            raise YamlError("a YAML alias refers to a node that contains it", *_mark(node))
        open_nodes.add(ident)
        stack.append((node, path, True))
        pending: list[tuple[yaml.Node, PathKey, bool]] = []
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value)
                if key in seen:
                    raise YamlError(f"duplicate key '{key}'", *_mark(key_node))
                seen.add(key)
                marks[(*path, key)] = _mark(key_node)
                pending.append((value_node, (*path, key), False))
        elif isinstance(node, yaml.SequenceNode):
            pending = [(item, (*path, index), False) for index, item in enumerate(node.value)]
        stack.extend(reversed(pending))


def _reader_error(exc: yaml.reader.ReaderError, text: str) -> YamlError:
    """A character YAML does not accept (NUL, a control character), at its line and column."""
    before = text[: max(exc.position, 0)]
    line = before.count("\n") + 1
    column = len(before) - (before.rfind("\n") + 1) + 1
    if isinstance(exc.character, int):
        what = f"character U+{exc.character:04X}"
        if unicodedata.category(chr(exc.character)) == "Cc":
            what = f"control {what}"
        return YamlError(f"{what} is not allowed in YAML", line, column)
    return YamlError(f"YAML error: {exc.reason}", line, column)


def parse_yaml(text: str) -> YamlDoc:
    """Parse one YAML document; raise YamlError with the position of a syntax error."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return YamlDoc(data=None, marks={(): (1, 1)})
        marks: dict[PathKey, tuple[int, int]] = {}
        _walk(node, marks)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        raise YamlError(f"YAML syntax error: {problem}", line, column) from None
    except yaml.reader.ReaderError as exc:
        raise _reader_error(exc, text) from None
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid YAML"
        raise YamlError(f"YAML error: {first}", 1, 1) from None
    except RecursionError:
        raise YamlError("the document is nested too deeply", 1, 1) from None
    finally:
        loader.dispose()
    return YamlDoc(data=data, marks=marks)
