"""Import capability: profile records from JSON Lines, JSON arrays and wide CSV files.

One run is one transaction: valid records are stored, invalid ones are listed by file:line,
and a dry run does the same work and rolls it back.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import hashlib
import io
import json
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection

from ccv import observe
from ccv.domain.definitions import FieldRules
from ccv.domain.enums import ItemKind, SourceItemType, Status, ValidationMode
from ccv.domain.identifiers import FIELD_NAME_RE, MAX_FIELD_NAME, is_uuid
from ccv.domain.lifecycle import find_cycle_members
from ccv.domain.models import ImportIssue, ImportResult
from ccv.domain.records import (
    Parsed,
    ParsedAlias,
    ParsedIdentity,
    ParsedRecord,
    RecordError,
    is_alias_record,
    is_identity_record,
    parse_alias,
    parse_identity,
    parse_record,
)
from ccv.domain.timeutil import utcnow
from ccv.domain.validators import coerce_cell, failure_code
from ccv.errors import BackendError, FindingsError, UsageError
from ccv.service.profiles import refill_current
from ccv.service.writes import NewItem, store_items
from ccv.store import copytext, outbox
from ccv.store import items as store
from ccv.store.copytext import NULL, escape, json_text
from ccv.store.database import Database
from ccv.store.definitions import tenant_rules

if TYPE_CHECKING:
    from ccv.store.cache import RedisCache
    from ccv.store.outbox import Owed

# Ids of records given without one: a hash of the record as written, in its own namespace.
RECORD_NAMESPACE = uuid.UUID("6f0e8c1a-5d2b-4c39-9a51-3c1f0d7e2b44")
Progress = Callable[[int, int], None]


@dataclass(slots=True)
class Incoming:
    """One record as read from a file, before any rule is applied."""

    file: str
    line: int
    raw: Any
    error: str | None = None
    csv_cell: bool = False


@dataclass(slots=True)
class Candidate:
    incoming: Incoming
    record: ParsedRecord
    id: str
    content_hash: str
    collected_at: datetime
    expires_at: datetime | None
    orphaned: bool = False


# What went wrong, in words that never repeat the input (it may be PII).
_JSON_TROUBLE = (
    ("depth limit", "nested deeper than 1024 levels"),
    ("surrogate", "a string holds an unpaired UTF-16 surrogate"),
    ("end of data", "the record ends too early"),
    ("after document", "text after the end of the record"),
    ("infinity", "a number out of range"),
)


def _json_error(exc: orjson.JSONDecodeError, line: bytes) -> str:
    """`malformed JSON at column N`, with the reason when it is one a user can act on."""
    message = exc.msg.lower()
    if "utf-8" in message:
        # orjson checks the encoding first and does not say where: the first bad byte is.
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as bad:
            return f"malformed JSON at column {bad.start + 1}: not UTF-8 text"
    where = f"malformed JSON at column {exc.colno}"
    for marker, reason in _JSON_TROUBLE:
        if marker in message:
            return f"{where}: {reason}"
    if line[exc.pos : exc.pos + 3] in (b"NaN", b"Inf") or line[exc.pos : exc.pos + 4] == b"-Inf":
        return f"{where}: NaN and Infinity are not JSON numbers"
    return where


def read_jsonl(path: Path, data: bytes) -> Iterator[Incoming]:
    name = str(path)
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line or line.isspace():
            continue
        try:
            yield Incoming(name, number, orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            yield Incoming(name, number, None, error=_json_error(exc, line))


def read_json_array(path: Path, data: bytes) -> Iterator[Incoming]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        yield Incoming(str(path), 1, None, error="the file is not UTF-8 text")
        return
    decoder = json.JSONDecoder()
    index = len(text) - len(text.lstrip())
    if text[index : index + 1] != "[":
        yield Incoming(str(path), 1, None, error="a .json file must hold a JSON array of records")
        return
    index += 1
    while True:
        while index < len(text) and text[index] in " \t\r\n,":
            index += 1
        if index >= len(text):
            yield Incoming(str(path), text.count("\n") + 1, None, error="unterminated JSON array")
            return
        if text[index] == "]":
            return
        line = text.count("\n", 0, index) + 1
        try:
            value, index = decoder.raw_decode(text, index)
        except json.JSONDecodeError:
            # The rest of the array cannot be read reliably: report where it broke.
            yield Incoming(str(path), line, None, error="malformed JSON in the array")
            return
        yield Incoming(str(path), line, value)


def read_wide_csv(path: Path, data: bytes) -> Iterator[Incoming]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        yield Incoming(str(path), 1, None, error="the file is not UTF-8 text")
        return
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        yield Incoming(str(path), 1, None, error=f"malformed CSV: {exc}")
        return
    header = [name.strip() for name in header]
    if "customer" not in header:
        yield Incoming(str(path), 1, None, error="a wide CSV needs a 'customer' column")
        return
    for name in header:
        if name in ("customer", "tenant"):
            continue
        if len(name) > MAX_FIELD_NAME or not FIELD_NAME_RE.fullmatch(name):
            yield Incoming(
                str(path), 1, None, error=f"column '{name[:60]}' is not a valid field name"
            )
            return
    if len(set(header)) != len(header):
        yield Incoming(str(path), 1, None, error="the CSV header repeats a column")
        return
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Incoming(str(path), reader.line_num, None, error=f"malformed CSV: {exc}")
            return
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            yield Incoming(
                str(path), line, None, error=f"expected {len(header)} cells, found {len(row)}"
            )
            continue
        cells = dict(zip(header, row, strict=True))
        base = {"customer": cells["customer"].strip()}
        if cells.get("tenant", "").strip():
            base["tenant"] = cells["tenant"].strip()
        for name, cell in cells.items():
            if name in ("customer", "tenant") or not cell.strip():
                continue
            record = base | {"name": name, "value": cell, "source": "imported"}
            yield Incoming(str(path), line, record, csv_cell=True)


STDIN = Path("-")
_READERS = {
    ".jsonl": read_jsonl,
    ".ndjson": read_jsonl,
    ".json": read_json_array,
    ".csv": read_wide_csv,
}


def _sniff(data: bytes) -> Callable[[Path, bytes], Iterator[Incoming]]:
    """The format of piped records, from their first character: `[` a JSON array, `{` JSON
    Lines, anything else a wide CSV (its header)."""
    first = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if first == b"[":
        return read_json_array
    if first == b"{":
        return read_jsonl
    return read_wide_csv


def _gunzip(path: Path, data: bytes) -> bytes:
    import gzip
    import zlib

    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        reason = "it ends too early" if isinstance(exc, EOFError) else "not gzip data"
        raise UsageError(f"{path}: cannot decompress: {reason}") from None


def read_file(path: Path) -> Iterator[Incoming]:
    """The records of one file: `.jsonl`/`.ndjson`, `.json`, `.csv`, any of them gzipped
    (`.jsonl.gz`), or `-`, standard input (gzipped or not, its format told by its first
    character)."""
    if path == STDIN:
        data = sys.stdin.buffer.read()
        name = Path("<stdin>")
        if data[:2] == b"\x1f\x8b":
            data = _gunzip(name, data)
        return _sniff(data)(name, data)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not a file") from None
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror}") from None
    suffixes = [suffix.lower() for suffix in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        data = _gunzip(path, data)
        suffixes.pop()
    reader = _READERS.get(suffixes[-1] if suffixes else "")
    if reader is None:
        raise UsageError(
            f"{path}: unknown format, expected .jsonl, .json or .csv (optionally .gz), or - for "
            "standard input"
        )
    return reader(path, data)


class _Run:
    """The state of one import run for one tenant."""

    def __init__(
        self,
        tenant: str,
        rules: dict[str, FieldRules],
        mode: ValidationMode | None,
        now: datetime,
        result: ImportResult,
    ) -> None:
        self.tenant = tenant
        self.rules = rules
        self.mode = mode
        self.now = now
        self.result = result
        self.recheck: list[Candidate] = []  # stored ids whose record is written differently

    def reject(self, incoming: Incoming, message: str) -> None:
        self.result.rejected += 1
        self.result.errors.append(
            ImportIssue(file=incoming.file, line=incoming.line, message=message)
        )

    def warn(self, incoming: Incoming, message: str) -> None:
        self.result.warnings += 1
        self.result.warning_details.append(
            ImportIssue(file=incoming.file, line=incoming.line, message=message)
        )

    def check_value(self, incoming: Incoming, record: ParsedRecord) -> bool:
        """Validate a field value against the tenant's definitions; False if rejected."""
        rules = self.rules.get(record.name)
        if rules is None:
            mode = self.mode or ValidationMode.STRICT
            if not self.rules:
                message = (
                    f"field '{record.name}' is unknown: tenant {self.tenant} has no field "
                    "definitions; run `ccv schema apply` or pass --validation warn"
                )
            else:
                message = f"field '{record.name}' is not defined by any agent of {self.tenant}"
            record.columns["invalid"] = None
            return self._judge(incoming, mode, message, record.name, "undefined")
        record.value_type = record.value_type or rules.value_type
        # What the value is judged to be if a lenient mode stores it (ccv.service.validity).
        record.columns["invalid"] = True
        if record.value_type is not rules.value_type:
            return self._judge(
                incoming,
                self.mode or rules.mode,
                f"{record.name}: value_type {record.value_type.value} contradicts the "
                f"schema's {rules.value_type.value}",
                record.name,
                "value_type",
            )
        if incoming.csv_cell:
            try:
                record.columns["value"] = coerce_cell(record.columns["value"], rules.value_type)
            except ValueError as exc:
                return self._judge(
                    incoming, self.mode or rules.mode, f"{record.name} {exc}", record.name, "type"
                )
        error, definition_id = rules.check(record.columns["value"])
        record.columns["field_definition_id"] = definition_id
        record.columns["invalid"] = error is not None
        if error is not None:
            return self._judge(
                incoming,
                self.mode or rules.mode,
                f"{record.name} {error}",
                record.name,
                failure_code(error),
            )
        return True

    def candidate(
        self, incoming: Incoming, record: ParsedRecord, seen: dict[str, str]
    ) -> Candidate | None:
        """The record checked and identified, or None if it is rejected or repeats an earlier
        record of the run (`seen`: id -> content hash, in file order).

        Its id, unless given, and its content hash come from the record as written (with its
        tenant), in canonical JSON. This runs once per imported record: keep it lean.
        """
        is_field = record.kind is ItemKind.FIELD
        if is_field and not self.check_value(incoming, record):
            return None
        raw = incoming.raw
        if raw.get("tenant") != self.tenant:  # the hash covers the tenant, given or defaulted
            raw = dict(raw)
            raw["tenant"] = self.tenant
        canonical = orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)
        # PostgreSQL text cannot hold U+0000: refuse it on every dialect, per record.
        if b"u0000" in canonical and _has_nul(raw):
            self.reject(
                incoming, "the record contains a NUL character (U+0000), which cannot be stored"
            )
            return None
        digest = hashlib.sha256(canonical).hexdigest()
        item_id = record.id or str(uuid.uuid5(RECORD_NAMESPACE, digest))
        previous = seen.get(item_id)
        if previous is not None:
            if previous == digest:
                self.result.unchanged += 1
            else:
                self.reject(incoming, f"id {item_id} appears twice with different content")
            return None
        seen[item_id] = digest
        collected_at = record.collected_at or self.now
        expires_at = record.expires_at
        if expires_at is None and is_field:
            expires_at = self.expiry(record.name, collected_at)
        return Candidate(incoming, record, item_id, digest, collected_at, expires_at)

    def judge_stored(self, candidate: Candidate, stored: tuple[ItemKind, str, str]) -> None:
        """A record whose id is already stored: unchanged if the content is the same. The same
        record written another way (an export of what was imported from a file with fewer
        keys) is compared with the stored row by `settle`."""
        kind, digest, _status = stored
        if kind is not candidate.record.kind:
            self._conflict(candidate)
        elif digest == candidate.content_hash:
            self.result.unchanged += 1
        else:
            self.recheck.append(candidate)

    def settle(self, conn: Connection) -> None:
        """Judge the records `judge_stored` left for a look at the stored rows: unchanged when
        every key the record states holds the stored value (its state aside: a sweep may have
        changed that since), else a conflict."""
        for kind in (ItemKind.FIELD, ItemKind.ASSET):
            waiting = {c.id: c for c in self.recheck if c.record.kind is kind}
            rows = store.rows_by_id(conn, kind, self.tenant, list(waiting))
            for item_id, candidate in waiting.items():
                row = rows.get(item_id)
                if row is not None and _states_the_stored(candidate, row):
                    self.result.unchanged += 1
                else:
                    self._conflict(candidate)
        self.recheck.clear()

    def _conflict(self, candidate: Candidate) -> None:
        self.reject(
            candidate.incoming,
            f"id {candidate.id} is already stored with different content (conflict)",
        )

    def _judge(
        self, incoming: Incoming, mode: ValidationMode, message: str, field: str, code: str
    ) -> bool:
        """A value that fails its definitions: rejected, warned about or let through by `mode`
        (logged and counted by field and code unless validation is disabled; never the value)."""
        if mode is not ValidationMode.DISABLED:
            observe.validation_failure(field, code)
            observe.event(
                "validation_failure",
                self.tenant,
                field=field,
                code=code,
                mode=mode.value,
                file=incoming.file,
                line=incoming.line,
            )
        if mode is ValidationMode.STRICT:
            self.reject(incoming, message)
            return False
        if mode is ValidationMode.WARN:
            self.warn(incoming, message)
        return True

    def expiry(self, name: str, collected_at: datetime) -> datetime | None:
        """When a field collected at `collected_at` expires under its retention, if any."""
        rules = self.rules.get(name)
        if rules is None or rules.retention_days is None:
            return None
        try:
            return collected_at + timedelta(days=rules.retention_days)
        except OverflowError:  # past year 9999: as good as never
            return datetime.max.replace(tzinfo=UTC)


