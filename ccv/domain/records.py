"""Structural rules for profile records (SPEC §3): keys, names, enums, ids and times."""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ccv.domain.enums import AssetType, ItemKind, Source, SourceItemType, Status, ValueType
from ccv.domain.identifiers import check_field_name, check_item_id, check_key
from ccv.domain.identity import check_channel, check_channel_user_id, check_source
from ccv.domain.timeutil import parse_time

COMMON_KEYS = ("kind", "tenant", "customer", "id", "name")
# A version's stored state, as `profile export` writes it (SPEC §12): a record that says it is
# history is stored so, as given, and takes no part in deciding which version is active.
HISTORY_KEYS = ("status", "superseded_by_id", "superseded_at")
FIELD_KEYS = frozenset(
    COMMON_KEYS
    + (
        "value",
        "value_type",
        "source",
        "source_item_id",
        "source_item_type",
        "source_metadata",
        "confidence",
        "requires_confirmation",
        "verified",
        "verification_method",
        "collected_at",
        "expires_at",
    )
    + HISTORY_KEYS
)
ASSET_KEYS = frozenset(
    COMMON_KEYS
    + (
        "asset_type",
        "storage_uri",
        "mime_type",
        "size_bytes",
        "checksum",
        "source_item_id",
        "source_item_type",
        "derived_from_tool",
        "verified",
        "collected_at",
        "expires_at",
    )
    + HISTORY_KEYS
)
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_WORD = re.compile(r"[a-z][a-z_]{0,19}")
MAX_SOURCE_ID = 256


class RecordError(ValueError):
    """A record that cannot be stored under any validation mode."""


