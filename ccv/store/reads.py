"""The hot read: one customer's current view through the database driver itself.

Agents read a profile on every turn, so this path does the least Python per call: each thread
keeps one driver connection of its own (psycopg in autocommit, or sqlite3 outside any
transaction, as every other read runs), the statements are fixed SQL text (prepared by
PostgreSQL after a few runs; kept in sqlite3's statement cache), and rows come back as plain
dicts with decoded values, aware UTC times and the fields' PII flags, which
`ccv.service.convert` turns into models without validating again what the vault wrote.

The same three statements as `ccv.store.items.current_items` and
`ccv.store.identities.of_customer`, with the same predicates: active, and not expired at `now`.
A connection is made on first use per thread, dropped when the process has forked since, and
made again once when a statement fails with a connection error (a read can be retried).
Anything else the driver raises goes up as SQLAlchemy's DBAPIError, as from any other query.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeVar

import orjson
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from ccv.store import tables
from ccv.store.engine import server_options

R = TypeVar("R")

# Every column a version's model shows, in table order, as plain str (orjson takes no str
# subclass as a key): not the tenant (the caller's), the content hash or the validity flag
# (the vault's own bookkeeping).
_HIDDEN = frozenset(("tenant", "content_hash", "invalid"))
_FIELD_COLUMNS = tuple(str(c.name) for c in tables.fields.c if c.name not in _HIDDEN)
_ASSET_COLUMNS = tuple(str(c.name) for c in tables.assets.c if c.name not in _HIDDEN)
_IDENTITY_COLUMNS = (
    "tenant",
    "channel",
    "channel_user_id",
    "customer",
    "verified",
    "linked_at",
    "source",
)
FIELD_KEYS = (*_FIELD_COLUMNS, "is_pii")
ASSET_KEYS = _ASSET_COLUMNS
IDENTITY_KEYS = _IDENTITY_COLUMNS


def _statements(mark: str, true: str, any_of: str) -> tuple[str, str, str, str]:
    """(fields, assets, identities, derived field ids) in a driver's parameter style; `any_of`
    is the driver's "one of this list" predicate."""
    fields = (
        f"SELECT {', '.join('f.' + c for c in _FIELD_COLUMNS)},"
        " EXISTS (SELECT 1 FROM field_definitions d"
        f" WHERE d.tenant = {mark} AND d.name = f.name AND d.is_pii = {true})"
        f" FROM fields f WHERE f.tenant = {mark} AND f.customer = {mark} AND f.status = 'active'"
        f" AND (f.expires_at IS NULL OR f.expires_at > {mark}) ORDER BY f.name"
    )
    assets = (
        f"SELECT {', '.join(_ASSET_COLUMNS)} FROM assets"
        f" WHERE tenant = {mark} AND customer = {mark} AND status = 'active'"
        f" AND (expires_at IS NULL OR expires_at > {mark}) ORDER BY name"
    )
    # Sorted by the caller, and the index named on SQLite: see ccv.store.identities.
    indexed = " INDEXED BY ix_identities_customer" if mark == "?" else ""
    identities = (
        f"SELECT {', '.join(_IDENTITY_COLUMNS)} FROM identities{indexed}"
        f" WHERE tenant = {mark} AND customer = {mark}"
    )
    derived = (
        f"SELECT source_item_id, id FROM fields WHERE tenant = {mark}"
        f" AND source_item_id {any_of} AND (source_item_type IS NULL"
        " OR source_item_type IN ('profile_field', 'profile_asset')) ORDER BY collected_at, id"
    )
    return fields, assets, identities, derived


_IDENTITY = (
    f"SELECT {', '.join(_IDENTITY_COLUMNS)} FROM identities"
    " WHERE tenant = {mark} AND channel = {mark} AND channel_user_id = {mark}"
)
_IDENTITY_PG = _IDENTITY.replace("{mark}", "%s")
_IDENTITY_SQLITE = _IDENTITY.replace("{mark}", "?")