def _states_the_stored(candidate: Candidate, row: Any) -> bool:
    """Every key the record states holds what is stored for its id (absent keys state nothing;
    `status` and `superseded_*` are the version's state, not its content)."""
    record, raw = candidate.record, candidate.incoming.raw
    stated = {
        "customer": record.customer,
        "name": record.name,
        **{key: value for key, value in record.columns.items() if key in raw},
    }
    if "collected_at" in raw:
        stated["collected_at"] = record.collected_at
    if "expires_at" in raw:
        stated["expires_at"] = record.expires_at
    if record.value_type is not None:
        stated["value_type"] = record.value_type.value
    if record.source_item_type is not None:
        stated["source_item_type"] = record.source_item_type.value
    if record.source_item_id is not None:
        source = record.source_item_id
        stated["source_item_id"] = str(uuid.UUID(source)) if is_uuid(source) else source
    mapping = row._mapping
    return all(mapping[key] == value for key, value in stated.items())


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _row(candidate: Candidate, tenant: str, now: datetime) -> dict[str, Any]:
    record = candidate.record
    row = {
        "tenant": tenant,
        "id": candidate.id,
        "customer": record.customer,
        "name": record.name,
        "source_item_id": record.source_item_id,
        "source_item_type": record.source_item_type.value if record.source_item_type else None,
        "collected_at": candidate.collected_at,
        "updated_at": now,
        "expires_at": candidate.expires_at,
        "content_hash": candidate.content_hash,
    } | record.columns
    if record.kind is ItemKind.FIELD:
        row["value_type"] = record.value_type.value if record.value_type else None
        row.setdefault("field_definition_id", None)
        row.setdefault("invalid", None)
    return row


