"""The LLM requirement extractor behind `ccv requirements extract` and the extract flow.

Per requirements file: a deterministic pre-pass (fields named in `when` conditions and
`{{profile.NAME}}` templates, confidence 1.0, no LLM), then one LLM call for the rest, cached
by the SHA-256 of file + schema + model so an unchanged file costs nothing. `--write` merges the
proposals into the YAML with ruamel.yaml (comments and order kept), never touching a
requirement a human wrote.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic import Field as ModelField

from ccv import observe
from ccv.domain.conditions import ConditionError, parse_condition
from ccv.domain.enums import Fallback, Level, ValueType
from ccv.domain.requirements_file import AgentSchema
from ccv.domain.yamldoc import YamlError, parse_yaml
from ccv.errors import MissingExtraError, UsageError
from ccv.service.extraction import ExtractionResult, FileExtraction
from ccv.service.llm import Message, StructuredModel

REVIEW_THRESHOLD = 0.8
CACHE_FILE_NAME = ".ccv-extract-cache.json"
PROMPT_VERSION = "1"  # part of the cache key: a new prompt is a new question
_TEMPLATE = re.compile(r"\{\{\s*profile\.([a-z_][a-z0-9_]*)\s*\}\}")
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,49}$")


class ProposedRequirement(BaseModel):
    """A requirement the model (or the pre-pass) proposes, with what it rests on."""

    field: str
    level: Level = Level.HARD
    fallback: Fallback = Fallback.ASK
    when: str | None = None
    rule: str | None = None
    confidence: float = ModelField(ge=0, le=1)
    quote: str = ""


class ProposedDefinition(BaseModel):
    """A field the agent's schema does not define yet."""

    name: str
    value_type: ValueType = ValueType.STRING
    is_pii: bool = False
    collection_prompt: str | None = None


class ExtractionAnswer(BaseModel):
    requirements: list[ProposedRequirement] = ModelField(default_factory=list)
    definitions: list[ProposedDefinition] = ModelField(default_factory=list)


class Suggestion(ProposedRequirement):
    needs_human_review: bool = False
    source: str = "llm"  # "condition" | "template" | "llm"
    defined: bool = True  # the agent's schema defines the field (else: not written)


_SYSTEM = """You read the description and rules of a customer-service scenario and list the
customer profile fields the agent needs to handle it. For each field: level (hard: cannot go
on without it; soft: nice to have), fallback (ask the customer, skip (soft only), block the
scenario, or extract it from the conversation), an optional `when` condition in this language:
field names, literals, == != < <= > >= in, not in, and, or, not (e.g. "refund_amount > 500"),
the rule id it comes from, your confidence (0 to 1) and the exact quote of the text it rests on.
Prefer the names of the schema's fields. For a needed field the schema lacks, also add a
definition (name in snake_case, value_type, is_pii, collection_prompt).
Answer with one JSON object only, matching this JSON schema:
"""


def build_extract_messages(
    scenario: dict[str, Any], schema: AgentSchema | None, already: Sequence[str]
) -> list[Message]:
    """The one prompt for a file: its text, the agent's fields, and what it already requires."""
    fields = []
    for definition in schema.definitions.values() if schema else []:
        entry = {"name": definition.name, "type": definition.value_type.value}
        if definition.description:
            entry["description"] = definition.description
        fields.append(json.dumps(entry, ensure_ascii=False))
    rules = "\n".join(
        f"- {rule.get('id')}: {rule.get('text')}"
        for rule in scenario.get("rules") or []
        if isinstance(rule, dict)
    )
    schema_json = json.dumps(ExtractionAnswer.model_json_schema(), separators=(",", ":"))
    return [
        {"role": "system", "content": _SYSTEM + schema_json},
        {
            "role": "user",
            "content": f"Scenario: {scenario.get('scenario')}\n"
            f"Description: {str(scenario.get('description') or '').strip()}\n"
            f"Rules:\n{rules or '(none)'}\n\n"
            f"Schema fields:\n{chr(10).join(fields) or '(none)'}\n\n"
            f"Already required (do not repeat): {', '.join(already) or '(none)'}",
        },
    ]


def prepass(scenario: dict[str, Any]) -> list[Suggestion]:
    """Fields the file names explicitly but does not require: in a `when` condition, or in a
    `{{profile.NAME}}` template of its description or rules. Confidence 1.0, no LLM."""
    required = _required(scenario)
    found: dict[str, Suggestion] = {}
    for entry in scenario.get("requires") or []:
        when = entry.get("when") if isinstance(entry, dict) else None
        if not isinstance(when, str):
            continue
        try:
            names = sorted(parse_condition(when).fields)
        except ConditionError:
            continue
        for name in names:
            if name not in required and name not in found:
                found[name] = Suggestion(
                    field=name, confidence=1.0, quote=when, source="condition", rule=None
                )
    texts = [str(scenario.get("description") or "")] + [
        str(rule.get("text") or "")
        for rule in scenario.get("rules") or []
        if isinstance(rule, dict)
    ]
    for text in texts:
        for match in _TEMPLATE.finditer(text):
            name = match.group(1)
            if name not in required and name not in found:
                found[name] = Suggestion(
                    field=name, confidence=1.0, quote=match.group(0), source="template"
                )
    return list(found.values())


