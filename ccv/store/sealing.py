"""Cache entries sealed with a key per tenant that only the database holds.

Redis holds copies of customers' values, PII included. Every entry is sealed with AES-GCM-SIV
(authenticated; a repeated nonce would reveal only that two entries are equal) under its tenant's
key, with the entry's Redis key as associated data, so reading Redis alone (a dump, an RDB file, a
shared instance, a MONITOR) yields no value, and an entry copied under another key does not open.
The keys live in the `cache_keys` table: whoever can read them can read the values beside them
anyway. A process loads a tenant's key once, creating it on first use; an entry that does not
open (another key, a database restored from elsewhere) is a miss.
"""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from ccv.store.tables import cache_keys

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV

    from ccv.store.database import Database

KEY_BYTES = 32
NONCE_BYTES = 12


class Sealer:
    """Seals and opens cache entries of any tenant of one database. Thread-safe."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._ciphers: dict[str, AESGCMSIV] = {}
        self._lock = threading.Lock()

    def _cipher(self, tenant: str) -> AESGCMSIV:
        cipher = self._ciphers.get(tenant)
        if cipher is None:
            with self._lock:
                cipher = self._ciphers.get(tenant)
                if cipher is None:
                    from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV

                    cipher = AESGCMSIV(self._load(tenant))
                    self._ciphers[tenant] = cipher
        return cipher

    def _load(self, tenant: str) -> bytes:
        """The tenant's key, created on first use (two processes creating it at once: the first
        insert wins and both read it back)."""
        query = select(cache_keys.c.key).where(cache_keys.c.tenant == tenant)
        with self.db.read() as conn:
            key = conn.execute(query).scalar_one_or_none()
        if key is None:
            from sqlalchemy.dialects import postgresql, sqlite

            dialect = postgresql if self.db.dialect == "postgresql" else sqlite
            row = {"tenant": tenant, "key": os.urandom(KEY_BYTES), "created_at": datetime.now(UTC)}
            with self.db.write() as conn:
                conn.execute(dialect.insert(cache_keys).values(row).on_conflict_do_nothing())
                key = conn.execute(query).scalar_one()
        return bytes(key)

    def seal(self, tenant: str, name: str, plain: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._cipher(tenant).encrypt(nonce, plain, name.encode())

    def open(self, tenant: str, name: str, sealed: bytes | memoryview) -> bytes | None:
        """The plain entry, or None when it was not sealed under this key and name."""
        from cryptography.exceptions import InvalidTag

        data = bytes(sealed)
        if len(data) <= NONCE_BYTES:
            return None
        try:
            return self._cipher(tenant).decrypt(
                data[:NONCE_BYTES], data[NONCE_BYTES:], name.encode()
            )
        except InvalidTag:
            return None