# A tenant's batch of at least this many records takes the streaming path on PostgreSQL.
STREAM_THRESHOLD = 500


def import_tenant(
    conn: Connection,
    tenant: str,
    batch: Sequence[tuple[Incoming, Parsed]],
    mode: ValidationMode | None,
    result: ImportResult,
    now: datetime,
    actor: str,
    fresh_ids: bool = False,
    streaming: bool = True,
    owed: Owed | None = None,
) -> list[dict[str, Any]]:
    """Apply every rule to one tenant's records and store the survivors.

    Returns the rows stored by the general path; first versions streamed in bulk (see
    `_stream_first_versions`) are not returned, as they carry no lineage to follow.
    `fresh_ids` says the ids were just generated, so no stored item can carry them;
    `streaming=False` keeps a large batch off the streaming path (every row is returned).
    `owed`: planned cache invalidations that the one-version path records on the way (see
    `store_items`); the caller records them otherwise (`owed_recorded` says which).
    """
    # Lock the customers' profile rows first: the same round trip brings the schema fingerprint
    # and says which profiles are new, and which customers are aliases of merged ones.
    aliases = [(i, r) for i, r in batch if isinstance(r, ParsedAlias)]
    customers = {r.customer for _, r in batch} | {r.merged_into for _, r in aliases}
    locked = store.upsert_and_lock_profiles(conn, tenant, customers, now)
    if locked.aliases:  # a record naming a merged customer acts on the one it was merged into
        for _, parsed in batch:
            if not isinstance(parsed, ParsedAlias):
                parsed.customer = locked.customer(parsed.customer)
    run = _Run(tenant, tenant_rules(conn, tenant, locked.fingerprint), mode, now, result)
    records = [(i, r) for i, r in batch if isinstance(r, ParsedRecord)]
    links = [(i, r) for i, r in batch if isinstance(r, ParsedIdentity)]
    if links:
        from ccv.service.identity import import_identities

        linked, same = import_identities(conn, tenant, links, now, actor, run.reject)
        result.inserted += linked
        result.unchanged += same
    seen: dict[str, str] = {}
    accepted: dict[str, Candidate] = {}
    looked_up: set[str] = set()  # ids whose stored state is known already
    if streaming and locked.created and len(records) >= STREAM_THRESHOLD:
        looked_up = _stream_first_versions(conn, run, records, locked.created, seen, accepted)
    else:
        for incoming, record in records:
            candidate = run.candidate(incoming, record, seen)
            if candidate is not None:
                accepted[candidate.id] = candidate

    # Re-imports: the same id with the same content changes nothing; other content conflicts.
    unknown = [item_id for item_id in accepted if item_id not in looked_up]
    existing = {} if fresh_ids else store.find_items(conn, tenant, unknown)
    for item_id, stored in existing.items():
        run.judge_stored(accepted.pop(item_id), stored)
    run.settle(conn)

    _resolve_lineage(conn, run, accepted)

    new = [
        NewItem(
            kind=c.record.kind,
            id=c.id,
            customer=c.record.customer,
            name=c.record.name,
            collected_at=c.collected_at,
            orphaned=c.orphaned,
            row=_row(c, tenant, now),
            history=c.record.history,
        )
        for c in accepted.values()
    ]
    outcome = store_items(conn, tenant, new, now, actor, locked=True, owed=owed)
    result.inserted += outcome.inserted
    result.superseded += outcome.superseded
    if aliases:  # last: an alias must hold nothing, whatever else the batch stored
        from ccv.service.merge import import_aliases

        made, same = import_aliases(conn, tenant, aliases, now, actor, run.reject)
        result.inserted += made
        result.unchanged += same
    if owed is not None and not outcome.owed_recorded and outcome.rows:
        outbox.write(conn, owed, now)
    return outcome.rows


