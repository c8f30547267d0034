"""`ccv profile export` (SPEC §12): customers' data as import records, streamed.

Every version of every field and asset (ids, lineage and stored state as they are), every
channel identity, and an alias record for every customer merged into an exported one, as JSON
Lines that `ccv profile import` reads back: into an empty vault, on either dialect, it gives the
same `profile show --history`. Values are written in clear (a data-access request, a move from
SQLite to PostgreSQL); every exported customer gets an `export` audit event.

Memory stays flat whatever the tenant's size: customers are read in keyset chunks, inside one
read-only snapshot, and each chunk's lines are written before the next is read.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from sqlalchemy import Connection, select

from ccv.domain.enums import ItemKind
from ccv.domain.models import ExportResult
from ccv.domain.timeutil import utcnow
from ccv.errors import UsageError
from ccv.service.profiles import not_found
from ccv.service.writes import audit_row
from ccv.store import identities as ids
from ccv.store import items as store
from ccv.store.database import Database
from ccv.store.tables import assets, fields, identities, profiles

# Customers per read: each chunk is one indexed query per table.
CHUNK = 500

# What an import record of a version carries, customer first (rows are tallied by it): every
# column but the tenant (given once per line), the vault's own bookkeeping (content hash,
# validity) and what belongs to the vault that stores it (when it wrote the row, the id of its
# definition).
_LEFT_OUT = frozenset(
    ("tenant", "customer", "content_hash", "invalid", "updated_at", "field_definition_id")
)
_FIELD_COLUMNS = ("customer", *(str(c.name) for c in fields.c if c.name not in _LEFT_OUT))
_ASSET_COLUMNS = ("customer", *(str(c.name) for c in assets.c if c.name not in _LEFT_OUT))
_IDENTITY_COLUMNS = ("customer", "channel", "channel_user_id", "verified", "linked_at", "source")


@dataclass
class ExportCounts:
    customers: int = 0
    fields: int = 0
    assets: int = 0
    identities: int = 0
    aliases: int = 0
    per_customer: dict[str, list[int]] = field(default_factory=dict)  # the chunk being written

    @property
    def records(self) -> int:
        return self.fields + self.assets + self.identities + self.aliases


def _line(kind: str, tenant: str, columns: Sequence[str], row: Sequence[Any]) -> bytes:
    record: dict[str, Any] = {"kind": kind, "tenant": tenant}
    for key, value in zip(columns, row, strict=True):
        # Absent and null read the same on import; a field's value is kept even when null.
        if value is not None and value != {} or key == "value":
            record[key] = value
    return orjson.dumps(record) + b"\n"


def _chunk_rows(
    conn: Connection, tenant: str, customers: Sequence[str]
) -> Iterator[tuple[str, str, bytes]]:
    """(kind, customer, line) for every version and identity of `customers`, per customer:
    fields, then assets, by name, then `collected_at` and id; then identities."""
    for kind, table, columns in (
        (ItemKind.FIELD.value, fields, _FIELD_COLUMNS),
        (ItemKind.ASSET.value, assets, _ASSET_COLUMNS),
        ("identity", identities, _IDENTITY_COLUMNS),
    ):
        order = (
            (table.c.customer, table.c.channel, table.c.channel_user_id)
            if table is identities
            else (table.c.customer, table.c.name, table.c.collected_at, table.c.id)
        )
        query = (
            select(*(table.c[name] for name in columns))
            .where(table.c.tenant == tenant, table.c.customer.in_(list(customers)))
            .order_by(*order)
            .execution_options(yield_per=2000)  # a server-side cursor on PostgreSQL
        )
        for row in conn.execute(query):
            yield kind, row[0], _line(kind, tenant, columns, row)


def _all_customers(conn: Connection, tenant: str) -> Iterator[list[str]]:
    """The tenant's customers that are not aliases, in keyset chunks by id."""
    after: str | None = None
    while True:
        query = select(profiles.c.customer).where(
            profiles.c.tenant == tenant, profiles.c.merged_into.is_(None)
        )
        if after is not None:
            query = query.where(profiles.c.customer > after)
        chunk = list(conn.execute(query.order_by(profiles.c.customer).limit(CHUNK)).scalars())
        if not chunk:
            return
        yield chunk
        after = chunk[-1]


def _aliases(
    conn: Connection, tenant: str, targets: Sequence[str] | None
) -> list[tuple[str, str, datetime | None]]:
    """(alias, merged_into, merged_at) of the tenant's aliases (or those of `targets`)."""
    query = select(profiles.c.customer, profiles.c.merged_into, profiles.c.merged_at).where(
        profiles.c.tenant == tenant, profiles.c.merged_into.is_not(None)
    )
    if targets is not None:
        query = query.where(profiles.c.merged_into.in_(list(targets)))
    return [tuple(row) for row in conn.execute(query.order_by(profiles.c.customer))]


