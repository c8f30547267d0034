"""`Vault.report` asks the database a fixed set of aggregate statements: as many for 300
customers in 3 tenants as for one customer (no per-customer or per-tenant loop), both dialects."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event

from ccv.domain.enums import ValidationMode
from ccv.vault import Vault

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _statements(vault: Vault, tenants: list[str]) -> tuple[list[str], Any]:
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    engines = {vault.db.engine, vault.db.read_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        report = vault.report(tenants, now=NOW)
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)
    return seen, report


def _customers(vault: Vault, tenant: str, count: int) -> None:
    for n in range(count):
        vault.save_field(
            tenant,
            f"c-{n}",
            "nickname",
            f"n{n}",
            collected_at=datetime(2026, 1, 1, tzinfo=UTC),
            validation_mode=ValidationMode.DISABLED,
        )


def test_the_statement_count_does_not_grow_with_customers_or_tenants(vault: Vault) -> None:
    _customers(vault, "t-0", 1)
    vault.report(["t-0"], now=NOW)  # the schema check and tenant lookup happen once
    small, one = _statements(vault, ["t-0"])
    assert one.tenants["t-0"].customers == 1
    for tenant in ("t-0", "t-1", "t-2"):
        _customers(vault, tenant, 100)
    large, many = _statements(vault, ["t-0", "t-1", "t-2"])
    assert {t: r.customers for t, r in many.tenants.items()} == {"t-0": 100, "t-1": 100, "t-2": 100}
    assert len(large) == len(small)
    assert all("GROUP BY" in statement or "count(" in statement.lower() for statement in large[1:])