def _stream_first_versions(
    conn: Connection,
    run: _Run,
    batch: Sequence[tuple[Incoming, ParsedRecord]],
    created: set[str],
    seen: dict[str, str],
    accepted: dict[str, Candidate],
) -> set[str]:
    """PostgreSQL bulk path: COPY each record that can only be a first version as it is checked,
    so the server stores one part of the file while the next is being validated.

    Such a record is a field of a customer whose profile this run created (nothing of theirs is
    stored), the only record of its (customer, name) in the run, with no vault source: it is
    stored active and nothing else changes. Every other accepted record is left in `accepted`
    for the general path, which runs after the COPY and sees the streamed rows. Duplicate ids
    are judged in file order across both (`seen`). A given id may already be stored under
    another customer, so given ids are looked up first; an id derived from the record's content
    can only be stored with the same content, hence for the same customer, who would not be new.
    Returns the given ids looked up, so the general path does not look them up again.
    """
    repeats = Counter((r.customer, r.name) for _, r in batch if r.kind is ItemKind.FIELD)
    given = {r.id for _, r in batch if r.id is not None}
    stored = store.find_items(conn, run.tenant, given)
    line = _FirstVersionLine(run.tenant, run.now)
    streamed = 0

    def first_versions() -> Iterator[str]:
        nonlocal streamed
        for incoming, record in batch:
            candidate = run.candidate(incoming, record, seen)
            if candidate is None:
                continue
            found = stored.get(candidate.id)
            if found is not None:
                run.judge_stored(candidate, found)
            elif (
                record.kind is ItemKind.FIELD
                and record.customer in created
                and repeats[(record.customer, record.name)] == 1
                and record.history is None
                and not _may_reference_the_vault(record)
            ):
                streamed += 1
                yield line(candidate)
            else:
                accepted[candidate.id] = candidate

    store.copy_lines(conn, ItemKind.FIELD, _FirstVersionLine.COLUMNS, first_versions())
    run.result.inserted += streamed
    return given


