"""The Redis read cache on both dialects, against the real Redis (tests/conftest.py
`redis_target`): hits and misses, invalidation after every mutation path, TTL-on-read of cached
values, key collision resistance, and a read racing a write."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from ccv.config import Settings
from ccv.domain.enums import ValidationMode
from ccv.errors import NotFoundError
from ccv.store.cache import Keys, RedisCache
from ccv.store.tables import fields
from ccv.vault import Vault

TENANT = "acme"
NOW = datetime.now(UTC)

SCHEMA = """\
tenant: acme
agent: bot
fields:
  - name: email
    value_type: email
    is_pii: true
  - name: nickname
    value_type: string
    collection_prompt: "What should we call you?"
  - name: tier
    value_type: enum
    allowed_values: [free, pro]
    collection_prompt: "Which plan are you on?"
  - name: legal_name
    value_type: string
"""
UPGRADE = """\
tenant: acme
agent: bot
scenario: upgrade
requires:
  - field: tier
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(path: Path, *records: dict[str, Any]) -> Path:
    return write(path, "".join(json.dumps(r) + "\n" for r in records))


@pytest.fixture
def cached(database_url: str, redis_target: Any, tmp_path: Path) -> Iterator[Vault]:
    """A vault with the Redis cache, the schema applied."""
    with Vault(redis_target.settings(database_url)) as vault:
        vault.apply_schema([write(tmp_path / "bot.yaml", SCHEMA)])
        yield vault


def counts(vault: Vault) -> tuple[int, int]:
    assert vault.cache is not None
    found = vault.cache.counts()
    return found.hits, found.misses


def read_twice_and_check_cached(vault: Vault, customer: str) -> None:
    """Make sure the customer's profile is in Redis: a second read is a hit."""
    vault.get_profile(TENANT, customer)
    hits, _ = counts(vault)
    vault.get_profile(TENANT, customer)
    assert counts(vault)[0] == hits + 1


def nickname(vault: Vault, customer: str = "c-1") -> Any:
    found = vault.get_profile(TENANT, customer).fields.get("nickname")
    return None if found is None else found.value


# --- hits and misses ------------------------------------------------------------------------


def test_second_read_is_served_from_redis_and_equals_the_database_view(
    cached: Vault, database_url: str
) -> None:
    cached.save_field(TENANT, "c-1", "email", "ana@example.com")
    cached.save_field(TENANT, "c-1", "nickname", "Ana", source_metadata={"quote": "call me Ana"})
    first = cached.get_profile(TENANT, "c-1")
    assert counts(cached) == (0, 1)
    second = cached.get_profile(TENANT, "c-1")
    assert counts(cached) == (1, 1)
    with Vault(Settings(database_url=database_url)) as plain:
        truth = plain.get_profile(TENANT, "c-1")
    for profile in (first, second):
        assert profile.model_dump(mode="json", exclude={"as_of"}) == truth.model_dump(
            mode="json", exclude={"as_of"}
        )
    # PII is masked on the way out of the cache, as on the way out of the database.
    assert second.fields["email"].value == "a***@example.com"
    assert second.fields["email"].masked


def test_cached_assets_keep_their_derived_fields(cached: Vault, tmp_path: Path) -> None:
    asset_id = "11111111-1111-4111-8111-111111111111"
    records = jsonl(
        tmp_path / "a.jsonl",
        {
            "kind": "asset",
            "tenant": TENANT,
            "customer": "c-1",
            "id": asset_id,
            "name": "id_card_front",
            "asset_type": "image",
        },
        {
            "tenant": TENANT,
            "customer": "c-1",
            "name": "legal_name",
            "value": "Ana Lima",
            "source_item_id": asset_id,
        },
    )
    assert cached.import_files([records]).inserted == 2
    first = cached.get_profile(TENANT, "c-1")
    second = cached.get_profile(TENANT, "c-1")
    assert counts(cached) == (1, 1)
    assert second.assets == first.assets
    assert second.assets[0].analysis_field_ids == [first.fields["legal_name"].id]


