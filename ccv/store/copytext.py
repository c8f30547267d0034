"""Bulk inserts on PostgreSQL: rows formatted as COPY text by ccv, sent by a writer thread.

psycopg's `Copy.write_row` adapts every value through its dumper machinery; for the few column
types of ccv's item tables a direct conversion to COPY text is several times cheaper, and a
`QueuedLibpqWriter` sends the data from a worker thread, so the server ingests one buffer while
the next is being formatted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import JSON, Boolean, Connection, DateTime, Float, Integer, Table

NULL = "\\N"
BUFFER_ROWS = 2000
_SPECIAL = re.compile(r"[\\\t\n\r]")
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def escape(value: str) -> str:
    """A string as a COPY text value: backslash, tab, newline and carriage return escaped."""
    return value.translate(_ESCAPES) if _SPECIAL.search(value) else value


def json_text(value: Any) -> str:
    return escape(orjson.dumps(value).decode())


def timestamp(value: datetime) -> str:
    if value.tzinfo is None:  # ccv's naive datetimes are UTC (see UTCDateTime)
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def _boolean(value: bool) -> str:
    return "t" if value else "f"


def _number(value: float) -> str:
    return repr(value)


def _text(value: Any) -> str:
    return escape(value if isinstance(value, str) else str(value))


def _converter(column: Any) -> Callable[[Any], str]:
    """The text conversion for a column, by its type (`_type_affinity` sees through
    variants and decorators such as UTCDateTime)."""
    affinity = column.type._type_affinity
    if affinity is JSON:
        return json_text
    if affinity is Boolean:
        return _boolean
    if affinity is DateTime:
        return timestamp
    if affinity in (Float, Integer):
        return _number
    return _text


def copy_rows(conn: Connection, table: Table, rows: Iterable[Mapping[str, Any]]) -> int:
    """COPY `rows` (dicts keyed by column name; a missing key is NULL) into `table`."""
    plan = [(column.name, _converter(column)) for column in table.columns]
    lines = (
        "\t".join(
            [NULL if (value := row.get(name)) is None else to_text(value) for name, to_text in plan]
        )
        for row in rows
    )
    return copy_lines(conn, table, [name for name, _ in plan], lines)


def copy_lines(conn: Connection, table: Table, columns: Sequence[str], lines: Iterable[str]) -> int:
    """COPY lines of text values (in the order of `columns`; the others take their defaults)
    into `table`, in the connection's transaction, as they come. Returns the lines sent."""
    import psycopg
    from psycopg.copy import QueuedLibpqWriter
    from sqlalchemy.exc import DBAPIError

    unknown = set(columns) - set(table.columns.keys())
    if unknown:
        raise ValueError(f"{table.name} has no column {sorted(unknown)[0]}")
    statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
    driver = conn.connection.driver_connection
    assert driver is not None
    sent = 0
    try:
        with (
            driver.cursor() as cursor,
            cursor.copy(statement, writer=QueuedLibpqWriter(cursor)) as copy,
        ):
            buffer: list[str] = []
            for line in lines:
                buffer.append(line)
                if len(buffer) >= BUFFER_ROWS:
                    copy.write("\n".join(buffer) + "\n")
                    sent += len(buffer)
                    buffer.clear()
            if buffer:
                copy.write("\n".join(buffer) + "\n")
                sent += len(buffer)
    except psycopg.Error as exc:  # the engine's error translation sees it like any other
        raise DBAPIError(statement, None, exc) from exc
    return sent
