"""The Redis read cache (needs $CCV_REDIS_URL; n/a without it).

cached_read_p99_ms: `vault.get_profile` served from Redis vs a raw Redis GET of the very same
entry bytes, opened (AES-GCM-SIV with the tenant's key, read once by raw SQL: entries are sealed,
README "Read cache") and `orjson.loads`, through a plain redis-py client; `extra.open_us` is the
opening alone. The vault runs with the
default `redis_retry_seconds` (1 s), so its outbox check (README "Read cache") runs at most once
a second per tenant, as in a long-lived agent runtime.
cached_read_checked_p99_ms: the same, with the outbox check before every read (what a process
that reads once pays, and `redis_retry_seconds = 0`), vs the limit the design allows: the raw
GET + open + loads plus a raw SELECT of the tenant's outbox rows on a persistent connection (one
Redis and one database round trip). `extra.outbox_check_ms` is the check's own latency (the
indexed outbox SELECT that finds nothing owed), measured alone in the same run, and
`extra.raw_get_ms` the raw GET (+ open + loads) alone, with `extra.ratio_to_raw_get`.
cache_hit_rate: a Zipf(1.1) workload over 10,000 profiles, 5% of the operations writes through
`vault.save_field`, 95% reads through `vault.get_profile`; the hit rate of the reads in steady
state (every profile read once, then a Zipf warm-up, then the measured run), counted by the
cache itself (its Redis counters). A running vault reaches that state once every profile has
been read within one TTL (30 minutes). `extra` has what plain cache-aside gets from an empty
cache on the same operations.
"""

from __future__ import annotations

import itertools
import os
import random
from typing import Any

import orjson

from benchmarks.context import Context
from benchmarks.registry import Measurement, ccv_min, metric, ratio_max
from benchmarks.stats import paired_latencies, percentile, summary, time_call

WARMUP = 200
BUDGET_S = 180.0

PROFILES = 10_000
ZIPF_S = 1.1
WRITE_SHARE = 0.05
WARMUP_OPS = 10_000
MEASURED_OPS = 50_000
FIELD = "loyalty_points"


def _unavailable() -> Measurement:
    return Measurement(ccv=None, raw=None, note="set CCV_REDIS_URL to measure the cache")


RAW_KEY = "SELECT key FROM cache_keys WHERE tenant = %s"


def _raw_reader(ctx: Context, cache: Any, tenant: str) -> tuple[Any, Any, Any]:
    """(GET, open) of a profile entry with a plain client and the key read by raw SQL: the
    least any reader of a sealed entry does."""
    import redis
    from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV

    row = ctx.raw.execute(ctx.backend.sql(RAW_KEY), (tenant,)).fetchone()
    assert row is not None, "the vault filled entries without a key"
    cipher = AESGCMSIV(bytes(row[0]))
    client = redis.Redis.from_url(os.environ["CCV_REDIS_URL"])

    def get(customer: str) -> tuple[bytes, bytes]:
        name = cache.keys.profile(tenant, customer).key
        data = client.get(name)
        assert data is not None
        return name.encode(), data

    def open_(got: tuple[bytes, bytes]) -> Any:
        name, data = got
        return orjson.loads(cipher.decrypt(data[1:13], data[13:], name))

    return get, open_, client


@metric("cached_read_p99_ms", unit="ms", target=ratio_max(1.5))
def cached_read(ctx: Context) -> Measurement:
    """vault.get_profile served from Redis vs raw GET of the same bytes + orjson.loads."""
    vault = ctx.cached_vault
    if vault is None or vault.cache is None:
        return _unavailable()
    cache, tenant = vault.cache, ctx.data.tenant
    vault.flush_cache()
    customers = ctx.sample_customers(ctx.reads + WARMUP)
    for customer in customers:  # every profile cached before anything is timed
        vault.get_profile(tenant, customer)
    get, open_, raw_client = _raw_reader(ctx, cache, tenant)

    def raw(customer: str) -> Any:
        return open_(get(customer))

    # Same answer from both sides: the raw entry holds the rows the vault serves.
    entry = raw(customers[0])[2]
    if sorted(r["name"] for r in entry["fields"]) != sorted(
        vault.get_profile(tenant, customers[0]).fields
    ):
        raise AssertionError("the raw entry and the vault disagree")
    entry_bytes = len(get(customers[0])[1])
    sealed = get(customers[0])
    opened_ms = [time_call(lambda: open_(sealed)) for _ in range(2000)]
    before = cache.counts()
    try:
        ccv_ms, raw_ms = paired_latencies(
            customers,
            lambda c: vault.get_profile(tenant, c),
            raw,
            warmup=WARMUP,
            budget_s=BUDGET_S,
        )
    finally:
        raw_client.close()
    after = cache.counts()
    misses = after.misses - before.misses
    if misses or after.errors != before.errors:
        raise AssertionError(f"{misses} reads were not served from Redis")
    ccv_s, raw_s = summary(ccv_ms), summary(raw_ms)
    return Measurement(
        ccv=ccv_s["p99"],
        raw=raw_s["p99"],
        extra={
            "ccv_ms": ccv_s,
            "raw_ms": raw_s,
            "hits": after.hits - before.hits,
            "entry_bytes": entry_bytes,
            "open_us": round(percentile(opened_ms, 50) * 1000, 1),
        },
    )


RAW_OUTBOX = "SELECT scope, customer, token FROM cache_outbox WHERE tenant = %s"


