"""What every metric function gets: the database, a vault on it, a raw connection, the dataset."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.backend import Backend
from benchmarks.dataset import Dataset

if TYPE_CHECKING:
    from ccv.vault import Vault


@dataclass
class Context:
    backend: Backend
    workdir: Path
    log: Callable[[str], None]
    seed: int = 20261128
    # Work sizes, scaled down by --quick.
    reads: int = 2000
    writes: int = 1000
    traces: int = 200
    dataset: Dataset | None = None
    _closers: list[Callable[[], None]] = field(default_factory=list)

    @cached_property
    def rng(self) -> random.Random:
        return random.Random(self.seed)

    @property
    def data(self) -> Dataset:
        if self.dataset is None:
            raise RuntimeError("this metric needs the benchmark dataset")
        return self.dataset

    @cached_property
    def vault(self) -> Vault:
        """A ccv Vault on the benchmark database (no Redis: these are database figures)."""
        from ccv.config import Settings
        from ccv.vault import Vault

        vault = Vault(Settings(database_url=self.backend.ccv_url, redis_url=None))
        self._closers.append(vault.close)
        return vault

    @cached_property
    def cached_vault(self) -> Vault | None:
        """A vault with the Redis cache of $CCV_REDIS_URL under its own prefix (`ccvbench`),
        or None when no Redis is configured (the cache metrics are then n/a)."""
        import os

        url = os.environ.get("CCV_REDIS_URL")
        if not url:
            return None
        from ccv.config import Settings
        from ccv.vault import Vault

        vault = Vault(
            Settings(database_url=self.backend.ccv_url, redis_url=url, cache_prefix="ccvbench")
        )
        self._closers.append(vault.close)
        return vault

    @cached_property
    def raw(self) -> Any:
        """One persistent raw connection (psycopg 3 or sqlite3), autocommit."""
        conn = self.backend.connect()
        self._closers.append(conn.close)
        return conn

    def sample_customers(self, count: int) -> list[str]:
        """`count` distinct random customers of the dataset (with replacement if it is small)."""
        scale = self.data.scale
        if count <= scale:
            indexes = self.rng.sample(range(scale), count)
        else:
            indexes = [self.rng.randrange(scale) for _ in range(count)]
        return [self.data.customer(i) for i in indexes]

    def close(self) -> None:
        while self._closers:
            closer = self._closers.pop()
            with contextlib.suppress(Exception):  # closing is best effort
                closer()
        self.__dict__.pop("vault", None)
        self.__dict__.pop("cached_vault", None)
        self.__dict__.pop("raw", None)