_PG = _statements("%s", "true", "= ANY(%s)")
# On PostgreSQL each live asset brings its derived fields' ids along, so a customer without
# assets (most) costs no lookup of them, and the read stays one round trip.
_PG_ASSETS = _PG[1].replace(
    " FROM assets WHERE",
    ", ARRAY(SELECT f.id FROM fields f WHERE f.tenant = %s"
    " AND f.source_item_id = assets.id AND (f.source_item_type IS NULL"
    " OR f.source_item_type IN ('profile_field', 'profile_asset'))"
    " ORDER BY f.collected_at, f.id) FROM assets WHERE",
)
_SQLITE = _statements("?", "1", "IN (SELECT value FROM json_each(?))")


def _by_channel(row: tuple[Any, ...]) -> tuple[Any, Any]:
    return row[1], row[2]  # (channel, channel_user_id) of an identity row


def _sqlite_time(text: str | None) -> datetime | None:
    """SQLite keeps UTC times as naive ISO text."""
    return None if text is None else datetime.fromisoformat(text).replace(tzinfo=UTC)


_TIME_KEYS = ("collected_at", "updated_at", "expires_at", "superseded_at")


def _pg_time(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is UTC:
        return value
    return value.astimezone(UTC)


def _sqlite_now(now: datetime) -> str:
    return now.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


class CurrentRows:
    """A customer's current view as rows: fields (with `is_pii`), assets, identities, and the
    ids of the fields derived from each asset."""

    __slots__ = ("analysis", "assets", "fields", "identities")

    def __init__(
        self,
        fields: list[dict[str, Any]],
        assets: list[dict[str, Any]],
        identities: list[dict[str, Any]],
        analysis: dict[str, list[str]],
    ) -> None:
        self.fields = fields
        self.assets = assets
        self.identities = identities
        self.analysis = analysis


class _Local(threading.local):
    conn: Any = None
    pid: int = 0


class FastReads:
    """Per `Database`: the driver connections of the hot read, one per thread."""

    def __init__(self, url: str, busy_timeout: float) -> None:
        parsed = make_url(url)
        self.sqlite = parsed.get_backend_name() == "sqlite"
        self._database = parsed.database or ""
        self._url = parsed
        self._busy_timeout = busy_timeout
        self._local = _Local()
        self._lock = threading.Lock()
        self._open: list[Any] = []

    @property
    def usable(self) -> bool:
        """An in-memory SQLite database is one per connection: it has no second connection."""
        return not self.sqlite or self._database not in ("", ":memory:")

    def _connect(self) -> Any:
        conn: Any
        if self.sqlite:
            conn = sqlite3.connect(
                self._database,
                timeout=self._busy_timeout,
                isolation_level=None,
                check_same_thread=False,
                cached_statements=32,
            )
            conn.execute("PRAGMA query_only = 1")
        else:
            import psycopg
            from psycopg.types.json import set_json_loads

            url = self._url.set(drivername="postgresql").render_as_string(hide_password=False)
            conn = psycopg.connect(
                url,
                autocommit=True,
                connect_timeout=5,
                application_name="ccv",
                options=server_options("-c jit=off -c timezone=UTC"),
            )
            set_json_loads(orjson.loads, conn)
        with self._lock:
            self._open.append(conn)
        return conn

    def _connection(self) -> Any:
        local = self._local
        pid = os.getpid()
        if local.conn is None or local.pid != pid:
            local.conn = None  # a forked child never touches its parent's connection
            local.conn = self._connect()
            local.pid = pid
        return local.conn

    def _drop(self) -> None:
        conn, self._local.conn = self._local.conn, None
        if conn is not None:
            with self._lock:
                if conn in self._open:
                    self._open.remove(conn)
            with contextlib.suppress(Exception):  # a broken connection may fail to close
                conn.close()

    def _run(self, work: Callable[[Any], R]) -> R:
        for attempt in (1, 2):
            try:
                return work(self._connection())
            except Exception as exc:
                retry = self._is_connection_error(exc) and attempt == 1
                if self._is_driver_error(exc):
                    self._drop()
                    if retry:
                        continue
                    raise DBAPIError("current view", None, exc) from exc
                raise
        raise AssertionError("unreachable")

    def _is_driver_error(self, exc: BaseException) -> bool:
        if self.sqlite:
            return isinstance(exc, sqlite3.Error)
        import psycopg

        return isinstance(exc, psycopg.Error)

    def _is_connection_error(self, exc: BaseException) -> bool:
        if self.sqlite:
            return False
        import psycopg

        return isinstance(exc, psycopg.OperationalError)

    def lineage(
        self, tenant: str, item_id: str, now: datetime
    ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """`ccv.store.lineage.chain` and `dependents` of `item_id` (a canonical id), as rows
        of plain tuples in the same column order; one pipeline on PostgreSQL."""
        if self.sqlite:
            return self._run(lambda conn: _sqlite_lineage(conn, tenant, item_id, now))
        return self._run(lambda conn: _pg_lineage(conn, tenant, item_id, now))

    def identity(self, tenant: str, channel: str, channel_user_id: str) -> tuple[Any, ...] | None:
        """The stored identity (columns of `ccv.store.identities.IdentityRow`), or None."""
        sql = _IDENTITY_SQLITE if self.sqlite else _IDENTITY_PG
        decode = _sqlite_time if self.sqlite else _pg_time

        def get(conn: Any) -> tuple[Any, ...] | None:
            row = conn.execute(sql, (tenant, channel, channel_user_id)).fetchone()
            if row is None:
                return None
            tenant_, channel_, user_id, customer, verified, linked_at, source = row
            return (tenant_, channel_, user_id, customer, bool(verified), decode(linked_at), source)

        return self._run(get)

    def gap_rows(
        self, tenant: str, scenario: str, customer: str, names: Sequence[str] | None
    ) -> list[GapRow]:
        """`ccv.store.requirements.gap_rows`: the same rows, values decoded."""
        if self.sqlite:
            return self._run(lambda conn: _sqlite_gaps(conn, tenant, scenario, customer, names))
        return self._run(lambda conn: _pg_gaps(conn, tenant, scenario, customer, names))

    def current(self, tenant: str, customer: str, now: datetime) -> CurrentRows:
        if self.sqlite:
            return self._run(lambda conn: _sqlite_current(conn, tenant, customer, now))
        return self._run(lambda conn: _pg_current(conn, tenant, customer, now))

    def close(self) -> None:
        with self._lock:
            opened, self._open = self._open, []
        for conn in opened:
            with contextlib.suppress(Exception):  # closing what is closed already
                conn.close()
        self._local = _Local()


def _derived(cursor: Any, sql: str, tenant: str, ids: Any) -> dict[str, list[str]]:
    analysis: dict[str, list[str]] = {}
    for source, item in cursor.execute(sql, (tenant, ids)).fetchall():
        analysis.setdefault(source, []).append(item)
    return analysis


@functools.cache
def _pipelines() -> bool:
    """Pipeline mode needs libpq 14 or later (psycopg's binary wheel has it)."""
    import psycopg

    return bool(psycopg.Pipeline.is_supported())


def _pg_current(conn: Any, tenant: str, customer: str, now: datetime) -> CurrentRows:
    """The three statements in one pipeline: one round trip to the server, not three."""
    fields_sql, _, identities_sql, _ = _PG
    # Each subquery names its tenant (the first parameter): on Citus a correlated subquery
    # without one is planned over every shard.
    live = (tenant, tenant, customer, now)
    with conn.pipeline() if _pipelines() else contextlib.nullcontext():
        cursors = [conn.cursor() for _ in range(3)]
        cursors[0].execute(fields_sql, live)
        cursors[1].execute(_PG_ASSETS, live)
        cursors[2].execute(identities_sql, (tenant, customer))
    field_rows, asset_rows, identity_rows = (c.fetchall() for c in cursors)
    for cursor in cursors:
        cursor.close()
    fields = []
    for row in field_rows:
        data = dict(zip(FIELD_KEYS, row, strict=True))
        for key in _TIME_KEYS:
            data[key] = _pg_time(data[key])
        fields.append(data)
    assets = []
    analysis: dict[str, list[str]] = {}
    for *columns, derived in asset_rows:
        data = dict(zip(ASSET_KEYS, columns, strict=True))
        for key in _TIME_KEYS:
            data[key] = _pg_time(data[key])
        assets.append(data)
        if derived:
            analysis[data["id"]] = list(derived)
    identities = []
    for row in sorted(identity_rows, key=_by_channel):
        data = dict(zip(IDENTITY_KEYS, row, strict=True))
        data["linked_at"] = _pg_time(data["linked_at"])
        identities.append(data)
    return CurrentRows(fields, assets, identities, analysis)


def _sqlite_current(conn: Any, tenant: str, customer: str, now: datetime) -> CurrentRows:
    fields_sql, assets_sql, identities_sql, derived_sql = _SQLITE
    at = _sqlite_now(now)
    loads = orjson.loads
    time = _sqlite_time
    fields = []
    for row in conn.execute(fields_sql, (tenant, tenant, customer, at)).fetchall():
        data = dict(zip(FIELD_KEYS, row, strict=True))
        value = data["value"]
        if value.__class__ is str:  # JSON text; SQLite keeps a bare number as a number
            data["value"] = loads(value)
        metadata = data["source_metadata"]
        data["source_metadata"] = loads(metadata) if metadata else {}
        data["requires_confirmation"] = bool(data["requires_confirmation"])
        data["verified"] = bool(data["verified"])
        data["is_pii"] = bool(data["is_pii"])
        data["collected_at"] = time(data["collected_at"])
        data["updated_at"] = time(data["updated_at"])
        if data["expires_at"] is not None:
            data["expires_at"] = time(data["expires_at"])
        if data["superseded_at"] is not None:
            data["superseded_at"] = time(data["superseded_at"])
        fields.append(data)
    assets = []
    for row in conn.execute(assets_sql, (tenant, customer, at)).fetchall():
        data = dict(zip(ASSET_KEYS, row, strict=True))
        data["verified"] = bool(data["verified"])
        for key in ("collected_at", "updated_at", "expires_at", "superseded_at"):
            data[key] = time(data[key])
        assets.append(data)
    identities = []
    for row in sorted(conn.execute(identities_sql, (tenant, customer)).fetchall(), key=_by_channel):
        data = dict(zip(IDENTITY_KEYS, row, strict=True))
        data["verified"] = bool(data["verified"])
        data["linked_at"] = time(data["linked_at"])
        identities.append(data)
    analysis = (
        _derived(conn, derived_sql, tenant, orjson.dumps([a["id"] for a in assets]).decode())
        if assets
        else {}
    )
    return CurrentRows(fields, assets, identities, analysis)


def _lineage_sql(statement: Any, pg: bool) -> str:
    """A lineage statement's text in the driver's named style (sqlite3 takes `:name`)."""
    sql = str(statement.text)
    if pg:
        for name in ("tenant", "item_id", "max_depth", "now"):
            sql = sql.replace(f":{name}", f"%({name})s")
    return sql


@functools.cache
def _lineage_statements(pg: bool) -> tuple[str, str]:
    from ccv.store import lineage

    chain = lineage.chain_statement("postgresql" if pg else "sqlite")
    return _lineage_sql(chain, pg), _lineage_sql(lineage._DEPENDENTS, pg)


def _lineage_params(tenant: str, item_id: str, now: Any) -> dict[str, Any]:
    from ccv.domain.lifecycle import MAX_LINEAGE_DEPTH

    return {"tenant": tenant, "item_id": item_id, "max_depth": MAX_LINEAGE_DEPTH, "now": now}


def _pg_lineage(
    conn: Any, tenant: str, item_id: str, now: datetime
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    chain_sql, dependents_sql = _lineage_statements(True)
    params = _lineage_params(tenant, item_id, now)
    with conn.pipeline() if _pipelines() else contextlib.nullcontext():
        up, down = conn.cursor(), conn.cursor()
        up.execute(chain_sql, params)
        down.execute(dependents_sql, params)
    try:
        return up.fetchall(), down.fetchall()
    finally:
        up.close()
        down.close()


def _sqlite_lineage(
    conn: Any, tenant: str, item_id: str, now: datetime
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    chain_sql, dependents_sql = _lineage_statements(False)
    params = _lineage_params(tenant, item_id, _sqlite_now(now))
    return (
        conn.execute(chain_sql, params).fetchall(),
        conn.execute(dependents_sql, params).fetchall(),
    )


class GapRow(NamedTuple):
    """A row of the gaps statement (`ccv.store.requirements._gap_statement`), in its order."""

    agent: str
    content_hash: str | None
    updated_at: datetime | None
    defs_updated: datetime | None
    defs_count: int
    name: str | None
    value: Any
    status: str | None
    verified: bool | None
    expires_at: datetime | None
    collected_at: datetime | None


def _gap_sql(mark: str, names: str | None) -> str:
    """The gaps statement in a driver's named style (`mark` formats a parameter's name);
    `names` the predicate narrowing the versions to the scenario's names, if any."""
    tenant, customer, scenario = mark % "tenant", mark % "customer", mark % "scenario"
    narrow = f" AND f.name {names}" if names else ""
    return (
        "SELECT s.agent, s.content_hash, s.updated_at,"
        f" (SELECT max(d.updated_at) FROM field_definitions d WHERE d.tenant = {tenant}),"
        f" (SELECT count(*) FROM field_definitions d WHERE d.tenant = {tenant}),"
        " f.name, f.value, f.status, f.verified, f.expires_at, f.collected_at"
        " FROM scenarios s LEFT OUTER JOIN fields f"
        f" ON f.tenant = {tenant} AND f.customer = {customer}"
        f" AND f.status IN ('active', 'expired', 'orphaned'){narrow}"
        f" WHERE s.tenant = {tenant} AND s.scenario = {scenario}"
    )


_PG_GAPS = (_gap_sql("%%(%s)s", None), _gap_sql("%%(%s)s", "= ANY(%(names)s)"))
_SQLITE_GAPS = (_gap_sql(":%s", None), _gap_sql(":%s", "IN (SELECT value FROM json_each(:names))"))


def _gap_params(tenant: str, scenario: str, customer: str, names: Any) -> dict[str, Any]:
    return {"tenant": tenant, "scenario": scenario, "customer": customer, "names": names}


def _pg_gaps(
    conn: Any, tenant: str, scenario: str, customer: str, names: Sequence[str] | None
) -> list[GapRow]:
    sql = _PG_GAPS[names is not None]
    given = None if names is None else list(names)
    rows = conn.execute(sql, _gap_params(tenant, scenario, customer, given)).fetchall()
    return [_gap_row(row, _pg_time, _as_is, _as_is) for row in rows]


def _sqlite_gaps(
    conn: Any, tenant: str, scenario: str, customer: str, names: Sequence[str] | None
) -> list[GapRow]:
    sql = _SQLITE_GAPS[names is not None]
    given = None if names is None else orjson.dumps(list(names)).decode()
    rows = conn.execute(sql, _gap_params(tenant, scenario, customer, given)).fetchall()
    return [_gap_row(row, _sqlite_time, _sqlite_json, _sqlite_bool) for row in rows]


def _as_is(value: Any) -> Any:
    return value


def _sqlite_json(value: Any) -> Any:
    return orjson.loads(value) if value.__class__ is str else value  # a bare number stays one


def _sqlite_bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _gap_row(
    row: Sequence[Any],
    time: Callable[[Any], datetime | None],
    json: Callable[[Any], Any],
    boolean: Callable[[Any], Any],
) -> GapRow:
    agent, content_hash, updated_at, defs_updated, defs_count, name, value = row[:7]
    status, verified, expires_at, collected_at = row[7:]
    return GapRow(
        agent,
        content_hash,
        time(updated_at),
        time(defs_updated),
        defs_count,
        name,
        json(value),
        status,
        boolean(verified),
        time(expires_at),
        time(collected_at),
    )