def test_history_as_of_and_pii_reveal_read_the_database(cached: Vault) -> None:
    cached.save_field(TENANT, "c-1", "email", "ana@example.com")
    cached.get_profile(TENANT, "c-1", history=True)
    cached.get_profile(TENANT, "c-1", as_of=datetime.now(UTC))
    revealed = cached.get_profile(TENANT, "c-1", reveal_pii=True)
    assert revealed.fields["email"].value == "ana@example.com"
    assert counts(cached) == (0, 0)


def test_unknown_customer_is_not_found_from_the_cache_until_a_value_arrives(cached: Vault) -> None:
    for _ in range(2):
        with pytest.raises(NotFoundError):
            cached.get_profile(TENANT, "nobody")
    assert counts(cached) == (1, 1)
    cached.save_field(TENANT, "nobody", "nickname", "Newcomer")
    assert nickname(cached, "nobody") == "Newcomer"


def test_counters_add_up_across_processes(
    database_url: str, redis_target: Any, tmp_path: Path
) -> None:
    settings_ = redis_target.settings(database_url)
    with Vault(settings_) as first:
        first.apply_schema([write(tmp_path / "bot.yaml", SCHEMA)])
        first.save_field(TENANT, "c-1", "nickname", "Ana")
        first.get_profile(TENANT, "c-1")
        first.get_profile(TENANT, "c-1")
    with Vault(settings_) as second:
        second.get_profile(TENANT, "c-1")
        stats = second.cache_stats()
    assert (stats.hits, stats.misses, stats.errors) == (2, 1, 0)
    assert stats.hit_rate == pytest.approx(2 / 3, abs=1e-6)


def test_flush_of_one_tenant_leaves_the_others_cached(cached: Vault) -> None:
    cached.save_field(TENANT, "c-1", "nickname", "Ana")
    cached.save_field("other", "c-1", "nickname", "Bo", validation_mode=ValidationMode.DISABLED)
    for tenant in (TENANT, "other"):
        cached.get_profile(tenant, "c-1")
    assert cached.flush_cache(TENANT).deleted is None
    before = counts(cached)
    cached.get_profile(TENANT, "c-1")
    cached.get_profile("other", "c-1")
    assert counts(cached) == (before[0] + 1, before[1] + 1)


def test_flush_of_everything_deletes_every_entry_and_keeps_the_counters(
    cached: Vault, redis_target: Any
) -> None:
    cached.save_field(TENANT, "c-1", "nickname", "Ana")
    cached.get_profile(TENANT, "c-1")
    cached.validate_profile(TENANT, "c-1", "bot")
    entries = [k for k in redis_target.stored_keys() if Keys.is_entry(k)]
    assert len(entries) == 2  # the profile and the definitions
    assert cached.flush_cache().deleted == 2
    assert [k for k in redis_target.stored_keys() if Keys.is_entry(k)] == []
    assert f"{redis_target.prefix}:stats" in redis_target.stored_keys()
    assert nickname(cached) == "Ana"


def test_no_redis_url_never_imports_redis(database_url: str, tmp_path: Path) -> None:
    code = f"""
import sys
from ccv.config import Settings
from ccv.domain.enums import ValidationMode
from ccv.vault import Vault
with Vault(Settings(database_url={database_url!r})) as vault:
    vault.save_field("t", "c", "n", 1, validation_mode=ValidationMode.DISABLED)
    assert vault.get_profile("t", "c").fields["n"].value == 1
    assert vault.cache is None
assert "redis" not in sys.modules, "redis was imported"
"""
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)


# --- invalidation after every mutation path ---------------------------------------------------


def test_save_field_is_read_back_at_once_and_keeps_the_profile_cached(cached: Vault) -> None:
    cached.save_field(TENANT, "c-1", "nickname", "old")
    read_twice_and_check_cached(cached, "c-1")
    cached.save_field(TENANT, "c-1", "nickname", "new")
    hits, misses = counts(cached)
    assert nickname(cached) == "new"
    # The write cached the new view itself: the read after it is a hit.
    assert counts(cached) == (hits + 1, misses)


