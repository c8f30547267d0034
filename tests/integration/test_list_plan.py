"""`profile list --where` is served by an index (SPEC §12): the plan of the statement ccv runs,
on PostgreSQL with a million field rows, reads no item table sequentially."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text

from ccv.config import Settings
from ccv.store.engine import make_engine
from ccv.store.migrate import upgrade
from ccv.vault import Vault

PG_ADMIN_URL = os.environ.get(
    "CCV_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
ROWS = 1_000_000


@pytest.fixture
def million(pg_url: str) -> Iterator[str]:
    """A database of its own holding 1M field rows (100,000 customers x 10 names)."""
    name = f"ccv_plan_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        engine = make_engine(url)
        upgrade(engine, "head")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO profiles (tenant, customer, created_at, updated_at)"
                    " SELECT 'acme', 'c-' || c, now(), now() FROM generate_series(0, :n) AS c"
                ),
                {"n": ROWS // 10},
            )
            conn.execute(
                text(
                    "INSERT INTO fields (tenant, id, customer, name, value, source, status,"
                    " confidence, requires_confirmation, verified, collected_at, updated_at,"
                    " content_hash)"
                    " SELECT 'acme', md5(i::text)::uuid::text, 'c-' || (i / 10), 'f' || (i % 10),"
                    " to_jsonb('v-' || i), 'imported', 'active', 1.0, false, false, now(), now(),"
                    " md5(i::text) FROM generate_series(1, :rows) AS i"
                ),
                {"rows": ROWS},
            )
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
        engine.dispose()
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_where_reads_the_value_index_not_the_table(million: str) -> None:
    with Vault(Settings(database_url=million)) as vault:
        seen: list[tuple[str, Any]] = []

        def capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
            if "FROM profiles" in statement and "fields.value" in statement:
                seen.append((statement, params))

        event.listen(vault.db.read_engine, "before_cursor_execute", capture)
        found = vault.list_customers("acme", where=[("f3", "v-123453")])
        assert [c.customer for c in found.customers] == ["c-12345"]
        assert found.customers[0].fields == 10
        (statement, params) = seen[-1]
        with vault.db.read_engine.connect() as conn:
            cursor = conn.connection.driver_connection.cursor()
            cursor.execute("EXPLAIN (FORMAT JSON) " + statement, params)
            plan = cursor.fetchone()[0]
    text_plan = json.dumps(plan)
    assert "ix_fields_value" in text_plan, text_plan
    nodes: list[dict[str, Any]] = []

    def walk(node: dict[str, Any]) -> None:
        nodes.append(node)
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    # The digest is looked up in the index, not filtered from all the rows of the name.
    lookups = [n for n in nodes if n.get("Index Name") == "ix_fields_value"]
    assert lookups and all("md5" in n.get("Index Cond", "") for n in lookups), lookups
    scanned = {(n["Node Type"], n.get("Relation Name")) for n in nodes}
    assert ("Seq Scan", "fields") not in scanned, scanned
    assert ("Seq Scan", "profiles") not in scanned, scanned
