"""The cache on a real three-node Redis Cluster (tests/redis_cluster.py): cluster mode detected
from any node's URL, one tenant's keys in one hash slot, a full flush on every primary, and the
failure rules with the node that holds a tenant's slot killed mid-run. (Every test of
tests/integration/test_cache.py also runs on a cluster: `redis_target`'s "cluster" case.)"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis_cluster import RedisCluster3

from ccv.config import Settings
from ccv.domain.enums import ValidationMode
from ccv.vault import Vault

pytestmark = pytest.mark.redis_cluster

TENANT = "acme"
WARN = ValidationMode.WARN
SCHEMA = "tenant: acme\nagent: bot\nfields:\n  - name: nickname\n"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[RedisCluster3]:
    """A cluster of this test alone, whose nodes keep their keys across a restart."""
    import shutil

    if shutil.which("redis-server") is None:
        if _ci():
            pytest.fail("redis-server is required under CI=true")
        pytest.skip("redis-server is not on PATH")
    started = RedisCluster3(tmp_path / "cluster", persistent=True)
    try:
        started.start()
        yield started
    finally:
        started.stop()


def _ci() -> bool:
    import os

    return os.environ.get("CI") == "true"


def _vault(database_url: str, redis_url: str, tmp_path: Path, **overrides: object) -> Vault:
    values: dict[str, object] = {"redis_retry_seconds": 0.0, "redis_timeout_seconds": 1.0}
    values.update(overrides)
    vault = Vault(Settings(database_url=database_url, redis_url=redis_url, **values))
    schema = tmp_path / "bot.yaml"
    if not schema.exists():
        schema.write_text(SCHEMA, encoding="utf-8")
        vault.apply_schema([schema])
    return vault


def _nickname(vault: Vault, tenant: str = TENANT, customer: str = "c-1") -> object:
    return vault.get_profile(tenant, customer).fields["nickname"].value


def test_any_node_names_the_cluster_one_slot_per_tenant_and_a_full_flush_on_every_primary(
    database_url: str, cluster: RedisCluster3, tmp_path: Path
) -> None:
    from redis.cluster import RedisCluster

    tenants = [f"t{n}" for n in range(12)]
    url = f"redis://127.0.0.1:{cluster.nodes[2].port}/0"  # not the node the cluster was made from
    with _vault(database_url, url, tmp_path, cache_prefix="ccvcl") as vault:
        for tenant in tenants:
            vault.save_field(tenant, "c-1", "nickname", f"n-{tenant}", validation_mode=WARN)
            assert _nickname(vault, tenant) == f"n-{tenant}"
            assert _nickname(vault, tenant) == f"n-{tenant}"  # a hit
        assert vault.cache is not None and vault.cache.cluster
        assert vault.cache.counts().hits >= len(tenants)
        client = RedisCluster.from_url(url)
        keys = [k.decode() for k in client.scan_iter(match="ccvcl:{*", count=1000)]
        by_tenant: dict[str, set[int]] = {}
        for key in keys:
            tenant = key.split("{", 1)[1].split("}", 1)[0]
            by_tenant.setdefault(tenant, set()).add(client.keyslot(key))
        assert set(tenants) <= set(by_tenant)  # (acme: the schema apply's epoch)
        assert all(len(slots) == 1 for slots in by_tenant.values()), by_tenant
        holders = {client.get_node_from_key(key).port for key in keys}
        assert len(holders) >= 2, "the tenants' keys should spread over the primaries"
        deleted = vault.cache.flush()
        assert deleted is not None and deleted >= len(tenants)
        left = [k for node in cluster.nodes for k in node.client().scan_iter(match="ccvcl:{*:p:*")]
        assert left == []
        assert _nickname(vault, "t0") == "n-t0"  # read from the database again
        client.close()


WRITER = """
import sys
from ccv.config import Settings
from ccv.domain.enums import ValidationMode
from ccv.vault import Vault
database_url, redis_url = sys.argv[1:3]
settings = Settings(database_url=database_url, redis_url=redis_url, redis_retry_seconds=0,
                    redis_timeout_seconds=1.0)
with Vault(settings) as vault:
    vault.save_field("acme", "c-1", "nickname", "newest")
"""


def test_the_node_of_a_tenants_slot_killed_mid_run(
    database_url: str, cluster: RedisCluster3, tmp_path: Path
) -> None:
    from redis.cluster import RedisCluster

    with _vault(database_url, cluster.url, tmp_path) as vault:
        vault.save_field(TENANT, "c-1", "nickname", "old")
        assert _nickname(vault) == "old"
        assert _nickname(vault) == "old"
        assert vault.cache is not None
        key = vault.cache.keys.profile(TENANT, "c-1").key
        client = RedisCluster.from_url(cluster.url)
        holder = cluster.index_of(client.get_node_from_key(key).port)
        client.close()
        cluster.kill(holder)
        # Reads fall back to the database, writes succeed.
        for _ in range(5):
            assert _nickname(vault) == "old"
        vault.save_field(TENANT, "c-1", "nickname", "new")
        assert _nickname(vault) == "new"
        # Another process writes while the node is dead: its invalidation stays owed.
        subprocess.run(
            [sys.executable, "-c", WRITER, database_url, cluster.url], check=True, timeout=120
        )
        assert _nickname(vault) == "newest"
        cluster.restart(holder)
        # The node is back with its append-only file, the old entry in it, and it is not
        # served: the restart changed the cluster's incarnation, and what is owed goes first.
        node = cluster.nodes[holder].client()
        assert node.get(key) is not None
        for _ in range(5):
            assert _nickname(vault) == "newest"
        assert not vault.cache.owes_invalidations
    # A new process reads through the healed cluster and caches again.
    with _vault(database_url, cluster.url, tmp_path) as again:
        assert _nickname(again) == "newest"
        assert _nickname(again) == "newest"
        assert again.cache is not None and again.cache.counts().hits >= 1
