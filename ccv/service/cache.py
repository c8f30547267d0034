"""Cache administration: the shared counters (`cache stats`) and dropping entries
(`cache flush`). Both need Redis: without one configured they are usage errors, and an
unreachable Redis is a backend error (SPEC §2 decisions)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ccv.domain.models import CacheFlush, CacheStats
from ccv.errors import UsageError

if TYPE_CHECKING:
    from ccv.store.cache import RedisCache


def _required(cache: RedisCache | None) -> RedisCache:
    if cache is None:
        raise UsageError("no Redis cache is configured: set CCV_REDIS_URL or pass --redis-url")
    return cache


def stats(cache: RedisCache | None) -> CacheStats:
    """Hits, misses and errors counted in Redis by every process, and the hit rate."""
    counts = _required(cache).counts()
    lookups = counts.hits + counts.misses
    return CacheStats(
        hits=counts.hits,
        misses=counts.misses,
        errors=counts.errors,
        hit_rate=round(counts.hits / lookups, 6) if lookups else None,
    )


def flush(cache: RedisCache | None, tenant: str | None = None) -> CacheFlush:
    """Drop one tenant's cached entries (one operation) or every entry under the prefix."""
    deleted = _required(cache).flush(tenant)
    return CacheFlush(tenant=tenant, deleted=deleted)