def _required(scenario: dict[str, Any]) -> set[str]:
    return {
        entry["field"]
        for entry in scenario.get("requires") or []
        if isinstance(entry, dict) and isinstance(entry.get("field"), str)
    }


def merge(
    scenario: dict[str, Any], schema: AgentSchema | None, answer: ExtractionAnswer
) -> tuple[list[Suggestion], list[ProposedDefinition]]:
    """Pre-pass and model proposals, without what the file already requires (a human wrote
    it: never overwritten), checked against the schema; unknown fields become definition
    suggestions and are not written."""
    required = _required(scenario)
    names = schema.names if schema else frozenset()
    suggestions = {s.field: s for s in prepass(scenario)}
    rule_ids = {rule.get("id") for rule in scenario.get("rules") or [] if isinstance(rule, dict)}
    for proposal in answer.requirements:
        if not _NAME.match(proposal.field) or proposal.field in required:
            continue
        if proposal.field in suggestions:  # the pre-pass is certain; keep its entry
            continue
        suggestion = Suggestion(**proposal.model_dump(), source="llm")
        review = proposal.confidence < REVIEW_THRESHOLD
        if suggestion.rule not in rule_ids:
            suggestion.rule = None
        if suggestion.fallback is Fallback.SKIP and suggestion.level is Level.HARD:
            suggestion.fallback, review = Fallback.ASK, True
        if suggestion.when is not None:
            try:
                condition = parse_condition(suggestion.when)
                problems = schema.check_condition(condition) if schema else [None]
            except ConditionError:
                problems = [None]
            if problems:
                suggestion.when, review = None, True
        suggestion.needs_human_review = review
        suggestions[proposal.field] = suggestion
    for suggestion in suggestions.values():
        suggestion.defined = suggestion.field in names
        if not suggestion.defined:
            suggestion.needs_human_review = True
    proposed_definitions = {d.name: d for d in answer.definitions if _NAME.match(d.name)}
    definitions = [
        proposed_definitions.get(s.field) or ProposedDefinition(name=s.field)
        for s in suggestions.values()
        if not s.defined
    ]
    return list(suggestions.values()), definitions


# --- writing -------------------------------------------------------------------------------------


def merged_text(text: str, suggestions: Sequence[Suggestion]) -> str:
    """The file with the writable suggestions appended to `requires` (comments and order
    kept); the text unchanged when there is nothing to write."""
    writable = [s for s in suggestions if s.defined]
    if not writable:
        return text
    try:
        from ruamel.yaml import YAML
    except ImportError:  # a dependency of ccv; only a broken install gets here
        raise MissingExtraError("llm", "ruamel.yaml") from None
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    handler = YAML()
    handler.preserve_quotes = True
    handler.width = 100
    handler.indent(mapping=2, sequence=4, offset=2)
    data = handler.load(text)
    requires = data.get("requires")
    if requires is None:
        requires = CommentedSeq()
        data["requires"] = requires
    present = {entry.get("field") for entry in requires if isinstance(entry, dict)}
    for suggestion in writable:
        if suggestion.field in present:  # never overwrite a requirement already there
            continue
        entry = CommentedMap()
        entry["field"] = suggestion.field
        if suggestion.rule:
            entry["rule"] = suggestion.rule
        entry["level"] = suggestion.level.value
        entry["fallback"] = suggestion.fallback.value
        if suggestion.when:
            entry["when"] = suggestion.when
        entry["confidence"] = round(suggestion.confidence, 2)
        if suggestion.needs_human_review:
            entry["needs_human_review"] = True
        requires.append(entry)
    out = io.StringIO()
    handler.dump(data, out)
    return out.getvalue()


def diff(path: str, before: str, after: str) -> str:
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=path,
            tofile=path + " (extracted)",
        )
    )


# --- the cache -----------------------------------------------------------------------------------