def test_import_invalidates_the_customers_it_wrote(cached: Vault, tmp_path: Path) -> None:
    cached.save_field(TENANT, "c-1", "nickname", "old", collected_at=NOW - timedelta(hours=1))
    read_twice_and_check_cached(cached, "c-1")
    record = {"tenant": TENANT, "customer": "c-1", "name": "nickname", "value": "imported"}
    assert cached.import_files([jsonl(tmp_path / "r.jsonl", record)]).inserted == 1
    assert nickname(cached) == "imported"


def test_dry_run_import_changes_nothing_cached(cached: Vault, tmp_path: Path) -> None:
    cached.save_field(TENANT, "c-1", "nickname", "kept")
    read_twice_and_check_cached(cached, "c-1")
    record = {"tenant": TENANT, "customer": "c-1", "name": "nickname", "value": "dry"}
    cached.import_files([jsonl(tmp_path / "r.jsonl", record)], dry_run=True)
    hits, _ = counts(cached)
    assert nickname(cached) == "kept"
    assert counts(cached)[0] == hits + 1


def test_expiry_sweep_invalidates_the_customers_it_expired(cached: Vault) -> None:
    cached.save_field(TENANT, "c-1", "nickname", "short", expires_at=NOW + timedelta(days=1))
    read_twice_and_check_cached(cached, "c-1")
    # Swept as of the day after: the cached copy's expires_at is still in the future.
    result = cached.expire([TENANT], now=NOW + timedelta(days=2), apply=True)
    assert result.total == 1
    assert nickname(cached) is None


def test_orphan_sweep_invalidates_the_customers_it_orphaned(cached: Vault) -> None:
    source = cached.save_field(TENANT, "c-2", "nickname", "source")
    cached.save_field(
        TENANT,
        "c-1",
        "legal_name",
        "derived",
        source_item_id=source.id,
        source_item_type="profile_field",
    )
    read_twice_and_check_cached(cached, "c-1")
    # The source vanishes behind ccv's back (no cascade): only the orphan sweep notices.
    with cached.db.write() as conn:
        conn.execute(delete(fields).where(fields.c.tenant == TENANT, fields.c.id == source.id))
    assert "legal_name" in cached.get_profile(TENANT, "c-1").fields  # still cached, rightly
    assert cached.orphans([TENANT], apply=True).total == 1
    assert "legal_name" not in cached.get_profile(TENANT, "c-1").fields


def test_delete_invalidates_the_owner(cached: Vault) -> None:
    version = cached.save_field(TENANT, "c-1", "nickname", "gone soon")
    cached.save_field(TENANT, "c-1", "tier", "pro")
    read_twice_and_check_cached(cached, "c-1")
    cached.delete(TENANT, version.id)
    assert nickname(cached) is None
    cached.delete(TENANT, cached.get_profile(TENANT, "c-1").fields["tier"].id)
    with pytest.raises(NotFoundError):  # nothing left: no such customer any more
        cached.get_profile(TENANT, "c-1")


def test_forced_delete_invalidates_the_customers_of_orphaned_dependents(cached: Vault) -> None:
    source = cached.save_field(TENANT, "c-1", "nickname", "source")
    cached.save_field(TENANT, "c-2", "legal_name", "derived", source_item_id=source.id)
    read_twice_and_check_cached(cached, "c-2")
    cached.delete(TENANT, source.id, force=True)
    assert "legal_name" not in cached.get_profile(TENANT, "c-2").fields


def test_erase_invalidates_the_customer_and_the_dependents_elsewhere(cached: Vault) -> None:
    source = cached.save_field(TENANT, "c-1", "nickname", "source")
    cached.save_field(TENANT, "c-2", "legal_name", "derived", source_item_id=source.id)
    read_twice_and_check_cached(cached, "c-1")
    read_twice_and_check_cached(cached, "c-2")
    cached.erase(TENANT, "c-1")
    with pytest.raises(NotFoundError):
        cached.get_profile(TENANT, "c-1")
    assert "legal_name" not in cached.get_profile(TENANT, "c-2").fields


