"""Short item ids (SPEC §12): a unique prefix of at least 8 hex digits works wherever a command
takes an item id; an ambiguous one is a usage error listing the candidates."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import Ccv, flat, write_jsonl

T = ("--tenant", "acme")
A = "abcdef12-0000-4000-8000-000000000001"
B = "abcdef12-0000-4000-8000-000000000002"
C = "12345678-9abc-4def-8000-000000000003"


@pytest.fixture
def items(ccv: Ccv, tmp_path: Path) -> Ccv:
    records = [
        {"tenant": "acme", "customer": "c-1", "id": A, "name": "nickname", "value": "Ana",
         "collected_at": "2026-03-01T10:00:00Z"},
        {"tenant": "acme", "customer": "c-2", "id": B, "name": "nickname", "value": "Bo"},
        {"tenant": "acme", "customer": "c-1", "id": C, "name": "initial", "value": "A",
         "source_item_id": A},
    ]  # fmt: skip
    imported = ccv.json(
        "profile", "import", write_jsonl(tmp_path / "r.jsonl", records), "--validation", "disabled"
    )
    assert imported["inserted"] == 3
    return ccv


@pytest.mark.parametrize("given", ["12345678", "12345678-9ABC", C.upper(), C.replace("-", "")])
def test_trace_takes_a_unique_prefix_in_any_case(items: Ccv, given: str) -> None:
    trace = items.json("profile", "trace", given, *T)
    assert trace["item"]["id"] == C
    assert [link["id"] for link in trace["chain"]] == [A]


def test_an_ambiguous_prefix_lists_the_candidates(items: Ccv) -> None:
    result = items.fails("profile", "trace", "abcdef12", *T, code=2)
    message = flat(result.stderr)
    assert "item id abcdef12 is ambiguous" in message
    assert f"{A} (field nickname)" in message and f"{B} (field nickname)" in message
    items.fails("profile", "trace", "abcdef12-0000-4000-8000-0000000000", *T, code=2)


def test_a_prefix_shorter_than_eight_is_a_usage_error(items: Ccv) -> None:
    result = items.fails("profile", "trace", "1234567", *T, code=2)
    assert "too short: give at least 8" in flat(result.stderr)
    items.fails("profile", "trace", "99999999", *T, code=3)  # a prefix of nothing
    items.fails("profile", "trace", "not-an-id", *T, code=3)


def test_delete_and_audit_take_prefixes_too(items: Ccv) -> None:
    deleted = items.json("profile", "delete", "12345678", *T)
    assert deleted["id"] == C
    events = items.json("audit", *T, "--item", "12345678")["events"]  # gone: found in the trail
    assert [(e["item_id"], e["event"]) for e in events] == [(C, "delete")]
    refused = items.fails("profile", "delete", A[:13], *T, code=2)
    assert "ambiguous" in flat(refused.stderr)
    assert items.json("profile", "delete", A.upper(), *T)["id"] == A
