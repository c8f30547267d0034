"""`ccv report`: what a tenant's vault holds, counted by the database (SPEC §11).

Every figure is one aggregate query over all the reported tenants at once (`GROUP BY tenant`),
answered from indexes: statuses, overdue and expiring values from `(tenant, status,
expires_at)`, invalid values from the partial index of stamped values (`fields.invalid`, see
`ccv.service.validity`), lineage depth by a recursive walk that starts only at derived values.
Nothing loops over customers in Python, so the cost grows with tenants and statuses.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, TextClause, bindparam, text

from ccv.domain.enums import Status
from ccv.domain.lifecycle import MAX_LINEAGE_DEPTH
from ccv.domain.models import LineageDepths, Report, TenantReport
from ccv.domain.timeutil import utcnow
from ccv.service.jobs import resolve_tenants
from ccv.store import citus
from ccv.store.database import Database
from ccv.store.tables import UTCDateTime

# The walk stops where `ccv profile trace` stops: a longer chain is a cycle written behind the
# vault's back.
MAX_DEPTH = MAX_LINEAGE_DEPTH
_VAULT_TYPES = "('profile_field', 'profile_asset')"

_CUSTOMERS = "SELECT tenant, count(*) FROM profiles {where} GROUP BY tenant"
# Merged customers keep their profile row as an alias: not a customer of their own.
_ALIASES = """
SELECT tenant, count(*) FROM profiles WHERE merged_into IS NOT NULL {and_tenant} GROUP BY tenant
"""
_IDENTITIES = "SELECT tenant, count(*) FROM identities {where} GROUP BY tenant"
_STATUSES = "SELECT tenant, status, count(*) FROM {table} {where} GROUP BY tenant, status"
_EXPIRY = """
SELECT tenant,
       sum(CASE WHEN expires_at <= :now THEN 1 ELSE 0 END),
       sum(CASE WHEN expires_at > :now AND expires_at <= :day THEN 1 ELSE 0 END),
       sum(CASE WHEN expires_at > :now THEN 1 ELSE 0 END)
FROM {table}
WHERE status = 'active' AND expires_at <= :week {and_tenant}
GROUP BY tenant
"""
_CONFIRM = """
SELECT tenant, count(*) FROM fields
WHERE status = 'active' AND requires_confirmation {and_tenant} GROUP BY tenant
"""
_INVALID = """
SELECT tenant, name, count(*) FROM fields
WHERE status = 'active' AND invalid {and_tenant} GROUP BY tenant, name
"""
# Depth of a value: how many vault items lie above it up to its root (0: a root). The walk
# starts at the active values with a vault source and climbs one source per step.
_LINEAGE = f"""
WITH RECURSIVE walk (tenant, id, source, depth) AS (
    SELECT tenant, id, source_item_id, 1 FROM fields
    WHERE status = 'active' AND source_item_type IN {_VAULT_TYPES} {{and_tenant}}
    UNION ALL
    SELECT tenant, id, source_item_id, 1 FROM assets
    WHERE status = 'active' AND source_item_type IN {_VAULT_TYPES} {{and_tenant}}
    UNION ALL
    SELECT walk.tenant, walk.id, up.source_item_id, walk.depth + 1
    FROM walk JOIN (
        SELECT tenant, id, source_item_id FROM fields
        WHERE source_item_type IN {_VAULT_TYPES} {{and_tenant}}
        UNION ALL
        SELECT tenant, id, source_item_id FROM assets
        WHERE source_item_type IN {_VAULT_TYPES} {{and_tenant}}
    ) AS up ON up.tenant = walk.tenant AND up.id = walk.source
    WHERE walk.depth < {MAX_DEPTH}
)
SELECT tenant, depth, count(*) FROM (
    SELECT tenant, id, max(depth) AS depth FROM walk GROUP BY tenant, id
) AS deepest
GROUP BY tenant, depth
"""


def _statement(sql: str, tenants: Sequence[str] | None, **formats: str) -> TextClause:
    where = "WHERE tenant IN :tenants" if tenants is not None else ""
    and_tenant = "AND tenant IN :tenants" if tenants is not None else ""
    statement = text(sql.format(where=where, and_tenant=and_tenant, **formats))
    if tenants is not None:
        statement = statement.bindparams(bindparam("tenants", expanding=True))
    for name in ("now", "day", "week"):
        if f":{name}" in sql:
            statement = statement.bindparams(bindparam(name, type_=UTCDateTime()))
    return statement


def queries(tenants: Sequence[str] | None) -> dict[str, TextClause]:
    """The report's statements (None: every tenant), by what they count."""
    return {
        "customers": _statement(_CUSTOMERS, tenants),
        "aliases": _statement(_ALIASES, tenants),
        "identities": _statement(_IDENTITIES, tenants),
        "fields": _statement(_STATUSES, tenants, table="fields"),
        "assets": _statement(_STATUSES, tenants, table="assets"),
        "field_expiry": _statement(_EXPIRY, tenants, table="fields"),
        "asset_expiry": _statement(_EXPIRY, tenants, table="assets"),
        "requires_confirmation": _statement(_CONFIRM, tenants),
        "invalid": _statement(_INVALID, tenants),
        "lineage": _statement(_LINEAGE, tenants),
    }


