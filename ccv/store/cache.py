"""The Redis read cache: keys, compact entries, generation checks, invalidation and counters.

Everything that talks to Redis lives here; `redis` itself is imported on first use, so a vault
without `redis_url` never loads it. Redis is only ever a cache: every failure is turned into
"no cache" (the caller reads the database) and a write never waits for Redis to come back.

Correctness rests on generations (README "Read cache"):

- every entry depends on generation counters kept in Redis beside it: the tenant's epoch (schema
  apply, `cache flush --tenant`), the customer's generation (every write to the customer), the
  tenant's requirements generation (requirements apply);
- an entry records the values of its generations, and of the Redis server's run id, as they
  were read *before* the database read that produced it; it is served only while all of them
  are still current;
- a fill is a Lua compare-and-set against those values, so a read that raced a write cannot
  store what it read before the write (the write's invalidation moved a generation);
- an invalidation is recorded in the database outbox inside the write's transaction
  (`ccv.store.outbox`); after the commit the writer delivers it (increments the generations,
  deletes the entries) and clears its outbox rows. What a writer could not deliver (Redis
  down, none configured, the process died) stays in the outbox, and every reader delivers what
  its tenant is owed before it serves from Redis: a new process at once, a long-lived one at
  least every `retry_seconds`. A restarted Redis (new run id) serves nothing written before the
  restart.

Entries are sealed with their tenant's key (`ccv.store.sealing`): Redis holds no value in the
clear, PII included; only generation counters and hit/miss counts are plain.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson

from ccv import observe
from ccv.errors import BackendError, UsageError

if TYPE_CHECKING:
    from redis import Redis

    from ccv.config import Settings
    from ccv.store.database import Database
    from ccv.store.outbox import Outbox, Owed
    from ccv.store.sealing import Sealer

log = logging.getLogger("ccv.cache")

# First byte of every entry: the layout version (2: gap rows carry collected_at; 3: sealed).
FORMAT = b"\x03"
STATS_FIELDS = ("hits", "misses", "errors")
# A customer's generation outlives any entry that depends on it (see _GEN_TTL_MS below).
MIN_GEN_TTL_SECONDS = 3600
INVALIDATE_CHUNK = 500  # customers per invalidation script call
STATS_FLUSH_SECONDS = 1.0

# KEYS[1] the entry, KEYS[2..] its generations; ARGV[1] TTL (ms), ARGV[2] the value, ARGV[3..]
# the generations' values read before the database read ('' for a missing key).
_FILL = """
for i = 2, #KEYS do
  local current = redis.call('GET', KEYS[i]) or ''
  if current ~= ARGV[i + 1] then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[1])