def resolve_customers(db: Database, tenant: str, customers: Sequence[str]) -> list[str]:
    """The customers to export for the ones named: each alias stands for its final customer;
    a customer holding nothing is not found (exit 3), before anything is written."""
    chosen: list[str] = []
    with db.read() as conn:
        for customer in customers:
            final = ids.resolve(conn, tenant, customer)
            if not store.customer_exists(conn, tenant, final):
                raise not_found(tenant, customer)
            if final not in chosen:
                chosen.append(final)
    return chosen


def export_profiles(
    db: Database,
    tenant: str,
    write: Callable[[bytes], Any],
    *,
    customers: Sequence[str] | None = None,
    actor: str = "library",
    output: str = "stream",
) -> ExportCounts:
    """Write the records of `customers` (every customer of the tenant when None) through
    `write`, one JSON line each; returns the counts. Each customer written gets an `export`
    audit event (its counts, never a value), recorded chunk by chunk as the lines go out, so an
    export that fails halfway still says which customers left the vault."""
    if customers is not None and not customers:
        raise UsageError("name at least one customer, or pass --all")
    chosen = None if customers is None else resolve_customers(db, tenant, customers)
    counts = ExportCounts()
    with db.snapshot() as conn:
        chunks: Iterator[Sequence[str]] = (
            _all_customers(conn, tenant)
            if chosen is None
            else (chosen[i : i + CHUNK] for i in range(0, len(chosen), CHUNK))
        )
        for chunk in chunks:
            try:
                buffer: list[bytes] = []
                for kind, customer, line in _chunk_rows(conn, tenant, chunk):
                    buffer.append(line)
                    tally = counts.per_customer.setdefault(customer, [0, 0, 0])
                    tally[("field", "asset", "identity").index(kind)] += 1
                    if len(buffer) >= 1000:
                        write(b"".join(buffer))
                        buffer.clear()
                write(b"".join(buffer))
            finally:
                _audit(db, tenant, counts, actor, output)
        for alias, target, merged_at in _aliases(conn, tenant, chosen):
            record: dict[str, Any] = {
                "kind": "alias",
                "tenant": tenant,
                "customer": alias,
                "merged_into": target,
            }
            if merged_at is not None:
                record["merged_at"] = merged_at
            write(orjson.dumps(record) + b"\n")
            counts.aliases += 1
    return counts


def _audit(db: Database, tenant: str, counts: ExportCounts, actor: str, output: str) -> None:
    """One `export` event per customer of the chunk just written; counts it."""
    if not counts.per_customer:
        return
    now = utcnow()
    events = [
        audit_row(
            tenant,
            customer,
            None,
            None,
            None,
            "export",
            actor,
            now,
            details={"fields": f, "assets": a, "identities": i, "output": output},
        )
        for customer, (f, a, i) in counts.per_customer.items()
    ]
    with db.write() as conn:
        store.insert_audit(conn, events)
    for f, a, i in counts.per_customer.values():
        counts.fields += f
        counts.assets += a
        counts.identities += i
    counts.customers += len(counts.per_customer)
    counts.per_customer.clear()


def export_to(
    db: Database,
    tenant: str,
    output: Path | BinaryIO,
    *,
    customers: Sequence[str] | None = None,
    actor: str = "library",
) -> ExportResult:
    """Export to a stream, or to a file (gzip when it ends in `.gz`), which appears whole or
    not at all: the lines go to a temporary file beside it, renamed when complete."""
    if not isinstance(output, Path):
        counts = export_profiles(db, tenant, output.write, customers=customers, actor=actor)
        return _result(tenant, "-", counts)
    if output.is_dir():
        raise UsageError(f"--output {output} is a directory")
    partial = output.with_name(f".{output.name}.{os.getpid()}.part")
    try:
        with (
            gzip.open(partial, "wb", compresslevel=6)
            if output.suffix == ".gz"
            else partial.open("wb")
        ) as stream:
            counts = export_profiles(
                db, tenant, stream.write, customers=customers, actor=actor, output="file"
            )
        os.replace(partial, output)
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from None
    finally:
        partial.unlink(missing_ok=True)
    return _result(tenant, str(output), counts)


def _result(tenant: str, output: str, counts: ExportCounts) -> ExportResult:
    return ExportResult(
        tenant=tenant,
        output=output,
        customers=counts.customers,
        fields=counts.fields,
        assets=counts.assets,
        identities=counts.identities,
        aliases=counts.aliases,
        records=counts.records,
    )
