"""The unit of work: one engine per URL, read and write transactions owned by services."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from ccv.store.engine import backend_error, ensure_schema, make_engine, sqlite_busy_timeout

if TYPE_CHECKING:
    from ccv.store.reads import CurrentRows, FastReads

R = TypeVar("R")


class NoDriver:
    """Said by the driver reads where the database cannot be read that way."""


NO_DRIVER = NoDriver()


def _checked_engine(url: str, **options: bool) -> Engine:
    """An engine for a URL ccv supports, or a usage error saying which ones it does."""
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    from ccv.errors import UsageError

    try:
        return make_engine(url, **options)
    except (ArgumentError, NoSuchModuleError, ModuleNotFoundError):
        raise UsageError(
            "the database URL is not one ccv supports: use sqlite:///PATH or "
            "postgresql://USER@HOST:PORT/DB"
        ) from None


class Database:
    """Builds the engine on first use and checks the schema once per process."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Engine | None = None
        self._read_engine: Engine | None = None
        self._checked = False
        self._fast: FastReads | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = _checked_engine(self.url)
        return self._engine

    @property
    def read_engine(self) -> Engine:
        """PostgreSQL reads run in autocommit: every statement sees committed data (as READ
        COMMITTED would) without a BEGIN and COMMIT round trip each."""
        if self._read_engine is None:
            if self.engine.dialect.name == "postgresql":
                self._read_engine = _checked_engine(self.url, autocommit=True)
            else:
                self._read_engine = self.engine
        return self._read_engine

    @property
    def fast(self) -> FastReads | None:
        """The hot reads through the driver itself (`ccv.store.reads`), or None where the
        database cannot be read that way (an in-memory SQLite database)."""
        self.check_schema()  # first: a URL ccv cannot use is a usage error there
        if self._fast is None:
            from ccv.store.reads import FastReads

            self._fast = FastReads(self.url, sqlite_busy_timeout(self.url))
        return self._fast if self._fast.usable else None

    def _driver(self, work: Callable[[FastReads], R]) -> R | NoDriver:
        """`work` on the hot reads' connections; NO_DRIVER where there are none (see `fast`)."""
        fast = self.fast
        if fast is None:
            return NO_DRIVER
        try:
            return work(fast)
        except DBAPIError as exc:
            raise backend_error(exc, self.url) from exc

    def current_rows(self, tenant: str, customer: str, now: datetime) -> CurrentRows | None:
        """The customer's current view through the driver, or None (see `fast`)."""
        found = self._driver(lambda fast: fast.current(tenant, customer, now))
        return None if isinstance(found, NoDriver) else found

    def identity_row(
        self, tenant: str, channel: str, channel_user_id: str
    ) -> tuple[Any, ...] | None | NoDriver:
        """A stored identity through the driver: its columns, None when there is none,
        NO_DRIVER where the driver path cannot read (see `fast`)."""
        return self._driver(lambda fast: fast.identity(tenant, channel, channel_user_id))

    def lineage_rows(
        self, tenant: str, item_id: str, now: datetime
    ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]] | None:
        """An item's chain and dependents through the driver, or None (see `fast`)."""
        found = self._driver(lambda fast: fast.lineage(tenant, item_id, now))
        return None if isinstance(found, NoDriver) else found

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def check_schema(self) -> None:
        if not self._checked:
            ensure_schema(self.engine)
            self._checked = True

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[Connection]:
        self.check_schema()
        engine = self.engine if write else self.read_engine
        try:
            with engine.connect() as conn:
                if write:
                    conn = conn.execution_options(ccv_write=True)
                with conn.begin():
                    yield conn
        except DBAPIError as exc:
            raise backend_error(exc, self.url) from exc

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that commits when the block ends and rolls back on any error."""
        with self._transaction(True) as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self._transaction(False) as conn:
            yield conn

    @contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """A read-only transaction that sees one state of the database however long it runs
        (REPEATABLE READ on PostgreSQL; on SQLite a read transaction keeps its WAL snapshot)."""
        self.check_schema()
        try:
            with self.engine.connect() as conn:
                if self.dialect == "postgresql":
                    conn = conn.execution_options(
                        isolation_level="REPEATABLE READ", postgresql_readonly=True
                    )
                with conn.begin():
                    yield conn
        except DBAPIError as exc:
            raise backend_error(exc, self.url) from exc

    @contextmanager
    def rollback_only(self) -> Iterator[Connection]:
        """A write transaction that is always rolled back (dry runs see exact effects)."""
        self.check_schema()
        try:
            with self.engine.connect() as conn:
                conn = conn.execution_options(ccv_write=True)
                trans = conn.begin()
                try:
                    yield conn
                finally:
                    trans.rollback()
        except DBAPIError as exc:
            raise backend_error(exc, self.url) from exc

    def dispose(self) -> None:
        if self._fast is not None:
            self._fast.close()
        if self._read_engine is not None and self._read_engine is not self._engine:
            self._read_engine.dispose()
        self._read_engine = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
