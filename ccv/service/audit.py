"""The audit trail: who acted (the actor every event records) and `ccv audit`'s listing.

An actor names a person or a run and how it acted: `user:ana via cli:profile expire`,
`prefect:expire/<flow run id>`. The person comes from `--actor` / `CCV_ACTOR`, else the OS
user (`user:<login>`).
"""

from __future__ import annotations

import base64
import functools
import getpass
import os
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select

from ccv.domain.identifiers import has_control
from ccv.domain.models import AuditEvent, AuditPage
from ccv.domain.timeutil import ensure_utc
from ccv.errors import UsageError
from ccv.store.database import Database
from ccv.store.tables import audit_events as audit

MAX_ACTOR = 100
MAX_LIMIT = 10_000
_VIA = " via "


def check_actor(value: str, what: str = "--actor") -> str:
    """An actor as given by a person: 1-100 characters, no control characters."""
    value = value.strip()
    if not 1 <= len(value) <= MAX_ACTOR or has_control(value):
        raise UsageError(f"{what} must be 1-{MAX_ACTOR} characters without control characters")
    return value


def person(given: str | None = None) -> str:
    """Who acts: `given`, else `$CCV_ACTOR`, else `user:<OS login>`."""
    if given:
        return check_actor(given)
    configured = os.environ.get("CCV_ACTOR")
    if configured:
        return check_actor(configured, "CCV_ACTOR")
    return _os_user()


@functools.cache
def _os_user() -> str:
    try:
        login = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
        login = f"uid{os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return f"user:{login}"


def acting(how: str, who: str | None = None) -> str:
    """The actor an event records: `<who> via <how>` (`how`: `cli:profile show`, `library`)."""
    return f"{person(who)}{_VIA}{how}"


# --- the listing ---------------------------------------------------------------------------------


def _cursor(at: datetime, event_id: int) -> str:
    text = f"{ensure_utc(at).isoformat()}|{event_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _after(cursor: str) -> tuple[datetime, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at, _, event_id = base64.urlsafe_b64decode(padded.encode()).decode().partition("|")
        return ensure_utc(datetime.fromisoformat(at)), int(event_id)
    except (ValueError, UnicodeDecodeError):
        raise UsageError("--cursor: not a cursor printed by `ccv audit`") from None


def list_events(
    db: Database,
    tenant: str,
    *,
    customer: str | None = None,
    item_id: str | None = None,
    event: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> AuditPage:
    """The tenant's events newest first (`since` inclusive, `until` exclusive), at most
    `limit`; a keyset page: `cursor` (a page's `next_cursor`) continues after its last event.

    `actor` matches the whole actor or its person (`user:ana` matches `user:ana via cli:...`).
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise UsageError(f"--limit must be 1-{MAX_LIMIT}")
    query = select(audit).where(audit.c.tenant == tenant)
    if customer is not None:
        query = query.where(audit.c.customer == customer)
    if event is not None:
        query = query.where(audit.c.event == event)
    if actor is not None:
        query = query.where(
            or_(audit.c.actor == actor, audit.c.actor.startswith(actor + _VIA, autoescape=True))
        )
    if since is not None:
        query = query.where(audit.c.at >= since)
    if until is not None:
        query = query.where(audit.c.at < until)
    if cursor is not None:
        at, last = _after(cursor)
        query = query.where(or_(audit.c.at < at, and_(audit.c.at == at, audit.c.id < last)))
    query = query.order_by(audit.c.at.desc(), audit.c.id.desc()).limit(limit + 1)
    with db.read() as conn:
        if item_id is not None:  # a full id or a unique prefix (ccv.service.ids)
            from ccv.service.ids import resolve_audited_id

            wanted = resolve_audited_id(conn, tenant, item_id.strip().lower())
            query = query.where(audit.c.item_id == wanted)
        rows = conn.execute(query).all()
    truncated = len(rows) > limit
    rows = rows[:limit]
    return AuditPage(
        events=[_event(row) for row in rows],
        truncated=truncated,
        next_cursor=_cursor(rows[-1].at, rows[-1].id) if truncated else None,
    )


def _event(row: Any) -> AuditEvent:
    return AuditEvent(
        at=row.at,
        tenant=row.tenant,
        customer=row.customer,
        item_id=row.item_id,
        kind=row.item_kind,
        name=row.item_name,
        event=row.event,
        from_status=row.from_status,
        to_status=row.to_status,
        actor=row.actor,
        detail=row.details or {},
    )
