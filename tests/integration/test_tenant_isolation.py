"""Rule 8 as a property: whatever the ids, no read of one tenant shows another tenant's items.

Both tenants store the same customer ids and the same item ids, with values tagged by tenant, so
a query that forgets its tenant filter returns a wrong row rather than no row.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, inspect, text

from ccv.domain.enums import ValidationMode
from ccv.errors import NotFoundError
from ccv.vault import Vault

TABLES = (
    "cache_outbox",
    "audit_events",
    "scenario_requirements",
    "scenarios",
    "field_definitions",
    "assets",
    "fields",
    "profiles",
)
PAST = "2026-03-02T00:00:00Z"
AGENT = "bot"

SPECIAL = st.sampled_from([":", " ", "'", '"', "%", "_", "\\", "*", "?", "[", "é", "日", "🙂"])
PRINTABLE = st.characters(
    min_codepoint=0x20,
    max_codepoint=0x2FFFF,
    blacklist_categories=("Cc", "Cs", "Co", "Cn", "Zl", "Zp"),
)
KEY = st.text(alphabet=st.one_of(SPECIAL, PRINTABLE), min_size=1, max_size=16)


@dataclass
class Ids:
    asset: str
    nick: str
    legal: str
    src: str
    derived: str
    b_secret: str
    b_other: str

    @classmethod
    def fresh(cls) -> Ids:
        return cls(*(str(uuid.uuid4()) for _ in range(7)))


def records(tenant: str, tag: str, customer: str, other: str, ids: Ids) -> list[dict[str, Any]]:
    """The items both tenants share (same ids), plus tenant-only ones for tenant tag B."""

    def field(item_id: str, name: str, **extra: Any) -> dict[str, Any]:
        return {
            "tenant": tenant,
            "customer": customer,
            "id": item_id,
            "name": name,
            "value": f"{tag}:{name}",
            "collected_at": "2026-03-01T10:00:00Z",
        } | extra

    shared = [
        {
            "kind": "asset",
            "tenant": tenant,
            "customer": customer,
            "id": ids.asset,
            "name": "doc",
            "asset_type": "pdf",
            "source_item_id": f"sess-{tag}",
            "source_item_type": "session",
            "collected_at": "2026-03-01T09:00:00Z",
        },
        field(ids.nick, "nickname", source_item_id=ids.asset),
        field(ids.legal, "legal_name", expires_at=PAST),
        field(ids.src, "src"),
        field(ids.derived, "derived", source_item_id=ids.src),
    ]
    if tag == "A":
        return shared
    return shared + [
        field(ids.b_secret, "b_secret", source_item_id=ids.nick),
        field(ids.b_other, "b_other", customer=other, expires_at=PAST),
    ]


def reset(url: str) -> None:
    """Empty every table (a SQLite file is still unmigrated before the vault's first use)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        existing = set(inspect(conn).get_table_names())
        for table in TABLES:
            if table in existing:
                conn.execute(text(f"DELETE FROM {table}"))
    engine.dispose()


def load(
    vault: Vault,
    url: str,
    tmp_path: Path,
    tenants: dict[str, str],
    customer: str,
    other: str,
    ids: Ids,
) -> None:
    for tag, tenant in tenants.items():
        schema = tmp_path / f"schema-{tag}.yaml"
        schema.write_text(
            yaml.safe_dump(
                {"tenant": tenant, "agent": AGENT, "fields": [{"name": "nickname"}]},
                allow_unicode=True,
            ),
            encoding="utf-8",
        )
        vault.apply_schema([schema])
        path = tmp_path / f"records-{tag}.jsonl"
        path.write_text(
            "\n".join(json.dumps(r) for r in records(tenant, tag, customer, other, ids)) + "\n",
            encoding="utf-8",
        )
        result = vault.import_files([path], validation_mode=ValidationMode.DISABLED)
        assert (result.rejected, result.warnings) == (0, 0), result.errors
    # Tenant B loses the source of `derived` behind the vault's back; tenant A keeps its own.
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text("DELETE FROM fields WHERE tenant = :t AND id = :i"),
            {"t": tenants["B"], "i": ids.src},
        )
    engine.dispose()


def check_reads(vault: Vault, tenant: str, tag: str, customer: str, other: str, ids: Ids) -> None:
    """Every read of `tenant` returns exactly that tenant's items (tag A or B)."""
    is_b = tag == "B"
    profile = vault.get_profile(tenant, customer)
    expected_fields = {"nickname": ids.nick}
    expected_fields |= {"b_secret": ids.b_secret} if is_b else {"src": ids.src}
    expected_fields["derived"] = ids.derived
    assert {n: f.id for n, f in profile.fields.items()} == expected_fields
    assert all(f.tenant == tenant and f.value == f"{tag}:{n}" for n, f in profile.fields.items())
    assert [(a.id, a.tenant) for a in profile.assets] == [(ids.asset, tenant)]

    history = vault.history(tenant, customer)
    assert {v.id for v in history} == set(expected_fields.values()) | {ids.legal}
    assert all(v.tenant == tenant and v.value.startswith(f"{tag}:") for v in history)

    if is_b:
        assert vault.get_profile(tenant, other).fields == {}
    else:
        with pytest.raises(NotFoundError):
            vault.get_profile(tenant, other)
        with pytest.raises(NotFoundError):
            vault.trace(tenant, ids.b_secret)

    trace = vault.trace(tenant, ids.nick)
    assert [(i.id, i.kind) for i in trace.chain] == [
        (ids.asset, "asset"),
        (f"sess-{tag}", "external"),
    ]
    assert [n.item.id for n in trace.dependents] == ([ids.b_secret] if is_b else [])
    assert [n.item.id for n in vault.trace(tenant, ids.asset).dependents] == [ids.nick]
    source = vault.trace(tenant, ids.derived).chain[0]
    assert (source.id, source.kind) == ((ids.src, "missing") if is_b else (ids.src, "field"))

    expired = vault.expire([tenant])
    assert list(expired.tenants) == [tenant]
    found = {(i.id, i.customer, i.name) for i in expired.tenants[tenant].items}
    expected_expired = {(ids.legal, customer, "legal_name")}
    if is_b:
        expected_expired.add((ids.b_other, other, "b_other"))
    assert found == expected_expired

    orphans = vault.orphans([tenant])
    assert list(orphans.tenants) == [tenant]
    found = {(i.id, i.customer, i.name) for i in orphans.tenants[tenant].items}
    assert found == ({(ids.derived, customer, "derived")} if is_b else set())

    report = vault.validate_profile(tenant, customer, AGENT)
    assert {r.field for r in report.results} == set(expected_fields)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    tenants=st.lists(KEY, min_size=2, max_size=2, unique=True),
    customers=st.lists(KEY, min_size=2, max_size=2, unique=True),
)
@example(tenants=["a_", "ab"], customers=["c%", "c1"])
@example(tenants=["%", "x%"], customers=["_", "a"])
@example(tenants=["t", "t:1"], customers=["c 1", "c'1"])
@example(tenants=["a", "a "], customers=['"', "\\"])
@example(tenants=["Ünï", "ünï"], customers=["🙂", "日本"])
def test_no_read_of_one_tenant_returns_another_tenants_items(
    vault: Vault, database_url: str, tmp_path: Path, tenants: list[str], customers: list[str]
) -> None:
    reset(database_url)
    named = {"A": tenants[0], "B": tenants[1]}
    customer, other = customers
    ids = Ids.fresh()
    load(vault, database_url, tmp_path, named, customer, other, ids)
    for tag, tenant in named.items():
        check_reads(vault, tenant, tag, customer, other, ids)