def test_a_field_derived_from_another_customers_asset_updates_that_asset(
    cached: Vault, tmp_path: Path
) -> None:
    asset_id = "22222222-2222-4222-8222-222222222222"
    asset = {
        "kind": "asset",
        "tenant": TENANT,
        "customer": "c-1",
        "id": asset_id,
        "name": "id_card_front",
        "asset_type": "image",
    }
    cached.import_files([jsonl(tmp_path / "a.jsonl", asset)])
    read_twice_and_check_cached(cached, "c-1")
    derived = cached.save_field(
        TENANT, "c-2", "legal_name", "Bo", source_item_id=asset_id, source_item_type="profile_asset"
    )
    assert cached.get_profile(TENANT, "c-1").assets[0].analysis_field_ids == [derived.id]
    read_twice_and_check_cached(cached, "c-1")
    cached.erase(TENANT, "c-2")
    assert cached.get_profile(TENANT, "c-1").assets[0].analysis_field_ids == []


def test_schema_apply_invalidates_masking_and_validation(cached: Vault, tmp_path: Path) -> None:
    cached.save_field(TENANT, "c-1", "email", "ana@example.com")
    cached.save_field(TENANT, "c-1", "tier", "pro")
    read_twice_and_check_cached(cached, "c-1")
    assert cached.validate_profile(TENANT, "c-1", "bot").valid
    assert cached.validate_profile(TENANT, "c-1", "bot").valid  # definitions now cached
    changed = SCHEMA.replace("    is_pii: true\n", "").replace("[free, pro]", "[free, plus]")
    cached.apply_schema([write(tmp_path / "bot.yaml", changed)])
    assert cached.get_profile(TENANT, "c-1").fields["email"].value == "ana@example.com"
    report = cached.validate_profile(TENANT, "c-1", "bot")
    assert not report.valid
    assert [r.field for r in report.results if r.status == "invalid"] == ["tier"]


def test_reapplying_the_same_schema_keeps_the_cache(cached: Vault, tmp_path: Path) -> None:
    cached.save_field(TENANT, "c-1", "nickname", "Ana")
    read_twice_and_check_cached(cached, "c-1")
    cached.apply_schema([write(tmp_path / "bot.yaml", SCHEMA)])
    hits, _ = counts(cached)
    cached.get_profile(TENANT, "c-1")
    assert counts(cached)[0] == hits + 1


def test_requirements_apply_invalidates_cached_scenarios(cached: Vault, tmp_path: Path) -> None:
    cached.save_field(TENANT, "c-1", "nickname", "Ana")
    cached.apply_requirements([write(tmp_path / "upgrade.yaml", UPGRADE)])
    assert [m.field for m in cached.gaps(TENANT, "c-1", "upgrade").missing] == ["tier"]
    assert [m.field for m in cached.gaps(TENANT, "c-1", "upgrade").missing] == ["tier"]
    hits, _ = counts(cached)
    assert hits >= 1
    more = UPGRADE + "  - field: email\n"
    cached.apply_requirements([write(tmp_path / "upgrade.yaml", more)])
    assert [m.field for m in cached.gaps(TENANT, "c-1", "upgrade").missing] == ["tier", "email"]


def test_gaps_see_a_new_value_of_the_customer(cached: Vault, tmp_path: Path) -> None:
    cached.apply_requirements([write(tmp_path / "upgrade.yaml", UPGRADE)])
    for _ in range(2):
        assert [m.field for m in cached.gaps(TENANT, "c-1", "upgrade").missing] == ["tier"]
    cached.save_field(TENANT, "c-1", "tier", "pro")
    gaps = cached.gaps(TENANT, "c-1", "upgrade")
    assert (gaps.missing, gaps.satisfied) == ([], ["tier"])
    with pytest.raises(NotFoundError):
        cached.gaps(TENANT, "c-1", "no-such-scenario")