_ACTIVE = Status.ACTIVE.value


_VERDICT = {True: "t", False: "f", None: NULL}


class _FirstVersionLine:
    """A field record as a COPY text line of an active first version, built straight from the
    checked record: the bulk path's hot loop (ids, names, enums and hashes are already known to
    need no escaping)."""

    COLUMNS = (
        "tenant",
        "id",
        "customer",
        "name",
        "value",
        "value_type",
        "source",
        "source_item_id",
        "source_item_type",
        "source_metadata",
        "status",
        "confidence",
        "requires_confirmation",
        "verified",
        "verification_method",
        "collected_at",
        "updated_at",
        "expires_at",
        "field_definition_id",
        "content_hash",
        "invalid",
    )

    def __init__(self, tenant: str, now: datetime) -> None:
        self.tenant = escape(tenant)
        self.now = copytext.timestamp(now)
        self.customers: dict[str, str] = {}  # escaped customer ids: each has several records

    def _customer(self, customer: str) -> str:
        escaped = self.customers[customer] = escape(customer)
        return escaped

    def __call__(self, candidate: Candidate) -> str:
        # Every time is aware UTC (ccv.domain.timeutil); StrEnum members are their own text.
        record = candidate.record
        columns = record.columns
        value = columns["value"]
        metadata = columns["source_metadata"]
        method = columns["verification_method"]
        expires_at = candidate.expires_at
        confidence = columns["confidence"]
        return "\t".join(
            (
                self.tenant,
                candidate.id,
                self.customers.get(record.customer) or self._customer(record.customer),
                record.name,
                NULL if value is None else json_text(value),
                record.value_type or NULL,
                columns["source"],
                NULL if record.source_item_id is None else escape(record.source_item_id),
                record.source_item_type or NULL,
                json_text(metadata) if metadata else "{}",
                _ACTIVE,
                "1.0" if confidence == 1.0 else repr(confidence),
                "t" if columns["requires_confirmation"] else "f",
                "t" if columns["verified"] else "f",
                NULL if method is None else escape(method),
                candidate.collected_at.isoformat(),
                self.now,
                NULL if expires_at is None else expires_at.isoformat(),
                columns.get("field_definition_id") or NULL,
                candidate.content_hash,
                _VERDICT[columns.get("invalid")],
            )
        )


