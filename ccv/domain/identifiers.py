"""Identifier rules of SPEC §2: tenants, customers, slugs, field names and item ids."""

from __future__ import annotations

import re
import uuid
from functools import lru_cache

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
FIELD_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
MAX_FIELD_NAME = 50
MAX_KEY = 128
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def check_key(value: object, what: str) -> str:
    """A tenant or customer id: 1-128 characters, no control characters."""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string")
    return _check_key(value, what)


@lru_cache(maxsize=65536)  # imports repeat the same few tenants and customers many times
def _check_key(value: str, what: str) -> str:
    if not 1 <= len(value) <= MAX_KEY:
        raise ValueError(f"{what} must be 1-{MAX_KEY} characters long")
    if _CONTROL.search(value):
        raise ValueError(f"{what} must not contain control characters")
    return value


def has_control(value: str) -> bool:
    """Whether `value` holds a control character (C0, DEL or C1)."""
    return _CONTROL.search(value) is not None


def check_slug(value: object, what: str) -> str:
    if not isinstance(value, str) or not SLUG_RE.fullmatch(value):
        raise ValueError(
            f"{what} must be a slug: lowercase letters, digits, '_', '.', '-', "
            "at most 64 characters"
        )
    return value


def check_field_name(value: object, what: str = "name") -> str:
    if isinstance(value, str):
        return _check_field_name(value, what)
    return _check_field_name(None, what)


@lru_cache(maxsize=4096)
def _check_field_name(value: str | None, what: str) -> str:
    if (
        not isinstance(value, str)
        or len(value) > MAX_FIELD_NAME
        or not FIELD_NAME_RE.fullmatch(value)
    ):
        raise ValueError(
            f"{what} must match ^[a-z_][a-z0-9_]*$ and be at most {MAX_FIELD_NAME} characters"
        )
    return value


def check_item_id(value: object, what: str = "id") -> str:
    """An item id is a UUID; it is stored in its canonical lowercase form."""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a UUID string")
    if _CANONICAL_UUID.fullmatch(value):
        return value
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError(f"{what} is not a UUID") from None


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def canonical_item_id(value: str) -> str | None:
    """The stored form of an item id as a user may type it (any case, with or without
    hyphens), or None when it is no UUID at all."""
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        return None


MIN_ID_PREFIX = 8
_PREFIX = re.compile(r"[0-9a-f-]+")


def item_id_prefix(value: str) -> str | None:
    """A short item id as a user types it (at least 8 hex digits of the stored, hyphenated
    form, any case), lowercased; None when it cannot be one."""
    text = value.strip().lower()
    if not _PREFIX.fullmatch(text) or sum(ch != "-" for ch in text) < MIN_ID_PREFIX:
        return None
    return text


def looks_short(value: str) -> bool:
    """Hex digits (and hyphens), but fewer than a prefix needs."""
    text = value.strip().lower()
    return bool(text) and bool(_PREFIX.fullmatch(text)) and item_id_prefix(text) is None