@metric("cached_read_checked_p99_ms", unit="ms", target=ratio_max(3))
def cached_read_checked(ctx: Context) -> Measurement:
    """vault.get_profile from Redis with the outbox check on every read vs raw GET + loads
    plus a raw SELECT of the outbox (the design's limit: one Redis and one database trip)."""
    vault = ctx.cached_vault
    if vault is None or vault.cache is None or vault.cache.outbox is None:
        return _unavailable()
    cache, tenant = vault.cache, ctx.data.tenant
    outbox = cache.outbox
    customers = ctx.sample_customers(ctx.reads + WARMUP)
    for customer in customers:
        vault.get_profile(tenant, customer)
    get, open_, raw_client = _raw_reader(ctx, cache, tenant)
    conn, outbox_sql = ctx.raw, ctx.backend.sql(RAW_OUTBOX)

    def raw_get(customer: str) -> Any:
        return open_(get(customer))

    def raw(customer: str) -> Any:
        if conn.execute(outbox_sql, (tenant,)).fetchall():
            raise AssertionError("the outbox owes something: the check would deliver it")
        return raw_get(customer)

    retry = cache.retry_seconds
    cache.retry_seconds = 0.0  # every read checks the outbox first
    before = cache.counts()
    try:
        ccv_ms, raw_ms = paired_latencies(
            customers,
            lambda c: vault.get_profile(tenant, c),
            raw,
            warmup=WARMUP,
            budget_s=BUDGET_S,
        )
        check_ms, get_ms = paired_latencies(
            customers,
            lambda _c: outbox.owed(tenant),
            raw_get,
            warmup=WARMUP,
            budget_s=BUDGET_S / 4,
        )
    finally:
        cache.retry_seconds = retry
        raw_client.close()
    after = cache.counts()
    if after.misses != before.misses or after.errors != before.errors:
        raise AssertionError("reads were not served from Redis")
    ccv_s, raw_s = summary(ccv_ms), summary(raw_ms)
    check_s, get_s = summary(check_ms), summary(get_ms)
    return Measurement(
        ccv=ccv_s["p99"],
        raw=raw_s["p99"],
        extra={
            "ccv_ms": ccv_s,
            "raw_ms": raw_s,
            "outbox_check_ms": check_s,
            "raw_get_ms": get_s,
            "ratio_to_raw_get": round(ccv_s["p99"] / get_s["p99"], 2),
        },
    )


def zipf_sampler(count: int, s: float, rng: random.Random) -> Any:
    """Draws of ranks 0..count-1 with P(rank k) proportional to 1 / (k + 1) ** s."""
    cumulative = list(itertools.accumulate(1.0 / (k + 1) ** s for k in range(count)))
    population = range(count)

    def draw(n: int) -> list[int]:
        return rng.choices(population, cum_weights=cumulative, k=n)

    return draw


def plain_cache_aside(
    ops: list[tuple[bool, str]], measured_from: int, warm: list[str] | None = None
) -> float:
    """The hit rate (%) of the plainest cache on the same operations: GET, on a miss read and
    SET, DEL on every write, no refill (simulated exactly: a set of cached keys)."""
    cached: set[str] = set(warm or ())
    hits = reads = 0
    for index, (write, customer) in enumerate(ops):
        if write:
            cached.discard(customer)
            continue
        hit = customer in cached
        cached.add(customer)
        if index >= measured_from:
            reads += 1
            hits += hit
    return 100.0 * hits / reads if reads else float("nan")


@metric("cache_hit_rate", unit="%", target=ccv_min(95))
def cache_hit_rate(ctx: Context) -> Measurement:
    """Zipf(1.1) reads over 10,000 profiles with 5% save_field writes; hit rate after warm-up."""
    vault = ctx.cached_vault
    if vault is None or vault.cache is None:
        return _unavailable()
    cache, tenant = vault.cache, ctx.data.tenant
    profiles = min(PROFILES, ctx.data.scale)
    rng = random.Random(ctx.seed + 11)
    order = list(range(profiles))
    rng.shuffle(order)  # which customer is the most popular: not simply the first loaded
    customers = [ctx.data.customer(i) for i in order]
    quick = ctx.reads < 2000
    warmup_ops = WARMUP_OPS // 10 if quick else WARMUP_OPS
    measured_ops = MEASURED_OPS // 10 if quick else MEASURED_OPS
    total = warmup_ops + measured_ops
    ranks = zipf_sampler(profiles, ZIPF_S, rng)(total)
    ops = [(rng.random() < WRITE_SHARE, customers[rank]) for rank in ranks]
    vault.flush_cache()
    for customer in customers:  # steady state: every profile has been read once
        vault.get_profile(tenant, customer)
    warm = None
    for index, (write, customer) in enumerate(ops):
        if index == warmup_ops:
            warm = cache.counts()
        if write:
            vault.save_field(tenant, customer, FIELD, rng.randrange(100000), actor="bench")
        else:
            vault.get_profile(tenant, customer)
    end = cache.counts()
    assert warm is not None
    hits, misses = end.hits - warm.hits, end.misses - warm.misses
    rate = 100.0 * hits / (hits + misses)
    return Measurement(
        ccv=round(rate, 3),
        raw=round(plain_cache_aside(ops, warmup_ops, customers), 3),
        extra={
            "profiles": profiles,
            "zipf_s": ZIPF_S,
            "write_share": WRITE_SHARE,
            "warmup_ops": warmup_ops,
            "measured_ops": measured_ops,
            "reads": hits + misses,
            "writes": sum(1 for write, _ in ops[warmup_ops:] if write),
            "hits": hits,
            "misses": misses,
            "errors": end.errors - warm.errors,
            "plain_cache_aside_from_empty_cache": round(plain_cache_aside(ops, 0), 3),
            "distinct_profiles_read": len({c for w, c in ops if not w}),
            "raw_is": "plain cache-aside (delete on write, no refill) simulated on the same ops",
        },
    )