def _may_reference_the_vault(record: ParsedRecord) -> bool:
    source_type = record.source_item_type
    return record.source_item_id is not None and (source_type is None or source_type.is_vault_item)


def _resolve_lineage(conn: Connection, run: _Run, accepted: dict[str, Candidate]) -> None:
    """Infer source types, reject contradictions and cycles, mark dangling references."""
    vault_refs: dict[str, str] = {}
    for item_id, candidate in accepted.items():
        record = candidate.record
        source, given = record.source_item_id, record.source_item_type
        if source is None or (given is not None and not given.is_vault_item):
            continue
        if not is_uuid(source):
            if given is None:
                record.source_item_type = SourceItemType.EXTERNAL
            else:
                candidate.orphaned = True  # a vault reference that cannot exist
                run.warn(
                    candidate.incoming,
                    f"source {source[:60]} is not a vault item id: {_stored_as(record)}",
                )
            continue
        record.source_item_id = str(uuid.UUID(source))
        vault_refs[item_id] = record.source_item_id

    if not vault_refs:
        return  # no vault reference: nothing to infer, nothing dangling, no cycle possible
    outside = {ref for ref in vault_refs.values() if ref not in accepted}
    stored = {i: kind for i, (kind, _, _) in store.find_items(conn, run.tenant, outside).items()}
    for item_id, ref in list(vault_refs.items()):
        candidate = accepted[item_id]
        target = accepted[ref].record.kind if ref in accepted else stored.get(ref)
        if target is None:
            continue
        inferred = (
            SourceItemType.PROFILE_FIELD
            if target is ItemKind.FIELD
            else SourceItemType.PROFILE_ASSET
        )
        given = candidate.record.source_item_type
        if given is not None and given is not inferred:
            run.reject(
                candidate.incoming,
                f"source_item_type {given.value} contradicts the referenced item {ref}, "
                f"which is a {target.value}",
            )
            del accepted[item_id]
            del vault_refs[item_id]
            continue
        candidate.record.source_item_type = inferred

    edges: dict[str, str | None] = dict(vault_refs)
    # Only a record with a vault source can lie on a cycle.
    pointing_in = store.items_pointing_at(conn, run.tenant, vault_refs)
    if pointing_in:
        # Stored items that were waiting for one of these ids can close a cycle through the
        # vault: add the stored part of the graph.
        edges.update(dict(pointing_in))
        for item, src in store.source_edges(conn, run.tenant, set(vault_refs.values())).items():
            edges.setdefault(item, src)
    for item_id in sorted(find_cycle_members(edges)):
        if item_id in accepted:
            run.reject(accepted.pop(item_id).incoming, "the record is on a lineage cycle")
            vault_refs.pop(item_id, None)

    for item_id, ref in vault_refs.items():
        if ref not in accepted and ref not in stored:
            candidate = accepted[item_id]
            candidate.orphaned = True
            message = f"source {ref} is not in the vault: {_stored_as(candidate.record)}"
            run.warn(candidate.incoming, message)


