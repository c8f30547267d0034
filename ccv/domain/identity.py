"""Channel identities (SPEC §10): what a channel and a channel user id may be, and how an id
that is an address or a number is masked in output."""

from __future__ import annotations

import re

from ccv.domain.identifiers import check_slug, has_control
from ccv.domain.validators import MASK, mask_value

MAX_CHANNEL_USER_ID = 256
MAX_SOURCE = 64
# Channels whose user ids are addresses or phone numbers: PII whatever they look like.
PII_CHANNELS = frozenset(
    {"email", "sms", "whatsapp", "voice", "phone", "telegram", "signal", "imessage", "rcs"}
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ().-]{5,}$")


def check_channel(value: object) -> str:
    return check_slug(value, "channel")


def check_channel_user_id(value: object) -> str:
    """1-256 characters, no control characters (kept exactly as given: ids are opaque)."""
    if not isinstance(value, str):
        raise ValueError("channel_user_id must be a string")
    if not 1 <= len(value) <= MAX_CHANNEL_USER_ID or has_control(value):
        raise ValueError(
            f"channel_user_id must be 1-{MAX_CHANNEL_USER_ID} characters without control characters"
        )
    return value


def check_source(value: object) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_SOURCE or has_control(value):
        raise ValueError(f"source must be 1-{MAX_SOURCE} characters without control characters")
    return value


def _digits(value: str) -> int:
    return sum(ch.isdigit() for ch in value)


def is_pii(channel: str, channel_user_id: str) -> bool:
    """An email address or a phone number, by its channel or by its shape."""
    if channel in PII_CHANNELS:
        return True
    if _EMAIL.fullmatch(channel_user_id):
        return True
    return bool(_PHONE.fullmatch(channel_user_id)) and _digits(channel_user_id) >= 7


def mask(channel: str, channel_user_id: str) -> str:
    """`a***@example.com` for an email address, `***67` for a number (its last two digits
    tell two numbers of one customer apart), `***` for any other PII id; others as they are."""
    if not is_pii(channel, channel_user_id):
        return channel_user_id
    if "@" in channel_user_id:
        masked = mask_value(channel_user_id, None)
        assert isinstance(masked, str)
        return masked
    if _PHONE.fullmatch(channel_user_id) and _digits(channel_user_id) >= 7:
        return MASK + "".join(ch for ch in channel_user_id if ch.isdigit())[-2:]
    return MASK


def describe(channel: str, channel_user_id: str) -> str:
    """`whatsapp ***67`: an identity in a message, masked (messages reach logs and terminals)."""
    return f"{channel} {mask(channel, channel_user_id)}"
