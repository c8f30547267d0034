"""Time parsing and formatting: every time ccv handles is timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_time(text: str) -> datetime:
    """Parse ISO 8601 (with offset or `Z`) or a plain date (00:00 UTC that day).

    A datetime without an offset is read as UTC. Raises ValueError with a user-facing sentence.
    """
    try:  # the common case: a full ISO 8601 time with an offset or Z
        parsed = datetime.fromisoformat(text)
    except ValueError:
        pass
    else:
        if len(text) > 10:
            return parsed if parsed.tzinfo is UTC else ensure_utc(parsed)
    raw = text.strip()
    if not raw:
        raise ValueError("empty time")
    if len(raw) == 10:
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            raise ValueError(f"'{raw}' is not an ISO 8601 date or time") from None
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(raw[:-1] + "+00:00" if raw[-1] in "zZ" else raw)
    except ValueError:
        raise ValueError(f"'{raw}' is not an ISO 8601 date or time") from None
    return ensure_utc(parsed)


def ensure_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time is out of range once converted to UTC") from None


def format_time(value: datetime | None) -> str | None:
    return None if value is None else ensure_utc(value).isoformat()
