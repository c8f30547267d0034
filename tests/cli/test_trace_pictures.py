"""`profile trace --format mermaid|dot` (SPEC §12): lineage as a picture, labelled with kinds,
names, statuses and short ids, never a value; DOT drawn by Graphviz's `dot`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ElementTree

import pytest

from .helpers import DEMO, TENANT, Ccv, assert_exit, flat

ASSET = "d7a7a3cc-8c3d-4f16-9293-de8fc88b2875"  # c-1001's ID card: eight items in its lineage
KYC = "bef7e268-ffe9-46ab-a058-1ccace1d62e0"
NODE = re.compile(r'^    (n\d+)\["([^"]*)"\]$')
EDGE = re.compile(r"^    (n\d+) --> (n\d+)$")
STYLE = re.compile(r"^    style (n\d+) stroke-width:3px$")


def _values() -> set[str]:
    """Every value the demo stores for c-1001 (none may appear in a picture)."""
    found = set()
    for line in (DEMO / "profiles.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        value = record.get("value")
        # An enum value such as `national_id` may also be part of a field name: not a leak.
        if (
            record.get("customer") == "c-1001"
            and isinstance(value, str)
            and not re.fullmatch(r"[a-z_]+", value)
        ):
            found.add(value)
    assert found
    return found


def _picture(demo: Ccv, item: str, fmt: str) -> str:
    result = demo("profile", "trace", item, "--tenant", TENANT, "--format", fmt)
    assert_exit(result, 0)
    return result.stdout


def _trace(demo: Ccv, item: str) -> dict[str, object]:
    answer: dict[str, object] = demo.json("profile", "trace", item, "--tenant", TENANT)
    return answer


def _count(trace: dict[str, object]) -> int:
    def below(nodes: object) -> int:
        assert isinstance(nodes, list)
        return sum(1 + below(node["dependents"]) for node in nodes)

    chain = trace["chain"]
    assert isinstance(chain, list)
    return 1 + len(chain) + below(trace["dependents"])


@pytest.mark.parametrize("item", [ASSET, KYC])
def test_mermaid_is_a_flowchart_of_every_item(demo: Ccv, item: str) -> None:
    text = _picture(demo, item, "mermaid")
    lines = text.rstrip("\n").split("\n")
    assert lines[0] == "flowchart TD"
    nodes: dict[str, str] = {}
    edges: list[tuple[str, str]] = []
    styled = []
    for line in lines[1:]:
        if node := NODE.match(line):
            nodes[node[1]] = node[2]
        elif edge := EDGE.match(line):
            edges.append((edge[1], edge[2]))
        elif style := STYLE.match(line):
            styled.append(style[1])
        else:
            raise AssertionError(f"not a flowchart line: {line!r}")
    assert len(nodes) == _count(_trace(demo, item))
    assert {n for edge in edges for n in edge} <= set(nodes)
    assert len(edges) == len(nodes) - 1  # a tree: every node but the root has one source
    (focus,) = styled
    assert nodes[focus].endswith(item[:8])
    for label in nodes.values():
        assert re.search(r"(^|· )[0-9a-zA-Z_-]{1,8}$", label), label  # ends with a short id
    assert not [value for value in _values() if value in text]


def test_dot_is_drawn_by_graphviz(demo: Ccv) -> None:
    if shutil.which("dot") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Graphviz's dot is required under CI=true (.ci/run installs it)")
        pytest.skip("Graphviz's dot is not installed")
    text = _picture(demo, ASSET, "dot")
    assert text.startswith("digraph lineage {")
    drawn = subprocess.run(
        ["dot", "-Tsvg"], input=text.encode(), capture_output=True, timeout=60, check=False
    )
    assert drawn.returncode == 0, drawn.stderr.decode()
    svg = ElementTree.fromstring(drawn.stdout)
    groups = [g for g in svg.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "node"]
    assert len(groups) == _count(_trace(demo, ASSET))
    labels = " ".join(t.text or "" for t in svg.iter("{http://www.w3.org/2000/svg}text"))
    assert "id_card_front" in labels and ASSET[:8] in labels and "active" in labels
    assert not [value for value in _values() if value in text]


def test_tree_stays_the_default_and_a_bad_format_is_a_usage_error(demo: Ccv) -> None:
    tree = demo("profile", "trace", KYC, "--tenant", TENANT)
    assert_exit(tree, 0)
    assert "kyc_status" in tree.stdout and "flowchart" not in tree.stdout
    bad = demo.fails("profile", "trace", KYC, "--tenant", TENANT, "--format", "png", code=2)
    assert "--format must be tree, json, mermaid or dot" in flat(bad.stderr)
