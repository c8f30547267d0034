"""Gap fill: values a customer already stated in a conversation fill the scenario's gaps.

One LLM call per fill proposes values for the missing fields, each with the turn and the quote
it rests on; the code then keeps only what the transcript supports (the quote is found in it)
and what the schema accepts. Nothing else is stored: an unsupported value stays missing.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pydantic import Field as ModelField

from ccv import observe
from ccv.domain.definitions import FieldRules
from ccv.domain.enums import Source, SourceItemType
from ccv.domain.models import FieldDefinition
from ccv.domain.timeutil import format_time, utcnow
from ccv.domain.validators import mask_value
from ccv.errors import InvalidFilesError, UsageError
from ccv.service.llm import Message, StructuredModel
from ccv.store.definitions import load_definitions, tenant_rules

if TYPE_CHECKING:
    from ccv.store.cache import RedisCache
    from ccv.store.database import Database

CONFIRMATION_THRESHOLD = 0.8
# Reasons a requirement is missing that a stated value can cure (a `stale` one wants a newer
# value; an `unverified` value is there already, and an LLM-extracted one would not be verified
# either).
FILLABLE = frozenset({"absent", "expired", "stale", "invalid", "condition_unknown"})


class Turn(BaseModel):
    role: str
    content: str


class Transcript(BaseModel):
    """A conversation: its session id (given, or a hash of the turns) and its turns."""

    session_id: str
    turns: list[Turn]
    file: str | None = None


class ExtractedValue(BaseModel):
    """One value the model read from the conversation (the LLM's answer, validated)."""

    field: str
    value: Any
    turn: int = ModelField(ge=0)
    quote: str
    confidence: float = ModelField(ge=0, le=1)


class FillAnswer(BaseModel):
    values: list[ExtractedValue] = ModelField(default_factory=list)


class FilledField(BaseModel):
    field: str
    value: Any
    confidence: float
    requires_confirmation: bool
    turn: int
    quote: str
    id: str | None = None  # the stored version's id (with --apply)


class RejectedValue(BaseModel):
    field: str
    value: Any
    reason: str


class FillResult(BaseModel):
    """`profile fill`: what was (or, in a dry run, would be) stored, and what was not."""

    tenant: str
    customer: str
    scenario: str
    session_id: str
    model: str | None
    applied: bool
    requested: list[str]
    filled: list[FilledField]
    rejected: list[RejectedValue]
    still_missing: list[str]


# --- transcripts -------------------------------------------------------------------------------


def read_transcript(path: Path) -> Transcript:
    """A transcript file: a JSON array of {role, content} turns, or {session_id?, turns}.

    A missing file is a usage error (exit 2); a malformed one an invalid file (exit 1) whose
    message says file:line or file and turn.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"transcript {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"transcript {path} cannot be read ({exc})") from None
    name = str(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidFilesError(
            [(name, exc.lineno, exc.colno, f"malformed JSON: {exc.msg}")]
        ) from None
    return parse_transcript(data, name)


def parse_transcript(data: Any, file: str = "<transcript>") -> Transcript:
    def bad(message: str) -> InvalidFilesError:
        return InvalidFilesError([(file, 1, 1, message)])

    session_id: str | None = None
    if isinstance(data, dict):
        unknown = sorted(set(data) - {"session_id", "turns"})
        if unknown:
            raise bad(f"unknown key {unknown[0]!r} (a transcript has session_id and turns)")
        raw_id = data.get("session_id")
        if raw_id is not None and (not isinstance(raw_id, str) or not raw_id.strip()):
            raise bad("session_id must be a non-empty string")
        session_id = raw_id
        data = data.get("turns")
    if not isinstance(data, list):
        raise bad('a transcript is a JSON array of {"role", "content"} turns or {"turns": [...]}')
    if not data:
        raise bad("the transcript has no turns")
    turns: list[Turn] = []
    for index, turn in enumerate(data):
        if not isinstance(turn, dict):
            raise bad(f'turn {index}: expected an object with "role" and "content"')
        role, content = turn.get("role"), turn.get("content")
        if not isinstance(role, str) or not role:
            raise bad(f'turn {index}: "role" must be a non-empty string')
        if not isinstance(content, str):
            raise bad(f'turn {index}: "content" must be a string')
        turns.append(Turn(role=role, content=content))
    if session_id is None:
        canonical = json.dumps([t.model_dump() for t in turns], sort_keys=True).encode()
        session_id = "transcript-" + hashlib.sha256(canonical).hexdigest()[:32]
    return Transcript(session_id=session_id, turns=turns, file=file)


# --- the prompt ----------------------------------------------------------------------------------

_SYSTEM = """You extract facts about a customer from a support conversation.
Only report a value the customer (or a document they shared) states explicitly in the
conversation. Never guess, infer or complete a value: if a field is not stated, leave it out.
For each value give the index of the turn it comes from and a verbatim quote from that turn
(copied exactly, a few words long) that contains the value. Convert values to the field's type
(dates as YYYY-MM-DD, numbers as JSON numbers, enums as one of the allowed values).
Confidence is your probability (0 to 1) that the value is right and belongs to this customer.
Answer with one JSON object only, matching this JSON schema:
"""


def _describe_field(definition: FieldDefinition) -> dict[str, Any]:
    described: dict[str, Any] = {"field": definition.name, "type": definition.value_type.value}
    optional = {
        "description": definition.description or definition.display_name,
        "allowed_values": definition.allowed_values,
        "pattern": definition.validation_regex,
        "hint": definition.extraction_hint,
        "examples": definition.extraction_examples,
    }
    described.update({key: value for key, value in optional.items() if value})
    return described


def build_fill_messages(
    definitions: Sequence[FieldDefinition], transcript: Transcript
) -> list[Message]:
    """The one prompt of a fill: the fields to look for, then the numbered conversation."""
    schema = json.dumps(FillAnswer.model_json_schema(), separators=(",", ":"))
    fields = "\n".join(json.dumps(_describe_field(d), ensure_ascii=False) for d in definitions)
    conversation = "\n".join(
        f"[{index}] {turn.role}: {turn.content}" for index, turn in enumerate(transcript.turns)
    )
    return [
        {"role": "system", "content": _SYSTEM + schema},
        {
            "role": "user",
            "content": f"Fields to look for (one JSON object a line):\n{fields}\n\n"
            f"Conversation (turn index in brackets):\n{conversation}",
        },
    ]


# --- judging the answer --------------------------------------------------------------------------


def _normal(text: str) -> str:
    return " ".join(text.casefold().split())


def _supporting_turn(transcript: Transcript, turn: int, quote: str) -> int | None:
    """The turn holding `quote` (the one the model named first, then any), or None."""
    wanted = _normal(quote)
    if len(wanted) < 2:
        return None
    order = ([turn] if turn < len(transcript.turns) else []) + list(range(len(transcript.turns)))
    for index in order:
        if wanted in _normal(transcript.turns[index].content):
            return index
    return None


def judge_answer(
    answer: FillAnswer,
    requested: Sequence[str],
    rules: Mapping[str, FieldRules],
    transcript: Transcript,
) -> tuple[list[FilledField], list[RejectedValue]]:
    """Keep the values that were asked for, rest on a quote found in the transcript, and pass
    the schema; of several for one field, the most confident wins."""
    accepted: dict[str, FilledField] = {}
    rejected: list[RejectedValue] = []
    for value in answer.values:
        if value.field not in requested:
            rejected.append(RejectedValue(field=value.field, value=value.value, reason="not asked"))
            continue
        if value.value is None:
            continue
        turn = _supporting_turn(transcript, value.turn, value.quote)
        if turn is None:
            rejected.append(
                RejectedValue(
                    field=value.field,
                    value=value.value,
                    reason="no supporting quote in the transcript",
                )
            )
            continue
        rule = rules.get(value.field)
        error = rule.check(value.value)[0] if rule is not None else "has no definition"
        if error is not None:
            rejected.append(
                RejectedValue(field=value.field, value=value.value, reason=f"invalid: {error}")
            )
            continue
        filled = FilledField(
            field=value.field,
            value=value.value,
            confidence=value.confidence,
            requires_confirmation=value.confidence < CONFIRMATION_THRESHOLD,
            turn=turn,
            quote=value.quote,
        )
        kept = accepted.get(value.field)
        if kept is None or filled.confidence > kept.confidence:
            if kept is not None:
                rejected.append(
                    RejectedValue(field=kept.field, value=kept.value, reason="a likelier value")
                )
            accepted[value.field] = filled
        else:
            rejected.append(
                RejectedValue(field=value.field, value=value.value, reason="a likelier value")
            )
    order = {name: index for index, name in enumerate(requested)}
    return sorted(accepted.values(), key=lambda f: order[f.field]), rejected


# --- the service ---------------------------------------------------------------------------------


def _preferred(definitions: Sequence[FieldDefinition], agent: str) -> dict[str, FieldDefinition]:
    chosen: dict[str, FieldDefinition] = {}
    for definition in sorted(definitions, key=lambda d: (d.agent != agent, d.agent)):
        if definition.enabled:
            chosen.setdefault(definition.name, definition)
    return chosen


def fill_gaps(
    db: Database,
    tenant: str,
    customer: str,
    scenario: str,
    transcript: Transcript,
    model: StructuredModel | None,
    *,
    apply: bool = False,
    reveal_pii: bool = False,
    actor: str = "library",
    cache: RedisCache | None = None,
) -> FillResult:
    """Fill the customer's gaps in `scenario` from `transcript` with one LLM call (none when
    nothing is missing). Dry run unless `apply`; with it, every accepted value is stored in one
    transaction (`source=llm_extracted`, lineage to the session), or none is."""
    from ccv.service.gaps import find_customer_gaps
    from ccv.service.importing import Incoming, import_incoming

    gaps = find_customer_gaps(db, tenant, customer, scenario, cache=cache)
    customer = gaps.customer  # the customer an alias names, when `customer` was merged
    with db.read() as conn:
        definitions = _preferred(load_definitions(conn, tenant), gaps.agent)
        rules = tenant_rules(conn, tenant)
    requested: list[str] = []
    for missing in gaps.missing:
        if (
            missing.reason in FILLABLE
            and missing.field in definitions
            and missing.field not in requested
        ):
            requested.append(missing.field)
    filled: list[FilledField] = []
    rejected: list[RejectedValue] = []
    if requested:
        if model is None:
            raise UsageError("give --model (a litellm model string) or set CCV_LLM_MODEL")
        messages = build_fill_messages([definitions[name] for name in requested], transcript)
        answer = model.complete(messages, FillAnswer)
        filled, rejected = judge_answer(answer, requested, rules, transcript)
    if apply and filled:
        now = format_time(utcnow())
        records: list[Incoming] = []
        for value in filled:
            value.id = str(uuid.uuid4())
            raw = {
                "kind": "field",
                "tenant": tenant,
                "customer": customer,
                "id": value.id,
                "name": value.field,
                "value": value.value,
                "source": Source.LLM_EXTRACTED.value,
                "source_item_id": transcript.session_id,
                "source_item_type": SourceItemType.SESSION.value,
                "source_metadata": {
                    "session_id": transcript.session_id,
                    "turn": value.turn,
                    "quote": value.quote,
                    "model": model.name if model is not None else None,
                },
                "confidence": value.confidence,
                "requires_confirmation": value.requires_confirmation,
                "collected_at": now,
            }
            records.append(Incoming(transcript.file or "transcript", value.turn, raw))
        stored = import_incoming(db, records, tenant=tenant, actor=actor, cache=cache)
        if stored.rejected:  # validated above: only a race with a schema change gets here
            from ccv.errors import FindingsError

            raise FindingsError(
                "; ".join(f"{error.message}" for error in stored.errors) or "values rejected"
            )
    got = {value.field for value in filled}
    named = [entry.field for entry in filled] + [entry.field for entry in rejected]
    revealed = sorted(
        {name for name in named if (rule := rules.get(name)) is not None and rule.is_pii}
    )
    if reveal_pii and revealed:
        _audit_reveal(db, tenant, customer, revealed, actor)
    if not reveal_pii:
        for entry in filled:
            rule = rules.get(entry.field)
            if rule is not None and rule.is_pii:
                entry.value = mask_value(entry.value, rule.value_type)
                entry.quote = "***"
        for dropped in rejected:
            rule = rules.get(dropped.field)
            if rule is not None and rule.is_pii:
                dropped.value = mask_value(dropped.value, rule.value_type)
    result = FillResult(
        tenant=tenant,
        customer=customer,
        scenario=scenario,
        session_id=transcript.session_id,
        model=model.name if model is not None and requested else None,
        applied=apply and bool(filled),
        requested=requested,
        filled=filled,
        rejected=rejected,
        still_missing=[name for name in requested if name not in got],
    )
    outcome = "filled" if result.applied else "found"
    observe.fill_outcome(outcome, len(filled))
    observe.fill_outcome("rejected", len(rejected))
    observe.fill_outcome("still_missing", len(result.still_missing))
    observe.event(
        "fill",
        tenant,
        scenario=scenario,
        applied=result.applied,
        requested=len(requested),
        filled=[entry.field for entry in filled],
        rejected=[{"field": r.field, "reason": r.reason} for r in rejected],
        still_missing=result.still_missing,
    )
    return result


def _audit_reveal(db: Database, tenant: str, customer: str, fields: list[str], actor: str) -> None:
    """A PII reveal is audited as for `profile show --reveal-pii` (names, never values)."""
    from ccv.service.writes import audit_reveal

    with db.write() as conn:
        audit_reveal(conn, tenant, customer, fields, actor, {"command": "fill"})