return 1
"""

# KEYS[1] the tenant epoch, then per customer: generation, profile entry, gap rows entry.
# ARGV[1] the generations' TTL (ms). Returns the epoch, then per customer its new generation
# and whether its profile was cached.
_INVALIDATE = """
local out = {redis.call('GET', KEYS[1]) or ''}
for i = 2, #KEYS, 3 do
  local generation = redis.call('INCR', KEYS[i])
  redis.call('PEXPIRE', KEYS[i], ARGV[1])
  out[#out + 1] = tostring(generation)
  out[#out + 1] = redis.call('DEL', KEYS[i + 1])
  redis.call('DEL', KEYS[i + 2])
end
return out
"""

# Whether this process reported Redis degraded and has not seen it recover since: one warning
# per outage, however many reads fall back, and one info event when it is back.
_warned = False
_warned_lock = threading.Lock()


def _warn_once(url: str, exc: BaseException) -> None:
    """Report the cache degraded, once per outage of this process."""
    global _warned
    with _warned_lock:
        if _warned:
            return
        _warned = True
    observe.event(
        "cache_degraded",
        level=logging.WARNING,
        logger=log,
        message=(
            f"Redis cache at {url} is unavailable ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); reading from the database "
            "until it is back"
        ),
        error=type(exc).__name__,
    )


def _recovered(url: str) -> None:
    global _warned
    with _warned_lock:
        if not _warned:
            return
        _warned = False
    observe.event("cache_recovered", logger=log, message=f"Redis cache at {url} is back")


@functools.lru_cache(maxsize=65536)  # the hot read builds three keys per call
def _enc(text: str) -> str:
    """Percent-encode an id: the result never holds ':', '{', '}' or a space, and two ids never
    encode alike, so no tenant or customer id can reach into another's key."""
    return quote(text, safe="")


@dataclass(frozen=True, slots=True)
class Entry:
    """A cache entry's key, the generation keys it depends on and its tenant (whose key seals
    it)."""

    key: str
    gens: tuple[str, ...]
    tenant: str


class Keys:
    """Key names: `PREFIX:{TENANT}:KIND[:ID]`. The tenant is the Redis Cluster hash tag, so one
    tenant's keys share a slot (multi-key commands and scripts stay legal, a tenant flush is one
    INCR); ids are percent-encoded."""

    def __init__(self, prefix: str) -> None:
        if not prefix or "{" in prefix or "}" in prefix:
            raise UsageError(
                f"cache_prefix {prefix!r} must be non-empty and hold no braces "
                "(they would break the per-tenant hash tag)"
            )
        self.prefix = prefix

    def _tenant(self, tenant: str) -> str:
        return f"{self.prefix}:{{{_enc(tenant)}}}"

    def epoch(self, tenant: str) -> str:
        return f"{self._tenant(tenant)}:e"

    def requirements_gen(self, tenant: str) -> str:
        return f"{self._tenant(tenant)}:q"

    def customer_gen(self, tenant: str, customer: str) -> str:
        return f"{self._tenant(tenant)}:g:{_enc(customer)}"

    def profile(self, tenant: str, customer: str) -> Entry:
        """The customer's current items (unmasked rows), invalidated by any write to them."""
        return Entry(
            f"{self._tenant(tenant)}:p:{_enc(customer)}",
            (self.epoch(tenant), self.customer_gen(tenant, customer)),
            tenant,
        )

    def gap_rows(self, tenant: str, customer: str) -> Entry:
        """The customer's versions that can decide a gap (active, expired, orphaned)."""
        return Entry(
            f"{self._tenant(tenant)}:r:{_enc(customer)}",
            (self.epoch(tenant), self.customer_gen(tenant, customer)),
            tenant,
        )

    def definitions(self, tenant: str) -> Entry:
        return Entry(f"{self._tenant(tenant)}:d", (self.epoch(tenant),), tenant)

    def scenario(self, tenant: str, scenario: str) -> Entry:
        return Entry(
            f"{self._tenant(tenant)}:s:{_enc(scenario)}",
            (self.epoch(tenant), self.requirements_gen(tenant)),
            tenant,
        )

    def stats(self) -> str:
        return f"{self.prefix}:stats"

    def entries_pattern(self) -> str:
        """A SCAN pattern for every key under the prefix that holds a tenant."""
        escaped = "".join("\\" + c if c in "*?[]\\" else c for c in self.prefix)
        return escaped + ":{*"

    @staticmethod
    def is_entry(key: str) -> bool:
        """An entry (profile, gap rows, definitions, scenario), not a generation counter."""
        _, _, rest = key.partition("}:")
        return rest[:1] in ("p", "r", "d", "s")


@dataclass
class Snapshot:
    """What one lookup saw: the generations' values (read before any database read), the valid
    entries' payloads, and the server run id the lookup was made against."""

    incarnation: str
    gens: dict[str, str]
    values: dict[str, Any] = field(default_factory=dict)
    # After an invalidation: the entries that were cached until then (worth refilling).
    dropped: set[str] = field(default_factory=set)

    def get(self, entry: Entry) -> Any | None:
        return self.values.get(entry.key)

    def gen(self, key: str) -> str:
        return self.gens.get(key, "")


@dataclass(frozen=True)
class CacheCounts:
    hits: int
    misses: int
    errors: int


class RedisCache:
    """The read cache over one Redis database. Thread-safe; connects on first use."""

    def __init__(
        self,
        url: str,
        sealer: Sealer,
        *,
        prefix: str = "ccv",
        ttl_seconds: int = 1800,
        timeout_seconds: float = 0.05,
        retry_seconds: float = 1.0,
        outbox: Outbox | None = None,
    ) -> None:
        self.url = url
        self.sealer = sealer
        self.outbox = outbox
        self.keys = Keys(prefix)
        self.ttl_ms = max(1, int(ttl_seconds * 1000))
        self.gen_ttl_ms = max(2 * self.ttl_ms, MIN_GEN_TTL_SECONDS * 1000)
        self.timeout = timeout_seconds
        self.retry_seconds = retry_seconds
        self._client: Redis | None = None
        self._fill: Any = None
        self._invalidate: Any = None
        self._lock = threading.Lock()
        self._incarnation: str | None = None
        self.cluster = False
        self._run_ids: dict[str, str] = {}  # node -> run id, on a Redis Cluster
        self._run_ids_lock = threading.Lock()
        self._down_until = 0.0
        # Per tenant: when this process last found its outbox rows delivered (monotonic).
        self._settled: dict[str, float] = {}
        # Tenants whose invalidations this process recorded but could not deliver.
        self._owing: set[str] = set()
        self._pending = dict.fromkeys(STATS_FIELDS, 0)
        self._flushed_at = time.monotonic()

    # --- connection -------------------------------------------------------------------------

    @property
    def safe_url(self) -> str:
        """The URL without its password, for messages."""
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(self.url)
        if parts.password is None:
            return self.url
        netloc = parts.netloc.rsplit("@", 1)[1]
        user = f"{parts.username}:***@" if parts.username else ":***@"
        return urlunsplit(parts._replace(netloc=user + netloc))

    def _on_connect(self, connection: Any) -> None:
        """Every new connection learns its server's run id: a restarted server (or a promoted
        replica) has another, and entries stored before the restart are then never served. On
        a Redis Cluster the incarnation is that of every node ccv has talked to: any node's
        restart or failover changes it."""
        connection.on_connect()
        connection.send_command("INFO", "server")
        info = connection.read_response()
        for line in bytes(info).split(b"\r\n"):
            if line.startswith(b"run_id:"):
                run_id = line[7:].decode()[:16]
                if not self.cluster:
                    self._incarnation = run_id
                    return
                with self._run_ids_lock:  # not _lock: client() holds it while connecting
                    self._run_ids[f"{connection.host}:{connection.port}"] = run_id
                    self._incarnation = _combined(self._run_ids)
                return
        from redis.exceptions import ConnectionError as RedisConnectionError

        raise RedisConnectionError("the Redis server reported no run_id")

    def client(self) -> Any:
        """redis-py's client: a `RedisCluster` when the URL names a node of a Redis Cluster
        (asked once, on the first connection), else a `Redis`."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    import redis
                    from redis.backoff import NoBackoff
                    from redis.retry import Retry

                    options: dict[str, Any] = {
                        "socket_connect_timeout": self.timeout,
                        "socket_timeout": self.timeout,
                        # No retries: a dead Redis must cost one timeout, not ten with backoff.
                        "retry": Retry(NoBackoff(), 0),
                        "redis_connect_func": self._on_connect,
                        "health_check_interval": 0,
                    }
                    self.cluster = _is_cluster(self.url, self.timeout)
                    client: Any
                    if self.cluster:
                        from redis.cluster import RedisCluster

                        # One more try after a moved slot or a dead node (with the slot map
                        # refreshed), then the failure rules as on one server.
                        options["retry"] = Retry(NoBackoff(), 1)
                        client = RedisCluster.from_url(self.url, **options)
                        # Every node at once, so the incarnation holds all their run ids before
                        # anything is filled (a node met later would change it).
                        client.ping(target_nodes=RedisCluster.ALL_NODES)
                    else:
                        client = redis.Redis.from_url(self.url, **options)
                    self._fill = client.register_script(_FILL)
                    self._invalidate = client.register_script(_INVALIDATE)
                    self._client = client
        return self._client

    def _errors(self) -> tuple[type[BaseException], ...]:
        from redis.exceptions import RedisError

        return (RedisError, OSError)

    def _broken(self, exc: BaseException) -> None:
        with self._lock:
            self._down_until = time.monotonic() + self.retry_seconds
            self._pending["errors"] += 1
        observe.cache_lookups("error")
        _warn_once(self.safe_url, exc)

    def _usable(self) -> bool:
        """Redis may be used now: not within the back-off after an error, and connected."""
        if time.monotonic() < self._down_until:
            return False
        if self._incarnation is None:
            try:
                self.client().ping()
            except self._errors() as exc:
                self._broken(exc)
                return False
        return True

    def _skipped(self) -> None:
        with self._lock:
            self._pending["errors"] += 1
        observe.cache_lookups("error")

    # --- counters -----------------------------------------------------------------------------

    def _count(self, hits: int, misses: int) -> None:
        with self._lock:
            self._pending["hits"] += hits
            self._pending["misses"] += misses
        observe.cache_lookups("hit", hits)
        observe.cache_lookups("miss", misses)
        if _warned:
            _recovered(self.safe_url)

    def _take_pending(self, force: bool = False) -> dict[str, int]:
        with self._lock:
            due = force or time.monotonic() - self._flushed_at >= STATS_FLUSH_SECONDS
            if not due or not any(self._pending.values()):
                return {}
            taken = {k: v for k, v in self._pending.items() if v}
            self._pending = dict.fromkeys(STATS_FIELDS, 0)
            self._flushed_at = time.monotonic()
            return taken

    def _give_back(self, taken: dict[str, int]) -> None:
        with self._lock:
            for key, value in taken.items():
                self._pending[key] += value

    def _flush_counts(self, force: bool = False) -> None:
        taken = self._take_pending(force)
        if not taken:
            return
        try:
            pipe = self.client().pipeline(transaction=False)
            for key, value in taken.items():
                pipe.hincrby(self.keys.stats(), key, value)
            pipe.execute()
        except self._errors():
            self._give_back(taken)
            raise

    # --- reads --------------------------------------------------------------------------------

    def read(
        self, tenant: str, entries: Sequence[Entry], extra_gens: Sequence[str] = ()
    ) -> Snapshot | None:
        """Look entries up in one round trip; None when Redis cannot be used (read the database,
        fill nothing). Entries that are missing or no longer current are absent from `values`."""
        if not self._usable() or not self._settle(tenant):
            self._skipped()
            return None
        gen_keys = list(dict.fromkeys([*extra_gens, *(g for e in entries for g in e.gens)]))
        keys = gen_keys + [e.key for e in entries]
        before = self._incarnation
        taken = self._take_pending()
        try:
            if taken and not self.cluster:
                pipe = self.client().pipeline(transaction=False)
                for name, value in taken.items():
                    pipe.hincrby(self.keys.stats(), name, value)
                pipe.mget(keys)
                found = pipe.execute()[-1]
            else:
                # A cluster pipeline takes no MGET (and the counters live in another slot):
                # they go on their own, before the lookup.
                if taken:
                    pipe = self.client().pipeline(transaction=False)
                    for name, value in taken.items():
                        pipe.hincrby(self.keys.stats(), name, value)
                    pipe.execute()
                    taken = {}  # delivered: nothing to give back if the lookup fails
                found = self.client().mget(keys)
        except self._errors() as exc:
            self._give_back(taken)
            self._broken(exc)
            return None
        if before is None or self._incarnation != before:
            # A reconnect happened under this lookup: trust nothing it saw.
            self._skipped()
            return None
        gens = {key: (value or b"").decode() for key, value in zip(gen_keys, found, strict=False)}
        snapshot = Snapshot(before, gens)
        hits = 0
        for entry, raw in zip(entries, found[len(gen_keys) :], strict=True):
            payload = self._decode(raw, snapshot, entry)
            if payload is not None:
                snapshot.values[entry.key] = payload
                hits += 1
        self._count(hits, len(entries) - hits)
        return snapshot

    def _decode(self, raw: bytes | None, snapshot: Snapshot, entry: Entry) -> Any | None:
        if not raw or raw[:1] != FORMAT:
            return None
        plain = self.sealer.open(entry.tenant, entry.key, memoryview(raw)[1:])
        if plain is None:
            return None
        try:
            incarnation, gens, payload = orjson.loads(plain)
        except (orjson.JSONDecodeError, ValueError, TypeError):
            return None
        if incarnation != snapshot.incarnation:
            return None
        if gens != [snapshot.gens.get(key, "") for key in entry.gens]:
            return None
        return payload

    def encode(self, snapshot: Snapshot, entry: Entry, payload: Any) -> bytes:
        gens = [snapshot.gens.get(key, "") for key in entry.gens]
        plain = orjson.dumps([snapshot.incarnation, gens, payload])
        return FORMAT + self.sealer.seal(entry.tenant, entry.key, plain)

    def fill(self, snapshot: Snapshot, entry: Entry, payload: Any) -> bool:
        """Store what the database returned, only if none of the entry's generations moved
        since `snapshot` was taken (a write in between wins). False when nothing was stored."""
        if not snapshot.incarnation or time.monotonic() < self._down_until:
            return False
        try:
            value = self.encode(snapshot, entry, payload)
        except orjson.JSONEncodeError:
            log.debug("not cached: %s holds a value JSON cannot carry", entry.key, exc_info=True)
            return False
        expected = [snapshot.gens.get(key, "") for key in entry.gens]
        try:
            self.client()
            stored = self._fill(keys=[entry.key, *entry.gens], args=[self.ttl_ms, value, *expected])
        except self._errors() as exc:
            self._broken(exc)
            return False
        return bool(stored)

    # --- invalidation -------------------------------------------------------------------------

    def _settle(self, tenant: str) -> bool:
        """Before serving `tenant` from Redis: deliver what committed writes still owe it (the
        outbox). Checked at once by a new process, then at most every `retry_seconds`. False
        when what is owed could not be delivered: nothing of the tenant may be served."""
        if self.outbox is None:
            return True
        started = time.monotonic()
        last = self._settled.get(tenant)
        if last is not None and started - last < self.retry_seconds:
            return True
        try:
            owed = self.outbox.owed(tenant)
        except BackendError:
            return False  # the read goes to the database, which reports the failure
        if owed and not self._send(owed):
            return False
        self._settled[tenant] = started
        self._owing.discard(tenant)
        return True

    def deliver(self, owed: Owed | None) -> Snapshot | None:
        """After a commit: deliver what the write recorded in the outbox, then clear its rows.
        Returns a snapshot of the customers' new generations (to refill from), or None (nothing
        to refill, or Redis not reached: the rows stay owed, and a reader delivers them)."""
        if owed is None or not owed:
            return None
        if not self._usable():
            self._skipped()
            self._owe(owed.tenant)
            return None
        snapshot = Snapshot("", {})
        if not self._send(owed, snapshot):
            self._owe(owed.tenant)
            return None
        return snapshot

    def _owe(self, tenant: str) -> None:
        self._owing.add(tenant)
        self._settled.pop(tenant, None)  # this process's next read of the tenant checks first

    def _send(self, owed: Owed, snapshot: Snapshot | None = None) -> bool:
        """Deliver `owed` to Redis, then delete its outbox rows; False if Redis failed."""
        try:
            client = self.client()
            if owed.epoch:
                client.incr(self.keys.epoch(owed.tenant))
            if owed.requirements:
                client.incr(self.keys.requirements_gen(owed.tenant))
            if owed.customers:
                sent = self._invalidate_now(owed.tenant, sorted(owed.customers))
                if snapshot is not None:
                    snapshot.incarnation, snapshot.gens = sent.incarnation, sent.gens
                    snapshot.dropped = sent.dropped
        except self._errors() as exc:
            self._broken(exc)
            return False
        if self.outbox is not None:
            # Delivered: a failure to delete only means a reader delivers it once more.
            with contextlib.suppress(BackendError):
                self.outbox.clear(owed.tenant, owed.tokens)
        return True

    def _invalidate_now(self, tenant: str, customers: Sequence[str]) -> Snapshot:
        client = self.client()
        epoch = self.keys.epoch(tenant)
        incarnation = self._incarnation or ""
        snapshot = Snapshot(incarnation, {})
        for start in range(0, len(customers), INVALIDATE_CHUNK):
            part = customers[start : start + INVALIDATE_CHUNK]
            keys = [epoch]
            for customer in part:
                keys += [
                    self.keys.customer_gen(tenant, customer),
                    self.keys.profile(tenant, customer).key,
                    self.keys.gap_rows(tenant, customer).key,
                ]
            out = self._invalidate(keys=keys, args=[self.gen_ttl_ms], client=client)
            snapshot.gens[epoch] = _text(out[0])
            for index, customer in enumerate(part):
                snapshot.gens[self.keys.customer_gen(tenant, customer)] = _text(out[1 + 2 * index])
                if int(out[2 + 2 * index]):
                    snapshot.dropped.add(self.keys.profile(tenant, customer).key)
        if self._incarnation != incarnation:
            snapshot.incarnation = ""  # reconnected meanwhile: nothing may be filled from it
        return snapshot

    def _settle_owing(self) -> None:
        """Deliver what this process's own writes left owed (administration and close)."""
        for tenant in sorted(self._owing):
            self._settled.pop(tenant, None)
            if self._settle(tenant):
                self._owing.discard(tenant)

    @property
    def owes_invalidations(self) -> bool:
        """Whether writes of this process left invalidations in the outbox undelivered."""
        return bool(self._owing)

    # --- administration (strict: errors are BackendError) ----------------------------------

    def _strict(self, exc: BaseException) -> BackendError:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return BackendError(f"cannot use the Redis cache at {self.safe_url}: {first}")

    def counts(self) -> CacheCounts:
        """Hits, misses and errors of every process sharing this Redis and prefix."""
        try:
            self._settle_owing()
            self._flush_counts(force=True)
            found = self.client().hgetall(self.keys.stats())
        except self._errors() as exc:
            raise self._strict(exc) from exc
        values = {_text(k): int(v) for k, v in found.items()}
        return CacheCounts(*(values.get(name, 0) for name in STATS_FIELDS))

    def flush(self, tenant: str | None = None) -> int | None:
        """Drop cached entries: one tenant's (one INCR of its epoch; returns None) or all of them
        (returns how many keys were deleted). Counters and generations stay."""
        try:
            self._flush_counts(force=True)
            client = self.client()
            if tenant is not None:
                # The epoch covers everything committed before it: what the outbox holds for
                # the tenant now is delivered by this INCR, and cleared after it.
                owed = self.outbox.owed(tenant) if self.outbox is not None else None
                client.incr(self.keys.epoch(tenant))
                if owed is not None and self.outbox is not None:
                    with contextlib.suppress(BackendError):
                        self.outbox.clear(tenant, owed.tokens)
                self._owing.discard(tenant)
                return None
            deleted = 0
            batch: list[bytes] = []
            for key in client.scan_iter(match=self.keys.entries_pattern(), count=1000):
                if Keys.is_entry(key.decode(errors="replace")):
                    batch.append(key)
                if len(batch) >= 1000:
                    deleted += int(client.unlink(*batch))
                    batch = []
            if batch:
                deleted += int(client.unlink(*batch))
            return deleted
        except self._errors() as exc:
            raise self._strict(exc) from exc

    def close(self) -> None:
        """Deliver what is owed (counters, invalidations) with one last try, then disconnect."""
        if self._client is None:
            return
        try:
            self._settle_owing()
            self._flush_counts(force=True)
        except self._errors():
            pass
        if self._owing:
            log.info(
                "cache invalidations for tenant(s) %s could not reach Redis at %s; they are kept "
                "in the database, and the next process that reads through Redis delivers them",
                ", ".join(sorted(self._owing)),
                self.safe_url,
            )
        self._client.close()
        self._client = None
        self._incarnation = None
        self._run_ids.clear()


def _combined(run_ids: dict[str, str]) -> str:
    """One incarnation for the nodes of a cluster: changes when any of them restarts."""
    import hashlib

    text = ",".join(f"{node}={run_id}" for node, run_id in sorted(run_ids.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _is_cluster(url: str, timeout: float) -> bool:
    """Whether the Redis the URL names is a node of a Redis Cluster (`cluster_enabled:1`)."""
    import redis

    probe = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        info = probe.info("cluster")
    except redis.ResponseError:  # an old server or a proxy without the section
        return False
    finally:
        probe.close()
    return bool(info.get("cluster_enabled"))


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


def build_cache(settings: Settings, db: Database) -> RedisCache | None:
    """The cache the settings ask for (None without `redis_url`); connects on first use. `db`
    holds the invalidation outbox (delivered before entries are served) and the sealing keys."""
    if not settings.redis_url:
        return None
    if not settings.redis_url.startswith(("redis://", "rediss://", "unix://")):
        from ccv.errors import UsageError

        raise UsageError("the Redis URL must start with redis://, rediss:// or unix://")
    from ccv.store.outbox import Outbox
    from ccv.store.sealing import Sealer

    return RedisCache(
        settings.redis_url,
        Sealer(db),
        prefix=settings.cache_prefix,
        ttl_seconds=settings.cache_ttl_seconds,
        timeout_seconds=settings.redis_timeout_seconds,
        retry_seconds=settings.redis_retry_seconds,
        outbox=Outbox(db),
    )
