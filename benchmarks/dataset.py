"""The benchmark dataset: generated deterministically, bulk-loaded straight into ccv's tables.

Per profile (customer `c00000042` of tenant `bench`): 10 active fields (one per name of the
benchmark schema), of which ~10% also have an older `superseded` version, ~1% have `expires_at`
in the past (work for the expiry sweep; reads must already hide them) and ~20% expire in the
future. ~10% of profiles have an `id_card_front` asset from which their `first_name` is derived
(lineage). Separately, `CHAINS` lineage chains of depth `CHAIN_DEPTH` (fields derived from fields,
rooted in an external session) serve the trace metric.

Rows are written in the exact formats ccv's store uses (ccv/store/tables.py, and the rows that
ccv/service/importing.py builds): lowercase UUID ids, statuses `active`/`superseded`, sha256 hex
content hashes, JSON values, UTC timestamps. Everything is a pure function of the customer
index, so a dataset can grow from N to M profiles by loading indexes N..M-1.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.backend import Backend

TENANT = "bench"
AGENT = "bench-agent"
# Bump when the generated data changes shape: a reused database of another format is rebuilt.
FORMAT_VERSION = 1
HISTORY_PERCENT = 10  # fields with one older, superseded version
PAST_EXPIRY_PER_MILLE = 10  # active fields already past expires_at (the sweep's work)
FUTURE_EXPIRY_PER_MILLE = 200  # active fields that expire later
ASSET_PERCENT = 10  # profiles with an id card asset (and a first_name derived from it)
CHAINS = 10
CHAIN_DEPTH = 100
_MASK = (1 << 64) - 1

FIRST_NAMES = ("Ana", "Ben", "Chloe", "Dario", "Elif", "Femi", "Greta", "Hiro", "Ines", "Jonas")
LAST_NAMES = ("Lima", "Novak", "Okafor", "Schmidt", "Tanaka", "Varga", "Weiss", "Yilmaz")
TIERS = ("free", "pro", "enterprise")
COUNTRIES = ("DE", "FR", "PT", "BR", "NG", "JP", "US", "TR")
LANGS = ("en", "de", "pt", "fr")
CHANNELS = ("email", "sms", "phone")


@dataclass(frozen=True)
class FieldSpec:
    name: str
    value_type: str
    options: dict[str, Any] = field(default_factory=dict)


# The benchmark schema: one definition per field name, covering every common value type.
FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("email", "email", {"is_pii": True}),
    FieldSpec("phone", "phone", {"is_pii": True}),
    FieldSpec("first_name", "string", {"is_pii": True}),
    FieldSpec("last_name", "string", {"is_pii": True}),
    FieldSpec("date_of_birth", "date", {"is_pii": True}),
    FieldSpec("account_tier", "enum", {"allowed_values": list(TIERS)}),
    FieldSpec("country", "string", {"validation_regex": "[A-Z]{2}"}),
    FieldSpec("loyalty_points", "integer"),
    FieldSpec("marketing_opt_in", "boolean"),
    FieldSpec("preferences", "json", {"retention_days": 730}),
)
FIRST_NAME = 2

FIELD_COLUMNS = (
    "tenant",
    "id",
    "customer",
    "name",
    "value",
    "value_type",
    "source",
    "source_item_id",
    "source_item_type",
    "source_metadata",
    "status",
    "superseded_by_id",
    "superseded_at",
    "confidence",
    "requires_confirmation",
    "verified",
    "verification_method",
    "collected_at",
    "updated_at",
    "expires_at",
    "field_definition_id",
    "content_hash",
)
ASSET_COLUMNS = (
    "tenant",
    "id",
    "customer",
    "name",
    "asset_type",
    "storage_uri",
    "mime_type",
    "size_bytes",
    "checksum",
    "source_item_id",
    "source_item_type",
    "derived_from_tool",
    "status",
    "superseded_by_id",
    "superseded_at",
    "verified",
    "collected_at",
    "updated_at",
    "expires_at",
    "content_hash",
)
PROFILE_COLUMNS = ("tenant", "customer", "created_at", "updated_at")
ITEM_TABLES = ("fields", "assets", "profiles")


def schema_yaml(tenant: str = TENANT, agent: str = AGENT) -> str:
    """The benchmark schema as a ccv schema file (SPEC §3)."""
    lines = [f"tenant: {json.dumps(tenant)}", f"agent: {agent}", "fields:"]
    for spec in FIELDS:
        lines.append(f"  - name: {spec.name}")
        lines.append(f"    value_type: {spec.value_type}")
        lines.append(f"    collection_prompt: {json.dumps('What is your ' + spec.name + '?')}")
        for key, value in spec.options.items():
            lines.append(f"    {key}: {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def mix(n: int) -> int:
    """A cheap 64-bit hash (splitmix64 finaliser): the dataset's only source of randomness."""
    x = (n + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def item_id(tag: int, n: int) -> str:
    """A lowercase UUID string, unique per (tag, n), spread over the key space like uuid4."""
    text = f"{mix(tag * 0x10000000000 + n):016x}{(tag << 48) | n:016x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def customer_id(index: int) -> str:
    return f"c{index:08d}"


def field_id(customer: int, field_index: int, version: int) -> str:
    return item_id(1, (customer * 16 + field_index) * 2 + version)


def asset_id(customer: int) -> str:
    return item_id(2, customer)


def chain_id(chain: int, depth: int) -> str:
    return item_id(3, chain * 1000 + depth)


def has_asset(customer: int) -> bool:
    return mix(customer * 7 + 3) % 100 < ASSET_PERCENT


def value_json(field_index: int, customer: int, h: int) -> str:
    """The JSON text of a valid value for field `field_index` (no tabs, newlines or backslashes)."""
    if field_index == 0:
        return f'"user{customer}.{h % 97}@example.com"'
    if field_index == 1:
        return f'"+4915{h % 100000000:08d}"'
    if field_index == 2:
        return f'"{FIRST_NAMES[h % len(FIRST_NAMES)]}"'
    if field_index == 3:
        return f'"{LAST_NAMES[h % len(LAST_NAMES)]}"'
    if field_index == 4:
        return f'"{1940 + h % 60}-{1 + h % 12:02d}-{1 + (h >> 8) % 28:02d}"'
    if field_index == 5:
        return f'"{TIERS[h % len(TIERS)]}"'
    if field_index == 6:
        return f'"{COUNTRIES[h % len(COUNTRIES)]}"'
    if field_index == 7:
        return str(h % 100000)
    if field_index == 8:
        return "true" if h & 1 else "false"
    return (
        f'{{"channel": "{CHANNELS[h % len(CHANNELS)]}", '
        f'"lang": "{LANGS[(h >> 4) % len(LANGS)]}", "newsletter": {"true" if h & 2 else "false"}}}'
    )


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Generator:
    """Rows of the dataset as tuples of text, in the backend's text formats.

    NULL is `backend.null` (COPY's `\\N` on PostgreSQL, so rows join without a per-value test).
    """

    def __init__(self, backend: Backend, base_time: datetime, definition_ids: dict[str, str]):
        self.backend = backend
        self.base_time = base_time
        self.definition_ids = definition_ids
        self.true = backend.true
        self.false = backend.false
        self.null = backend.null
        self._times: dict[int, str] = {}

    def at(self, hours: int) -> str:
        """base_time + hours, as stored text (cached: offsets are whole hours)."""
        text = self._times.get(hours)
        if text is None:
            text = self.backend.ts_text(self.base_time + timedelta(hours=hours))
            self._times[hours] = text
        return text

    def field_rows(self, start: int, stop: int) -> Iterator[tuple[str | None, ...]]:
        null = self.null
        true, false, at = self.true, self.false, self.at
        for customer in range(start, stop):
            name_of = customer_id(customer)
            with_asset = has_asset(customer)
            for index, spec in enumerate(FIELDS):
                h = mix(customer * 16 + index)
                new_id = field_id(customer, index, 0)
                back = 1 + (h >> 20) % 8760
                expiry = (h >> 8) % 1000
                if expiry < PAST_EXPIRY_PER_MILLE:
                    expires: str | None = at(-(1 + (h >> 30) % back))
                elif expiry < PAST_EXPIRY_PER_MILLE + FUTURE_EXPIRY_PER_MILLE:
                    expires = at(720 + (h >> 30) % 8760)
                else:
                    expires = null
                source, source_id, source_type, confidence = "user_provided", null, null, "1"
                if index == FIRST_NAME and with_asset:
                    source, source_id, source_type, confidence = (
                        "document_extracted",
                        asset_id(customer),
                        "profile_asset",
                        "0.93",
                    )
                collected = at(-back)
                definition = self.definition_ids.get(spec.name, null)
                if h % 100 < HISTORY_PERCENT:
                    old_id = field_id(customer, index, 1)
                    yield (
                        TENANT,
                        old_id,
                        name_of,
                        spec.name,
                        value_json(index, customer, h >> 3),
                        spec.value_type,
                        "imported",
                        null,
                        null,
                        "{}",
                        "superseded",
                        new_id,
                        collected,
                        "1",
                        false,
                        false,
                        null,
                        at(-(back + 720 + (h >> 40) % 720)),
                        collected,
                        null,
                        definition,
                        content_hash(old_id),
                    )
                yield (
                    TENANT,
                    new_id,
                    name_of,
                    spec.name,
                    value_json(index, customer, h),
                    spec.value_type,
                    source,
                    source_id,
                    source_type,
                    "{}",
                    "active",
                    null,
                    null,
                    confidence,
                    false,
                    true if h & 4 else false,
                    null,
                    collected,
                    collected,
                    expires,
                    definition,
                    content_hash(new_id),
                )

    def asset_rows(self, start: int, stop: int) -> Iterator[tuple[str | None, ...]]:
        null = self.null
        for customer in range(start, stop):
            if not has_asset(customer):
                continue
            new_id = asset_id(customer)
            name_of = customer_id(customer)
            collected = self.at(-(9000 + mix(customer) % 100))
            yield (
                TENANT,
                new_id,
                name_of,
                "id_card_front",
                "image",
                f"s3://bench-kyc/{name_of}/front.jpg",
                "image/jpeg",
                str(100000 + mix(customer) % 100000),
                content_hash(f"file:{new_id}"),
                null,
                null,
                null,
                "active",
                null,
                null,
                self.false,
                collected,
                collected,
                null,
                content_hash(new_id),
            )

    def profile_rows(self, start: int, stop: int) -> Iterator[tuple[str | None, ...]]:
        created = self.at(-9100)
        for customer in range(start, stop):
            yield (TENANT, customer_id(customer), created, self.at(-1))

    def chain_rows(self) -> Iterator[tuple[str | None, ...]]:
        """CHAINS chains: step d is derived from step d-1; step 0 from an external session."""
        null = self.null
        for chain in range(CHAINS):
            customer = f"chain-{chain:03d}"
            for depth in range(CHAIN_DEPTH + 1):
                new_id = chain_id(chain, depth)
                if depth == 0:
                    source, source_id, source_type = "tool_result", f"session-{chain}", "session"
                else:
                    source = "system_inferred"
                    source_id, source_type = chain_id(chain, depth - 1), "profile_field"
                collected = self.at(-(5000 - depth))
                yield (
                    TENANT,
                    new_id,
                    customer,
                    f"lineage_step_{depth:03d}",
                    f'{{"step": {depth}}}',
                    "json",
                    source,
                    source_id,
                    source_type,
                    "{}",
                    "active",
                    null,
                    null,
                    "1",
                    self.false,
                    self.false,
                    null,
                    collected,
                    collected,
                    null,
                    null,
                    content_hash(new_id),
                )

    def chain_profile_rows(self) -> Iterator[tuple[str | None, ...]]:
        for chain in range(CHAINS):
            yield (TENANT, f"chain-{chain:03d}", self.at(-5000), self.at(-1))


@dataclass
class Dataset:
    """What the metrics need to know about the loaded data."""

    scale: int
    base_time: datetime
    definition_ids: dict[str, str]
    tenant: str = TENANT

    @staticmethod
    def customer(index: int) -> str:
        return customer_id(index)

    @property
    def chain_leaves(self) -> list[str]:
        return [chain_id(chain, CHAIN_DEPTH) for chain in range(CHAINS)]


Log = Callable[[str], None]


# --- loading ---------------------------------------------------------------------------------


def _meta(backend: Backend) -> dict[str, Any] | None:
    if not backend.exists():
        return None
    conn = backend.connect()
    try:
        try:
            row = backend.execute(
                conn, "SELECT value FROM bench_meta WHERE key = %s", ("dataset",)
            ).fetchone()
        except Exception:  # noqa: BLE001 - no table: not a usable benchmark database
            return None
        return json.loads(row[0]) if row else None
    finally:
        conn.close()


def _write_meta(backend: Backend, conn: Any, meta: dict[str, Any] | None) -> None:
    backend.execute(
        conn, "CREATE TABLE IF NOT EXISTS bench_meta (key VARCHAR(64) PRIMARY KEY, value TEXT)"
    )
    backend.execute(conn, "DELETE FROM bench_meta WHERE key = %s", ("dataset",))
    if meta is not None:
        backend.execute(
            conn,
            "INSERT INTO bench_meta (key, value) VALUES (%s, %s)",
            ("dataset", json.dumps(meta)),
        )


def _definition_ids(backend: Backend, conn: Any) -> dict[str, str]:
    rows = backend.execute(
        conn, "SELECT name, id FROM field_definitions WHERE tenant = %s", (TENANT,)
    ).fetchall()
    return dict(rows)


def _drop_indexes(backend: Backend, conn: Any) -> list[str]:
    """Drop every index and key of the item tables; return the statements that rebuild them."""
    keys = conn.execute(
        """
        SELECT t.relname, c.conname, pg_get_constraintdef(c.oid)
        FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
        WHERE t.relname = ANY(%s) AND c.contype IN ('p', 'u')
          AND t.relnamespace = current_schema()::regnamespace
        """,
        (list(ITEM_TABLES),),
    ).fetchall()
    key_names = {name for _, name, _ in keys}
    indexes = conn.execute(
        """
        SELECT indexname, indexdef FROM pg_indexes
        WHERE schemaname = current_schema() AND tablename = ANY(%s)
        """,
        (list(ITEM_TABLES),),
    ).fetchall()
    rebuild: list[str] = []
    for name, definition in indexes:
        if name in key_names:
            continue
        conn.execute(f'DROP INDEX "{name}"')
        rebuild.append(definition)
    for table, name, definition in keys:
        conn.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
        rebuild.insert(0, f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
    return rebuild


def _load(
    backend: Backend,
    generator: Generator,
    start: int,
    stop: int,
    *,
    chains: bool,
    log: Log,
) -> None:
    """Load profiles start..stop-1 (and the chains); drop/rebuild indexes when that is faster."""
    conn = backend.connect()
    began = time.perf_counter()
    try:
        rebuild: list[str] = []
        if backend.is_postgres:
            conn.execute("SET synchronous_commit = off")
            conn.execute("SET maintenance_work_mem = '512MB'")
            existing = conn.execute("SELECT count(*) FROM profiles").fetchone()[0]
            if stop - start >= existing:
                # Loading at least as much as is there: COPY into bare tables, index afterwards.
                rebuild = _drop_indexes(backend, conn)
        counts = {"fields": 0, "assets": 0, "profiles": 0}
        step = 20000
        for low in range(start, stop, step):
            high = min(stop, low + step)
            with backend.transaction(conn):
                counts["fields"] += backend.copy_rows(
                    conn, "fields", FIELD_COLUMNS, generator.field_rows(low, high)
                )
                counts["assets"] += backend.copy_rows(
                    conn, "assets", ASSET_COLUMNS, generator.asset_rows(low, high)
                )
                counts["profiles"] += backend.copy_rows(
                    conn, "profiles", PROFILE_COLUMNS, generator.profile_rows(low, high)
                )
            done = high - start
            if done % 100000 == 0 or high == stop:
                elapsed = time.perf_counter() - began
                log(
                    f"  loaded {done:,}/{stop - start:,} profiles, {counts['fields']:,} field rows"
                    f" ({counts['fields'] / max(elapsed, 1e-9):,.0f} field rows/s)"
                )
        if chains:
            with backend.transaction(conn):
                counts["fields"] += backend.copy_rows(
                    conn, "fields", FIELD_COLUMNS, generator.chain_rows()
                )
                counts["profiles"] += backend.copy_rows(
                    conn, "profiles", PROFILE_COLUMNS, generator.chain_profile_rows()
                )
        copied = time.perf_counter()
        for statement in rebuild:
            conn.execute(statement)
        indexed = time.perf_counter()
        if backend.is_postgres:
            conn.execute("VACUUM (ANALYZE) fields, assets, profiles")
        else:
            conn.execute("ANALYZE")
        log(
            f"  copied {counts['fields']:,} field, {counts['assets']:,} asset and "
            f"{counts['profiles']:,} profile rows in {copied - began:.1f}s"
            + (f", rebuilt {len(rebuild)} indexes in {indexed - copied:.1f}s" if rebuild else "")
            + f", vacuum/analyze {time.perf_counter() - indexed:.1f}s"
        )
    finally:
        conn.close()


def prepare(
    backend: Backend,
    scale: int,
    *,
    reuse: bool,
    workdir: Path,
    log: Log,
) -> Dataset:
    """A database holding exactly `scale` profiles: reused, grown, or rebuilt from scratch."""
    from ccv.store.migrate import HEAD_REVISION

    meta = _meta(backend) if reuse else None
    usable = (
        meta is not None
        and meta.get("format") == FORMAT_VERSION
        and meta.get("revision") == HEAD_REVISION
        and meta.get("scale", 0) <= scale
    )
    if meta is not None and usable:
        base_time = datetime.fromisoformat(meta["base_time"])
        conn = backend.connect()
        try:
            ids = _definition_ids(backend, conn)
        finally:
            conn.close()
        if meta["scale"] == scale:
            log(f"reusing {backend.describe()}: {scale:,} profiles already loaded")
            return Dataset(scale, base_time, ids)
        log(f"growing {backend.describe()} from {meta['scale']:,} to {scale:,} profiles")
        conn = backend.connect()
        try:
            _write_meta(backend, conn, None)  # a crash mid-load must not look complete
        finally:
            conn.close()
        _load(
            backend, Generator(backend, base_time, ids), meta["scale"], scale, chains=False, log=log
        )
        _finish(backend, scale, base_time)
        return Dataset(scale, base_time, ids)

    log(f"creating {backend.describe()} with {scale:,} profiles")
    backend.recreate()
    _migrate(backend)
    schema = workdir / "bench-schema.yaml"
    schema.write_text(schema_yaml(), encoding="utf-8")
    from ccv.config import Settings
    from ccv.vault import Vault

    with Vault(Settings(database_url=backend.ccv_url, redis_url=None)) as vault:
        vault.apply_schema([schema])
    conn = backend.connect()
    try:
        ids = _definition_ids(backend, conn)
        _write_meta(backend, conn, None)
    finally:
        conn.close()
    base_time = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    _load(backend, Generator(backend, base_time, ids), 0, scale, chains=True, log=log)
    _finish(backend, scale, base_time)
    return Dataset(scale, base_time, ids)


def _migrate(backend: Backend) -> None:
    from ccv.store.engine import make_engine
    from ccv.store.migrate import upgrade

    engine = make_engine(backend.ccv_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


def _finish(backend: Backend, scale: int, base_time: datetime) -> None:
    from ccv.store.migrate import HEAD_REVISION

    conn = backend.connect()
    try:
        _write_meta(
            backend,
            conn,
            {
                "format": FORMAT_VERSION,
                "revision": HEAD_REVISION,
                "scale": scale,
                "base_time": base_time.isoformat(),
            },
        )
    finally:
        conn.close()