# --- TTL on read ------------------------------------------------------------------------------


def later(monkeypatch: pytest.MonkeyPatch, module: str, when: datetime) -> None:
    monkeypatch.setattr(f"ccv.service.{module}.utcnow", lambda: when)


def test_cached_profile_value_past_expires_at_is_not_served(
    cached: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached.save_field(TENANT, "c-1", "nickname", "brief", expires_at=NOW + timedelta(hours=1))
    cached.save_field(TENANT, "c-1", "tier", "pro")
    read_twice_and_check_cached(cached, "c-1")
    later(monkeypatch, "profiles", NOW + timedelta(hours=2))
    hits, _ = counts(cached)
    profile = cached.get_profile(TENANT, "c-1")
    assert counts(cached)[0] == hits + 1  # served from Redis...
    assert sorted(profile.fields) == ["tier"]  # ...without the value that ran out


def test_cached_values_past_expires_at_are_neither_validated_nor_satisfying(
    cached: Vault, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cached.apply_requirements([write(tmp_path / "upgrade.yaml", UPGRADE)])
    cached.save_field(TENANT, "c-1", "tier", "pro", expires_at=NOW + timedelta(hours=1))
    assert cached.validate_profile(TENANT, "c-1", "bot").checked == 1
    assert cached.gaps(TENANT, "c-1", "upgrade").satisfied == ["tier"]
    later(monkeypatch, "validation", NOW + timedelta(hours=2))
    later(monkeypatch, "gaps", NOW + timedelta(hours=2))
    hits, _ = counts(cached)
    assert cached.validate_profile(TENANT, "c-1", "bot").checked == 0
    assert [(m.field, m.reason) for m in cached.gaps(TENANT, "c-1", "upgrade").missing] == [
        ("tier", "expired")
    ]
    assert counts(cached)[0] >= hits + 2


def test_cached_values_older_than_freshness_are_missing_as_stale(
    cached: Vault, tmp_path: Path
) -> None:
    """The collection time survives the round trip through Redis: a cached value older than
    its definition's `freshness_seconds` is missing as `stale` while `show` still serves it."""
    fresh_for_a_day = SCHEMA.replace("[free, pro]\n", "[free, pro]\n    freshness_seconds: 86400\n")
    cached.apply_schema([write(tmp_path / "bot.yaml", fresh_for_a_day)])
    cached.apply_requirements([write(tmp_path / "upgrade.yaml", UPGRADE)])
    cached.save_field(TENANT, "c-1", "tier", "pro", collected_at=NOW - timedelta(hours=2))
    assert cached.gaps(TENANT, "c-1", "upgrade").satisfied == ["tier"]  # fills the cache
    two_days_on = NOW + timedelta(days=2)
    for _ in range(2):
        hits, _ = counts(cached)
        gaps = cached.gaps(TENANT, "c-1", "upgrade", now=two_days_on)
        assert counts(cached)[0] > hits  # served from Redis
        assert [(m.field, m.reason) for m in gaps.missing] == [("tier", "stale")]
        assert gaps.satisfied == []
    assert cached.get_profile(TENANT, "c-1").fields["tier"].value == "pro"
    # Collected after the time judged: fresh, not stale.
    assert cached.gaps(TENANT, "c-1", "upgrade", now=NOW - timedelta(hours=3)).satisfied == ["tier"]


# --- keys ------------------------------------------------------------------------------------

IDS = st.text(min_size=1, max_size=12)


def hash_tag(key: str) -> str:
    """What Redis Cluster hashes: the text between the first '{' and the next '}'."""
    start = key.index("{")
    return key[start + 1 : key.index("}", start)]


@settings(max_examples=500, deadline=None)
@given(IDS, IDS, IDS, IDS)
def test_keys_of_different_ids_never_collide(a: str, b: str, c: str, d: str) -> None:
    keys = Keys("ccv")
    first, second = keys.profile(a, b).key, keys.profile(c, d).key
    assert (first == second) == ((a, b) == (c, d))
    assert (keys.customer_gen(a, b) == keys.customer_gen(c, d)) == ((a, b) == (c, d))
    assert (keys.scenario(a, b).key == keys.scenario(c, d).key) == ((a, b) == (c, d))
    # One tenant, one hash slot; another tenant, another tag.
    assert hash_tag(first) == hash_tag(keys.epoch(a)) == hash_tag(keys.definitions(a).key)
    assert (hash_tag(first) == hash_tag(second)) == (a == c)
    assert Keys.is_entry(first) and not Keys.is_entry(keys.customer_gen(a, b))


@pytest.mark.parametrize("prefix", ["", "a{b", "a}b"])
def test_a_prefix_that_would_break_the_hash_tag_is_refused(prefix: str) -> None:
    from ccv.errors import UsageError

    with pytest.raises(UsageError):
        Keys(prefix)


LOOKALIKES = [
    ("a", "b:c"),
    ("a:b", "c"),
    ("a", "b c"),
    ("a b", "c"),
    ("{a}", "b"),
    ("a}", "{b"),
    ("a%3Ab", "c"),
    ("ü", "ç"),
    ("u\u0308", "c\u0327"),  # the same letters decomposed: other ids
]


def test_lookalike_ids_keep_their_own_cached_values(cached: Vault) -> None:
    for index, (tenant, customer) in enumerate(LOOKALIKES):
        cached.save_field(
            tenant, customer, "nickname", index, validation_mode=ValidationMode.DISABLED
        )
    for _ in range(2):
        for index, (tenant, customer) in enumerate(LOOKALIKES):
            assert nickname_of(cached, tenant, customer) == index
    hits, misses = counts(cached)
    assert hits >= len(LOOKALIKES)


def nickname_of(vault: Vault, tenant: str, customer: str) -> Any:
    return vault.get_profile(tenant, customer).fields["nickname"].value


# --- a read racing a write -------------------------------------------------------------------


def test_read_that_raced_a_write_does_not_cache_the_old_value(
    cached: Vault, redis_target: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached.save_field(TENANT, "c-1", "nickname", "old")
    assert cached.cache is not None
    profile_key = cached.cache.keys.profile(TENANT, "c-1").key
    read_done, go_on = threading.Event(), threading.Event()
    fill = RedisCache.fill
    held: list[bool] = []

    def fill_after_the_write(self: RedisCache, snapshot: Any, entry: Any, payload: Any) -> bool:
        if entry.key == profile_key and not held:
            held.append(True)
            read_done.set()  # the database has answered with the old rows
            assert go_on.wait(10)
        return fill(self, snapshot, entry, payload)

    monkeypatch.setattr(RedisCache, "fill", fill_after_the_write)
    seen: dict[str, Any] = {}
    reader = threading.Thread(target=lambda: seen.update(value=nickname(cached)))
    reader.start()
    assert read_done.wait(10)
    cached.save_field(TENANT, "c-1", "nickname", "new")  # commits and invalidates meanwhile
    go_on.set()
    reader.join(10)
    assert seen["value"] == "old"  # that read began before the write: it may return the old
    assert redis_target.client.get(profile_key) is None  # but it did not cache it
    assert nickname(cached) == "new"
    assert nickname(cached) == "new"


def test_fill_from_a_snapshot_taken_before_an_invalidation_is_refused(cached: Vault) -> None:
    cache = cached.cache
    assert cache is not None
    entry = cache.keys.profile(TENANT, "c-9")
    before = cache.read(TENANT, [entry])
    assert before is not None
    from ccv.store.outbox import Owed

    cache.deliver(Owed(TENANT, {"c-9"}))
    assert not cache.fill(before, entry, {"fields": [], "assets": [], "analysis": {}})
    after = cache.read(TENANT, [entry])
    assert after is not None
    assert cache.fill(after, entry, {"fields": [], "assets": [], "analysis": {}, "exists": True})
    assert cache.read(TENANT, [entry]).get(entry) is not None  # type: ignore[union-attr]
