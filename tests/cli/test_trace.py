"""`ccv profile trace`: the SPEC §5 JSON shape, chain order and item kinds."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .helpers import DEMO, TENANT, Ccv

ITEM_KEYS = {"id", "kind", "name", "status"}
ID_CARD = "d7a7a3cc-8c3d-4f16-9293-de8fc88b2875"
LEGAL_NAME = "00a61f93-3d6c-41e3-b0eb-9a0a96263ae6"
DATE_OF_BIRTH = "1919e93a-d117-45ad-8988-93101c593af5"
NATIONAL_ID = "7d836e77-af67-4461-a416-3207d0944996"
IS_ADULT = "5b4c8012-ede7-4d0c-bfb8-8309fadb8908"
KYC_STATUS = "bef7e268-ffe9-46ab-a058-1ccace1d62e0"


def _record(customer: str, name: str) -> dict[str, Any]:
    with (DEMO / "profiles.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            record: dict[str, Any] = json.loads(line)
            if (record["customer"], record["name"]) == (customer, name):
                return record
    raise LookupError((customer, name))


def _walk(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every node of a dependents tree, depth first."""
    out = []
    for node in nodes:
        assert set(node) >= {"item", "dependents"}
        out.append(node)
        out.extend(_walk(node["dependents"]))
    return out


def test_trace_json_has_the_spec_keys(demo: Ccv) -> None:
    trace = demo.json("profile", "trace", KYC_STATUS, "--tenant", TENANT)
    assert {"item", "chain", "dependents"} <= trace.keys()
    for item in [trace["item"], *trace["chain"]]:
        assert item.keys() >= ITEM_KEYS
    assert trace["item"] == trace["item"] | {
        "id": KYC_STATUS,
        "kind": "field",
        "name": "kyc_status",
        "status": "active",
    }


def test_chain_runs_from_the_direct_source_to_the_root(demo: Ccv) -> None:
    chain = demo.json("profile", "trace", KYC_STATUS, "--tenant", TENANT)["chain"]
    assert [(i["kind"], i["name"]) for i in chain] == [
        ("field", "national_id_number"),
        ("asset", "id_card_front"),
        ("external", "session"),
    ]
    assert [i["id"] for i in chain[:2]] == [NATIONAL_ID, ID_CARD]
    assert chain[-1]["status"] is None  # outside the vault: no status
    assert chain[-1]["id"] == _record("c-1001", "id_card_front")["source_item_id"]


def test_deepest_demo_chain_is_walked_to_its_root(demo: Ccv) -> None:
    kyc = _record("c-1018", "kyc_status")
    chain = demo.json("profile", "trace", kyc["id"], "--tenant", TENANT)["chain"]
    assert [(i["kind"], i["name"]) for i in chain] == [
        ("field", "is_adult"),
        ("field", "date_of_birth"),
        ("asset", "id_card_front"),
        ("external", "session"),
    ]


def test_dependents_of_an_asset_form_a_tree(demo: Ccv) -> None:
    trace = demo.json("profile", "trace", ID_CARD, "--tenant", TENANT)
    assert [i["kind"] for i in trace["chain"]] == ["external"]
    direct = {node["item"]["id"]: node for node in trace["dependents"]}
    assert {LEGAL_NAME, DATE_OF_BIRTH, NATIONAL_ID} <= direct.keys()
    assert [n["item"]["id"] for n in direct[DATE_OF_BIRTH]["dependents"]] == [IS_ADULT]
    assert [n["item"]["id"] for n in direct[NATIONAL_ID]["dependents"]] == [KYC_STATUS]
    for node in _walk(trace["dependents"]):
        assert node["item"].keys() >= ITEM_KEYS


def test_a_dangling_reference_ends_the_chain_as_missing(demo: Ccv) -> None:
    trace = demo.json(
        "profile", "trace", "14388e02-5e93-4f99-a152-cfd19f71810e", "--tenant", TENANT
    )
    assert trace["item"]["status"] == "orphaned"
    assert trace["chain"] == [
        trace["chain"][0]
        | {
            "id": "46e3897a-83d3-45a6-b506-e7d2ca6e3fc8",
            "kind": "missing",
            "name": None,
            "status": None,
        }
    ]


@pytest.mark.parametrize(
    ("customer", "name", "external"),
    [("c-1001", "account_tier", "tool"), ("c-1001", "phone", "session")],
)
def test_tool_and_session_sources_end_the_chain_as_external(
    demo: Ccv, customer: str, name: str, external: str
) -> None:
    record = _record(customer, name)
    chain = demo.json("profile", "trace", record["id"], "--tenant", TENANT)["chain"]
    assert chain == [
        chain[0]
        | {"id": record["source_item_id"], "kind": "external", "name": external, "status": None}
    ]


def test_trace_works_for_a_superseded_item(demo: Ccv) -> None:
    trace = demo.json(
        "profile", "trace", "e5121482-3929-4d22-a255-accb1a466884", "--tenant", TENANT
    )
    assert (trace["item"]["name"], trace["item"]["status"]) == ("email", "superseded")


def test_lineage_crosses_customers_of_one_tenant(demo: Ccv) -> None:
    joint = _record("c-1021", "account_tier")
    chain = demo.json("profile", "trace", joint["id"], "--tenant", TENANT)["chain"]
    assert chain[0]["id"] == joint["source_item_id"]
    assert chain[0]["id"] == _record("c-1020", "account_tier")["id"]  # the other customer's
    assert (chain[0]["kind"], chain[0]["name"]) == ("field", "account_tier")


@pytest.mark.parametrize(
    "item",
    ["3f0c6a8e-0000-4000-8000-000000000000", "'; DROP TABLE fields; --", "nö-such-ïtem"],
)
def test_trace_of_an_unknown_item_exits_3(demo: Ccv, item: str) -> None:
    demo.fails("profile", "trace", item, "--tenant", TENANT, code=3)
    # The vault is intact afterwards.
    assert demo.json("profile", "trace", KYC_STATUS, "--tenant", TENANT)["item"]["id"] == KYC_STATUS


def test_trace_is_scoped_to_the_tenant(demo: Ccv) -> None:
    demo.fails("profile", "trace", KYC_STATUS, "--tenant", "other-bank", code=3)