def did_you_mean(word: str, choices: frozenset[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


@dataclass(slots=True)
class ParsedRecord:
    kind: ItemKind
    tenant: str
    customer: str
    id: str | None
    name: str
    columns: dict[str, Any]
    source_item_id: str | None
    source_item_type: SourceItemType | None
    collected_at: datetime | None
    expires_at: datetime | None
    value_type: ValueType | None = None
    history: History | None = None


@dataclass(slots=True, frozen=True)
class History:
    """The stored state a record carries (`status` other than active): kept as given."""

    status: Status
    superseded_by_id: str | None
    superseded_at: datetime | None


_MEMBERS: dict[type[Any], dict[Any, Any]] = {
    enum: {member.value: member for member in enum}
    for enum in (AssetType, ItemKind, Source, SourceItemType, Status, ValueType)
}


def _enum(value: Any, enum: type[Any], key: str) -> Any:
    try:
        return _MEMBERS[enum][value]
    except (KeyError, TypeError):
        allowed = ", ".join(member.value for member in enum)
        shown = value if isinstance(value, str) and len(value) <= 40 else "the value"
        raise RecordError(f"{key} '{shown}' is not one of: {allowed}") from None


_VALUES: dict[type[Any], dict[Any, str]] = {
    enum: {member.value: member.value for member in enum} for enum in _MEMBERS
}


_SOURCES = frozenset(_VALUES[Source])


def _enum_value(value: Any, enum: type[Any], key: str) -> str:
    """Like `_enum`, but the plain text of the member (what a column stores)."""
    try:
        return _VALUES[enum][value]
    except (KeyError, TypeError):
        _enum(value, enum, key)
        raise


def _time(value: Any, key: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise RecordError(f"{key} must be an ISO 8601 time string")
    try:
        return parse_time(value)
    except ValueError as exc:
        raise RecordError(f"{key}: {exc}") from None


def _opt_str(record: dict[str, Any], key: str, max_len: int = 4096) -> str | None:
    value = record.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise RecordError(f"{key} must be a string of at most {max_len} characters")
    return value


def _bool(record: dict[str, Any], key: str) -> bool:
    value = record.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise RecordError(f"{key} must be true or false")
    return value


def parse_record(record: Any, default_tenant: str | None) -> ParsedRecord:
    """Check one record's structure and normalise it; raise RecordError with one sentence."""
    if not isinstance(record, dict):
        raise RecordError("a record must be a JSON object")
    get = record.get
    kind = get("kind", "field")
    if kind != "field" and (not isinstance(kind, str) or kind not in _MEMBERS[ItemKind]):
        # A word is echoed (a typo is found at once); anything else may be data.
        if isinstance(kind, str) and _WORD.fullmatch(kind):
            raise RecordError(f"kind '{kind}' is not one of: field, asset, identity, alias")
        raise RecordError("kind is not one of: field, asset, identity, alias")
    kind = ItemKind.FIELD if kind == "field" else _enum(kind, ItemKind, "kind")
    allowed = FIELD_KEYS if kind is ItemKind.FIELD else ASSET_KEYS
    if not allowed.issuperset(record):
        key = next(key for key in record if key not in allowed)
        article = "an" if kind is ItemKind.ASSET else "a"
        raise RecordError(
            f"unknown key '{key}' for {article} {kind.value}{did_you_mean(key, allowed)}"
        )
    tenant = get("tenant", default_tenant)
    if tenant is None:
        raise RecordError("the record has no tenant and no --tenant was given")
    try:
        tenant = check_key(tenant, "tenant")
        if default_tenant is not None and tenant != default_tenant:
            raise RecordError(f"the record's tenant differs from --tenant {default_tenant}")
        if "customer" not in record:
            raise RecordError("missing key 'customer'")
        customer = check_key(record["customer"], "customer")
        if "name" not in record:
            raise RecordError("missing key 'name'")
        name = check_field_name(record["name"])
        item_id = get("id")
        if item_id is not None:
            item_id = check_item_id(item_id)
    except RecordError:
        raise
    except ValueError as exc:
        raise RecordError(str(exc)) from None

    source_item_id = get("source_item_id")
    if source_item_id is not None and (
        not isinstance(source_item_id, str) or not 0 < len(source_item_id) <= MAX_SOURCE_ID
    ):
        raise RecordError(f"source_item_id must be a string of 1-{MAX_SOURCE_ID} characters")
    source_item_type = get("source_item_type")
    if source_item_type is not None:
        source_item_type = _enum(source_item_type, SourceItemType, "source_item_type")
    if source_item_type is not None and source_item_id is None:
        raise RecordError("source_item_type is given without source_item_id")
    # The common case inline (None, a bool, a float in range); the helpers say what is wrong.
    collected_at = get("collected_at")
    if collected_at is not None:
        try:
            collected_at = parse_time(collected_at)
        except (ValueError, TypeError):
            collected_at = _time(collected_at, "collected_at")  # says what is wrong
    expires_at = get("expires_at")
    if expires_at is not None:
        expires_at = _time(expires_at, "expires_at")
    verified = get("verified")
    if verified is None:
        verified = False
    elif verified.__class__ is not bool:
        verified = _bool(record, "verified")

    columns: dict[str, Any]
    value_type: ValueType | None = None
    if kind is ItemKind.FIELD:
        if "value" not in record:
            raise RecordError("missing key 'value'")
        source = get("source", "imported")
        if source.__class__ is not str or source not in _SOURCES:
            source = _enum_value(source, Source, "source")
        metadata = get("source_metadata") or {}
        if metadata.__class__ is not dict:
            raise RecordError("source_metadata must be a JSON object")
        confidence = get("confidence", 1.0)
        if confidence.__class__ is not float or not 0 <= confidence <= 1:
            if (
                isinstance(confidence, bool)
                or not isinstance(confidence, int | float)
                or not math.isfinite(confidence)
                or not 0 <= confidence <= 1
            ):
                raise RecordError("confidence must be a number from 0 to 1")
            confidence = float(confidence)
        value_type = get("value_type")
        if value_type is not None:
            value_type = _enum(value_type, ValueType, "value_type")
        requires_confirmation = get("requires_confirmation")
        if requires_confirmation is None:
            requires_confirmation = False
        elif requires_confirmation.__class__ is not bool:
            requires_confirmation = _bool(record, "requires_confirmation")
        method = get("verification_method")
        columns = {
            "value": record["value"],
            "source": source,
            "source_metadata": metadata,
            "confidence": confidence,
            "requires_confirmation": requires_confirmation,
            "verified": verified,
            "verification_method": (
                None if method is None else _opt_str(record, "verification_method", 64)
            ),
        }
    else:
        asset_type = _enum(get("asset_type"), AssetType, "asset_type")
        size = get("size_bytes")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise RecordError("size_bytes must be a non-negative integer")
        checksum = _opt_str(record, "checksum", 64)
        if checksum is not None and not _SHA256.fullmatch(checksum):
            raise RecordError("checksum must be a sha256 hex digest (64 hex characters)")
        columns = {
            "asset_type": asset_type.value,
            "storage_uri": _opt_str(record, "storage_uri"),
            "mime_type": _opt_str(record, "mime_type", 255),
            "size_bytes": size,
            "checksum": checksum.lower() if checksum else None,
            "derived_from_tool": _opt_str(record, "derived_from_tool", 128),
            "verified": verified,
        }
    return ParsedRecord(
        kind=kind,
        tenant=tenant,
        customer=customer,
        id=item_id,
        name=name,
        columns=columns,
        source_item_id=source_item_id,
        source_item_type=source_item_type,
        collected_at=collected_at,
        expires_at=expires_at,
        value_type=value_type,
        history=_history(record, item_id, expires_at) if "status" in record else None,
    )


def _history(
    record: dict[str, Any], item_id: str | None, expires_at: datetime | None
) -> History | None:
    """The stored state a record gives (`profile export` writes it), or None for `active`,
    which the lifecycle decides as for any record."""
    status = _enum(record["status"], Status, "status")
    superseded_by = record.get("superseded_by_id")
    superseded_at = _time(record.get("superseded_at"), "superseded_at")
    if status is not Status.SUPERSEDED and (superseded_by is not None or superseded_at is not None):
        raise RecordError("superseded_by_id and superseded_at belong to a superseded record")
    if status is Status.ACTIVE:
        return None
    if status is Status.EXPIRED and expires_at is None:
        raise RecordError("an expired record needs expires_at")
    if superseded_by is not None:
        try:
            superseded_by = check_item_id(superseded_by, "superseded_by_id")
        except ValueError as exc:
            raise RecordError(str(exc)) from None
        if superseded_by == item_id:
            raise RecordError("a record cannot be superseded by itself")
    return History(status, superseded_by, superseded_at)


IDENTITY_KEYS = frozenset(
    ("kind", "tenant", "customer", "channel", "channel_user_id", "verified", "linked_at", "source")
)


@dataclass(slots=True)
class ParsedIdentity:
    """An identity record (SPEC §10): `channel_user_id` of `channel` belongs to `customer`."""

    tenant: str
    customer: str
    channel: str
    channel_user_id: str
    verified: bool
    linked_at: datetime | None
    source: str | None


def _opening(
    record: dict[str, Any],
    default_tenant: str | None,
    allowed: frozenset[str],
    what: str,
    required: tuple[str, ...],
) -> tuple[str, str]:
    """The checks an identity and an alias record share: known keys, the tenant (given or
    from --tenant, and agreeing with it), the required keys present, the customer's id."""
    if not allowed.issuperset(record):
        key = next(key for key in record if key not in allowed)
        raise RecordError(f"unknown key '{key}' for {what}{did_you_mean(key, allowed)}")
    tenant = record.get("tenant", default_tenant)
    if tenant is None:
        raise RecordError("the record has no tenant and no --tenant was given")
    for key in ("customer", *required):
        if key not in record:
            raise RecordError(f"missing key '{key}'")
    try:
        tenant = check_key(tenant, "tenant")
        if default_tenant is not None and tenant != default_tenant:
            raise RecordError(f"the record's tenant differs from --tenant {default_tenant}")
        return tenant, check_key(record["customer"], "customer")
    except RecordError:
        raise
    except ValueError as exc:
        raise RecordError(str(exc)) from None


def is_identity_record(record: Any) -> bool:
    return isinstance(record, dict) and record.get("kind") == "identity"


def parse_identity(record: dict[str, Any], default_tenant: str | None) -> ParsedIdentity:
    """Check an identity record; raise RecordError with one sentence (never the id itself:
    it may be an email address or a phone number)."""
    tenant, customer = _opening(
        record, default_tenant, IDENTITY_KEYS, "an identity", ("channel", "channel_user_id")
    )
    try:
        channel = check_channel(record["channel"])
        channel_user_id = check_channel_user_id(record["channel_user_id"])
        source = record.get("source")
        if source is not None:
            source = check_source(source)
    except RecordError:
        raise
    except ValueError as exc:
        raise RecordError(str(exc)) from None
    return ParsedIdentity(
        tenant=tenant,
        customer=customer,
        channel=channel,
        channel_user_id=channel_user_id,
        verified=_bool(record, "verified"),
        linked_at=_time(record.get("linked_at"), "linked_at"),
        source=source,
    )


ALIAS_KEYS = frozenset(("kind", "tenant", "customer", "merged_into", "merged_at"))


@dataclass(slots=True)
class ParsedAlias:
    """An alias record (written by `profile export`): `customer` was merged into `merged_into`."""

    tenant: str
    customer: str
    merged_into: str
    merged_at: datetime | None


def is_alias_record(record: Any) -> bool:
    return isinstance(record, dict) and record.get("kind") == "alias"


def parse_alias(record: dict[str, Any], default_tenant: str | None) -> ParsedAlias:
    """Check an alias record; raise RecordError with one sentence."""
    tenant, customer = _opening(record, default_tenant, ALIAS_KEYS, "an alias", ("merged_into",))
    try:
        merged_into = check_key(record["merged_into"], "merged_into")
    except RecordError:
        raise
    except ValueError as exc:
        raise RecordError(str(exc)) from None
    if customer == merged_into:
        raise RecordError("a customer cannot be an alias of itself")
    return ParsedAlias(tenant, customer, merged_into, _time(record.get("merged_at"), "merged_at"))


Parsed = ParsedRecord | ParsedIdentity | ParsedAlias
