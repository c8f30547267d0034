"""Lineage as a picture (SPEC §12): a trace as a Mermaid flowchart or a Graphviz DOT digraph.

Each node is labelled with its kind, name, status and short id (the first 8 characters), never
a value; edges point from a source to what derives from it. The traced item is drawn bold.
"""

from __future__ import annotations

from collections.abc import Iterator

from ccv.domain.models import Trace, TraceItem, TraceNode

SHORT = 8


def _edges(trace: Trace) -> Iterator[tuple[TraceItem, TraceItem]]:
    """(source, derived) pairs: up the chain to the root, then down every dependent."""
    below = trace.item
    for source in trace.chain:
        yield source, below
        below = source

    def down(parent: TraceItem, nodes: list[TraceNode]) -> Iterator[tuple[TraceItem, TraceItem]]:
        for node in nodes:
            yield parent, node.item
            yield from down(node.item, node.dependents)

    yield from down(trace.item, trace.dependents)


def _nodes(trace: Trace) -> list[TraceItem]:
    """Every item once, root first."""
    seen: dict[str, TraceItem] = {}
    for item in [*reversed(trace.chain), trace.item]:
        seen.setdefault(item.id, item)
    for _, derived in _edges(trace):
        seen.setdefault(derived.id, derived)
    return list(seen.values())


def _lines(item: TraceItem) -> list[str]:
    status = item.status.value if item.status is not None else None
    if item.kind == "external":
        return ["external", item.name or "", item.id[:SHORT]]
    if item.kind == "missing":
        return ["missing", "dangling reference", item.id[:SHORT]]
    return [item.kind, item.name or "", status or "", item.id[:SHORT]]


def _names(trace: Trace) -> dict[str, str]:
    return {item.id: f"n{index}" for index, item in enumerate(_nodes(trace))}


def mermaid(trace: Trace) -> str:
    """A Mermaid flowchart, top (root) to bottom."""
    names = _names(trace)
    out = ["flowchart TD"]
    for item in _nodes(trace):
        text = " · ".join(part for part in _lines(item) if part)
        for raw, entity in (("&", "#amp;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
            text = text.replace(raw, entity)
        out.append(f'    {names[item.id]}["{text}"]')
    for source, derived in _edges(trace):
        out.append(f"    {names[source.id]} --> {names[derived.id]}")
    out.append(f"    style {names[trace.item.id]} stroke-width:3px")
    return "\n".join(out) + "\n"


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def dot(trace: Trace) -> str:
    """A Graphviz digraph (`dot -Tsvg` draws it)."""
    names = _names(trace)
    out = [
        "digraph lineage {",
        "    rankdir=TB;",
        '    node [shape=box, fontname="Helvetica"];',
    ]
    for item in _nodes(trace):
        label = "\\n".join(_dot_text(part) for part in _lines(item) if part)
        extra = ", penwidth=3" if item.id == trace.item.id else ""
        extra += ", style=dashed" if item.kind in ("external", "missing") else ""
        out.append(f'    {names[item.id]} [label="{label}"{extra}];')
    for source, derived in _edges(trace):
        out.append(f"    {names[source.id]} -> {names[derived.id]};")
    out.append("}")
    return "\n".join(out) + "\n"
