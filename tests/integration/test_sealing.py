"""Sealed cache entries (ccv.store.sealing) on both dialects: one key per tenant, created once
and shared by every process, and an entry opens only under its own tenant and Redis key."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from ccv.store.database import Database
from ccv.store.sealing import Sealer
from ccv.store.tables import cache_keys

PLAIN = b'["run", ["1"], {"email": "ana@example.com"}]'


def key_rows(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(cache_keys)).scalar_one())


def test_an_entry_opens_only_under_its_tenant_and_key(database_url: str) -> None:
    db = Database(database_url)
    sealer = Sealer(db)
    sealed = sealer.seal("acme", "ccv:{acme}:p:c-1", PLAIN)
    assert PLAIN not in sealed and b"ana@example.com" not in sealed
    assert sealer.open("acme", "ccv:{acme}:p:c-1", sealed) == PLAIN
    # Copied under another customer's key, or read as another tenant's: a miss.
    assert sealer.open("acme", "ccv:{acme}:p:c-2", sealed) is None
    assert sealer.open("globex", "ccv:{acme}:p:c-1", sealed) is None
    tampered = bytearray(sealed)
    tampered[-1] ^= 1
    assert sealer.open("acme", "ccv:{acme}:p:c-1", bytes(tampered)) is None
    assert sealer.open("acme", "ccv:{acme}:p:c-1", sealed[:12]) is None
    # Two seals of the same entry differ (fresh nonce), and both open.
    again = sealer.seal("acme", "ccv:{acme}:p:c-1", PLAIN)
    assert again != sealed
    assert sealer.open("acme", "ccv:{acme}:p:c-1", again) == PLAIN
    assert key_rows(db) == 2  # acme and globex
    db.dispose()


def test_processes_share_the_key_created_first(database_url: str) -> None:
    databases = [Database(database_url) for _ in range(4)]
    sealers = [Sealer(db) for db in databases]
    sealed: list[bytes] = []
    barrier = threading.Barrier(len(sealers))

    def seal(sealer: Sealer) -> None:
        barrier.wait()
        sealed.append(sealer.seal("acme", "k", PLAIN))

    threads = [threading.Thread(target=seal, args=(s,)) for s in sealers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(sealed) == len(sealers)
    # Whichever sealer made an entry, every other opens it: one key won the race.
    assert all(s.open("acme", "k", entry) == PLAIN for s in sealers for entry in sealed)
    assert key_rows(databases[0]) == 1
    for db in databases:
        db.dispose()
