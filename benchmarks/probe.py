"""Which SQL statements one ccv call runs, and how long each takes (for the report's extras).

Listens on the vault's SQLAlchemy engine for the duration of one call; the timed loops run
without it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, event


def statements(engine: Engine, function: Callable[[], Any]) -> dict[str, Any]:
    """Run `function` once; return the statements it executed with their wall times (ms)."""
    seen: list[dict[str, Any]] = []

    def before(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool):
        conn.info["bench_started"] = time.perf_counter()

    def after(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool):
        started = conn.info.pop("bench_started", None)
        elapsed = (time.perf_counter() - started) * 1000 if started is not None else 0.0
        seen.append({"ms": round(elapsed, 3), "sql": " ".join(statement.split())[:100]})

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        started = time.perf_counter()
        function()
        total = (time.perf_counter() - started) * 1000
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    database = sum(s["ms"] for s in seen)
    return {
        "count": len(seen),
        "total_ms": round(total, 3),
        "sql_ms": round(database, 3),
        "statements": seen,
    }