def run_queries(
    conn: Connection, tenants: Sequence[str] | None, now: datetime
) -> dict[str, list[Any]]:
    """Every statement's rows (the benchmark times this against the same SQL, raw)."""
    params: dict[str, Any] = {"now": now, "day": now + timedelta(days=1)}
    params["week"] = now + timedelta(days=7)
    if tenants is not None:
        params["tenants"] = list(tenants)
    statements = queries(tenants)
    if not citus.enabled(conn) or (tenants is not None and len(tenants) == 1):
        return {name: list(conn.execute(sql, params)) for name, sql in statements.items()}
    # Citus runs a recursive CTE only as a router query, on one tenant's shard group: the
    # lineage walk goes tenant by tenant, over the tenants that hold items.
    del statements["lineage"]
    rows = {name: list(conn.execute(sql, params)) for name, sql in statements.items()}
    holding = sorted({row[0] for kind in ("fields", "assets") for row in rows[kind]})
    walk = _statement(_LINEAGE, holding)
    rows["lineage"] = [
        row for name in holding for row in conn.execute(walk, {**params, "tenants": [name]})
    ]
    return rows


def report(
    db: Database,
    tenants: Sequence[str] | None = None,
    *,
    all_tenants: bool = False,
    now: datetime | None = None,
) -> Report:
    """Counts per tenant at `now` (default: the current time)."""
    now = now or utcnow()
    names = resolve_tenants(db, tenants, all_tenants)
    with db.read() as conn:
        rows = run_queries(conn, None if all_tenants else names, now)
    return build(names, rows, now)


def build(names: Sequence[str], rows: dict[str, list[Any]], now: datetime) -> Report:
    statuses = [status.value for status in Status]
    reports = {
        name: TenantReport(
            fields=dict.fromkeys(statuses, 0),
            assets=dict.fromkeys(statuses, 0),
        )
        for name in names
    }

    def tenant(name: str) -> TenantReport:
        # --all-tenants: a tenant that holds items but no profile row still reports.
        if name not in reports:
            reports[name] = TenantReport(
                fields=dict.fromkeys(statuses, 0), assets=dict.fromkeys(statuses, 0)
            )
        return reports[name]

    for name, count in rows["customers"]:
        tenant(name).customers = int(count)
    for name, count in rows["aliases"]:
        tenant(name).customers -= int(count)
    for name, count in rows["identities"]:
        tenant(name).identities = int(count)
    for kind in ("fields", "assets"):
        for name, status, count in rows[kind]:
            getattr(tenant(name), kind)[status] = int(count)
    for kind in ("field_expiry", "asset_expiry"):
        for name, overdue, day, week in rows[kind]:
            found = tenant(name)
            found.overdue += int(overdue or 0)
            found.expiring["1d"] += int(day or 0)
            found.expiring["7d"] += int(week or 0)
    for name, count in rows["requires_confirmation"]:
        tenant(name).requires_confirmation = int(count)
    for name, field, count in rows["invalid"]:
        tenant(name).invalid[field] = int(count)
    derived: dict[str, dict[int, int]] = defaultdict(dict)
    for name, depth, count in rows["lineage"]:
        derived[name][int(depth)] = int(count)
    for name, found in reports.items():
        depths = derived.get(name, {})
        active = found.fields.get("active", 0) + found.assets.get("active", 0)
        histogram = {0: active - sum(depths.values()), **depths}
        found.lineage = LineageDepths(
            max_depth=max((d for d, n in histogram.items() if n), default=0),
            histogram={str(d): n for d, n in sorted(histogram.items())},
        )
        found.invalid = dict(sorted(found.invalid.items()))
    return Report(now=now, tenants=dict(sorted(reports.items())))