def _stored_as(record: ParsedRecord) -> str:
    """How a record with a dangling source is stored: orphaned, unless it gives its state."""
    status = record.history.status if record.history is not None else Status.ORPHANED
    return f"stored as {status.value}"


def import_files(
    db: Database,
    paths: Sequence[Path],
    *,
    tenant: str | None = None,
    validation: ValidationMode | None = None,
    dry_run: bool = False,
    actor: str = "library",
    progress: Progress | None = None,
    cache: RedisCache | None = None,
) -> ImportResult:
    """Import every record of `paths` in one transaction (rolled back when `dry_run`)."""
    with gc_paused():
        incoming: list[Incoming] = []
        for path in paths:
            incoming.extend(read_file(path))
        return import_incoming(
            db,
            incoming,
            tenant=tenant,
            validation=validation,
            dry_run=dry_run,
            actor=actor,
            progress=progress,
            cache=cache,
        )


@contextmanager
def gc_paused() -> Iterator[None]:
    """Bulk loads allocate millions of objects that all live until the end of the run; the
    cyclic collector would rescan them again and again (about a fifth of the import time)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def import_incoming(
    db: Database,
    incoming: Sequence[Incoming],
    *,
    tenant: str | None = None,
    validation: ValidationMode | None = None,
    dry_run: bool = False,
    actor: str = "library",
    progress: Progress | None = None,
    now: datetime | None = None,
    cache: RedisCache | None = None,
) -> ImportResult:
    result = ImportResult(records=len(incoming), dry_run=dry_run)
    now = now or utcnow()
    by_tenant: dict[str, list[tuple[Incoming, Parsed]]] = {}
    # Progress counts each record twice: once checked, once stored.
    steps = 2 * len(incoming)
    for checked, item in enumerate(incoming, start=1):
        if progress is not None and checked % 5000 == 0:
            progress(checked, steps)
        if item.error is not None:
            result.rejected += 1
            result.errors.append(ImportIssue(file=item.file, line=item.line, message=item.error))
            continue
        try:
            record: Parsed
            if is_identity_record(item.raw):
                record = parse_identity(item.raw, tenant)
            elif is_alias_record(item.raw):
                record = parse_alias(item.raw, tenant)
            else:
                record = parse_record(item.raw, tenant)
        except RecordError as exc:
            result.rejected += 1
            result.errors.append(ImportIssue(file=item.file, line=item.line, message=str(exc)))
            continue
        by_tenant.setdefault(record.tenant, []).append((item, record))
    transaction = db.rollback_only() if dry_run else db.write()
    done = len(incoming)
    owed: list[Owed | None] = []
    with transaction as conn:
        for name in sorted(by_tenant):
            rows = import_tenant(conn, name, by_tenant[name], validation, result, now, actor)
            if not dry_run:  # `rows` leaves out streamed first versions: judge by the batch
                customers = touched_customers(conn, name, by_tenant[name], rows)
                owed.append(outbox.record(conn, name, customers=customers, now=now))
            done += len(by_tenant[name])
            if progress is not None:
                progress(done, steps)
    # Committed: now (never before) the cached copies of these customers may go.
    if not dry_run and result.superseded:
        observe.transitions("item", "any", Status.SUPERSEDED.value, result.superseded)
    observe.event(
        "import",
        next(iter(by_tenant)) if len(by_tenant) == 1 else None,
        tenants=len(by_tenant),
        records=result.records,
        inserted=result.inserted,
        superseded=result.superseded,
        unchanged=result.unchanged,
        rejected=result.rejected,
        warnings=result.warnings,
        dry_run=dry_run,
    )
    if cache is not None:
        for recorded in owed:
            cache.deliver(recorded)
    if progress is not None:
        progress(steps, steps)
    result.errors.sort(key=lambda issue: (issue.file, issue.line))
    result.warning_details.sort(key=lambda issue: (issue.file, issue.line))
    return result


def touched_customers(
    conn: Connection,
    tenant: str,
    batch: Sequence[tuple[Incoming, Parsed]],
    rows: Sequence[dict[str, Any]],
) -> set[str]:
    """Customers whose reads a stored batch can change: its own, and the owners of the assets
    its new fields derive from (an asset lists the fields derived from it)."""
    customers = {record.customer for _, record in batch}
    sources = {
        row["source_item_id"]
        for row in rows
        if row.get("source_item_type") == SourceItemType.PROFILE_ASSET.value
    }
    if sources:
        customers |= store.asset_owners(conn, tenant, sources)
    return customers


def _invalidate_and_refill(db: Database, cache: RedisCache, tenant: str, owed: Owed) -> None:
    """After a single write: drop the customers' cached copies, and cache again the profiles
    that were cached (someone is reading them). The refill reads after the commit and is
    stored against the generations the invalidation set, so a later write still wins; it is
    an optimisation, and a failure in it never fails the write that already committed."""
    snapshot = cache.deliver(owed)
    if snapshot is None:
        return
    for customer in sorted(owed.customers):
        if cache.keys.profile(tenant, customer).key in snapshot.dropped:
            with contextlib.suppress(BackendError):
                refill_current(db, cache, tenant, customer, snapshot)


def save_record(
    db: Database,
    tenant: str,
    raw: dict[str, Any],
    *,
    validation: ValidationMode | None,
    actor: str,
    fresh_id: bool,
    cache: RedisCache | None = None,
) -> dict[str, Any]:
    """Store one record through the import rules; return its stored row or raise FindingsError."""
    incoming = Incoming("save_field", 1, raw)
    try:
        record = parse_record(raw, tenant)
    except RecordError as exc:
        raise FindingsError(str(exc)) from None
    result = ImportResult(records=1)
    now = utcnow()
    planned = outbox.plan(tenant, customers=[record.customer])
    with db.write() as conn:
        rows = import_tenant(
            conn,
            tenant,
            [(incoming, record)],
            validation,
            result,
            now,
            actor,
            fresh_ids=fresh_id,
            streaming=False,
            owed=planned,
        )
        if result.errors:
            raise FindingsError(result.errors[0].message)
        owed = None
        if rows:  # the customer's row is recorded; add the asset owners whose reads change
            touched = touched_customers(conn, tenant, [(incoming, record)], rows)
            owed = outbox.extend(conn, planned, tenant, touched, now)
    if cache is not None and owed is not None:
        _invalidate_and_refill(db, cache, tenant, owed)
    if not rows:
        # The same id with the same content (an agent retrying a save): it is stored already.
        with db.read() as conn:
            found = store.get_item(conn, tenant, record.id or "")
        if found is None or found[0] is not ItemKind.FIELD:
            raise FindingsError(f"field {record.id} was stored and removed meanwhile")
        return dict(found[1]._mapping)
    return rows[0]