def cache_key(text: str, schema: AgentSchema | None, model: str) -> str:
    definitions = (
        sorted(
            (
                d.model_dump(mode="json", exclude={"id", "source_file"})
                for d in schema.definitions.values()
            ),
            key=lambda d: str(d["name"]),
        )
        if schema
        else []
    )
    payload = json.dumps(
        {"file": text, "schema": definitions, "model": model, "prompt": PROMPT_VERSION},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


class AnswerCache:
    """Answers by content hash, in a small JSON file beside the requirements files."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._data: dict[str, Any] | None = None

    def _load(self) -> dict[str, Any]:
        if self._data is None:
            try:
                loaded = json.loads(self.path.read_text(encoding="utf-8"))
                self._data = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError):
                self._data = {}  # a lost cache only costs LLM calls
        return self._data

    def get(self, key: str) -> ExtractionAnswer | None:
        raw = self._load().get(key)
        if raw is None:
            return None
        try:
            return ExtractionAnswer.model_validate(raw)
        except ValueError:
            return None

    def put(self, key: str, answer: ExtractionAnswer) -> None:
        data = self._load()
        data[key] = answer.model_dump(mode="json")
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(json.dumps(data, sort_keys=True, indent=1) + "\n", encoding="utf-8")
        temporary.replace(self.path)


# --- the extractor -------------------------------------------------------------------------------


class LLMRequirementExtractor:
    """`RequirementExtractor` with one LLM call per changed file."""

    def __init__(
        self,
        model: StructuredModel,
        *,
        schema_paths: Sequence[Path] = (),
        cache_dir: Path | None = None,
    ) -> None:
        self.model = model
        self.schema_paths = list(schema_paths)
        self.cache_dir = cache_dir
        self.calls = 0

    def _schemas(self, paths: Sequence[Path]) -> dict[tuple[str, str], AgentSchema | None]:
        from ccv.service.requirements import _read, _schemas, _sources

        reads = [read for s in _sources(paths, self.schema_paths) if (read := _read(s))]
        return _schemas(reads, {})[0]

    def _files(self, paths: Sequence[Path]) -> list[Path]:
        from ccv.service.requirements import _walk

        files: list[Path] = []
        for path in paths:
            if path.is_dir():
                files.extend(_walk(path))
            elif path.exists():
                files.append(path)
            else:
                raise UsageError(f"{path}: no such file or directory")
        return files

    def extract(self, paths: Sequence[Path], *, write: bool) -> ExtractionResult:
        schemas = self._schemas(paths)
        result = ExtractionResult()
        pending: list[tuple[Path, str, str]] = []
        for path in self._files(paths):
            text = path.read_text(encoding="utf-8")
            try:
                data = parse_yaml(text).data
            except YamlError:
                raise UsageError(
                    f"{path}: not valid YAML; run `ccv requirements validate` on it"
                ) from None
            if not isinstance(data, dict) or ("requires" not in data and "scenario" not in data):
                continue  # a schema file or other YAML
            schema = schemas.get((str(data.get("tenant")), str(data.get("agent"))))
            cache = AnswerCache((self.cache_dir or path.parent) / CACHE_FILE_NAME)
            key = cache_key(text, schema, self.model.name)
            answer = cache.get(key)
            cached = answer is not None
            if answer is None:
                messages = build_extract_messages(data, schema, sorted(_required(data)))
                self.calls += 1
                answer = self.model.complete(messages, ExtractionAnswer)
                cache.put(key, answer)
            suggestions, definitions = merge(data, schema, answer)
            after = merged_text(text, suggestions)
            extraction = FileExtraction(
                path=str(path),
                scenario=data.get("scenario") if isinstance(data.get("scenario"), str) else None,
                proposed=len(suggestions),
                cached=cached,
                suggestions=[s.model_dump(mode="json") for s in suggestions],
                definitions=[d.model_dump(mode="json") for d in definitions],
                diff=diff(str(path), text, after),
            )
            result.files.append(extraction)
            if after != text:
                pending.append((path, after, key))
            if write and after != text:
                # The rewritten file asks the same question: its answer is this one.
                cache.put(cache_key(after, schema, self.model.name), answer)
        if write:  # every file answered before any is written: a failure writes nothing
            for path, after, _key in pending:
                path.write_text(after, encoding="utf-8")
            written = {str(path) for path, _, _ in pending}
            for extraction in result.files:
                extraction.written = extraction.path in written
        for extraction in result.files:
            outcome = "cached" if extraction.cached else "answered"
            observe.extraction_outcome(outcome)
            observe.extraction_outcome("proposed", extraction.proposed)
            observe.event(
                "extraction",
                scenario=extraction.scenario,
                file=extraction.path,
                proposed=extraction.proposed,
                definitions=len(extraction.definitions),
                cached=extraction.cached,
                written=extraction.written,
            )
        return result


def build_extractor(
    model: StructuredModel, schema_paths: Sequence[Path] = ()
) -> LLMRequirementExtractor:
    return LLMRequirementExtractor(model, schema_paths=schema_paths)


__all__ = ["LLMRequirementExtractor", "build_extractor"]
