"""Scenario requirements files (SPEC §3): parse one file into ScenarioRequirement models and
check it against its agent's field definitions, with file:line:column findings.

`parse_requirements` is shared by `requirements validate` (schemas read from files) and the
commands that store requirements (schemas read from the database): both pass compiled
`AgentSchema`s, so the rules live here once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic import Field as ModelField

from ccv.domain.conditions import Condition, ConditionError, ConditionProblem, check_types
from ccv.domain.conditions import parse_condition as _parse_condition
from ccv.domain.enums import Fallback, Level, ValueType
from ccv.domain.identifiers import check_field_name, check_key, check_slug
from ccv.domain.models import FieldDefinition, Finding, ScenarioRequirement
from ccv.domain.records import did_you_mean
from ccv.domain.yamldoc import YamlDoc

FILE_KEYS = frozenset({"tenant", "agent", "scenario", "description", "rules", "requires"})
RULE_KEYS = frozenset({"id", "text"})
REQUIREMENT_KEYS = frozenset(
    {
        "field",
        "step",
        "rule",
        "level",
        "fallback",
        "when",
        "depends_on",
        "collection_order",
        "needs_human_review",
        "confidence",
    }
)

# Stable finding codes of requirements files (schema files add theirs, see schema_file.py).
YAML_SYNTAX = "yaml-syntax"
DUPLICATE_KEY = "duplicate-key"
INVALID_FILE = "invalid-file"
UNKNOWN_KEY = "unknown-key"
MISSING_KEY = "missing-key"
INVALID_NAME = "invalid-name"
INVALID_VALUE = "invalid-value"
SKIP_ON_HARD = "skip-on-hard"
UNKNOWN_FIELD = "unknown-field"
UNKNOWN_RULE = "unknown-rule"
DUPLICATE_RULE = "duplicate-rule"
DUPLICATE_REQUIREMENT = "duplicate-requirement"
WHEN_UNDEFINED_FIELD = "when-undefined-field"
UNKNOWN_DEPENDS_ON = "unknown-depends-on"
DEPENDS_ON_CYCLE = "depends-on-cycle"
DUPLICATE_SCENARIO = "duplicate-scenario"
# Warnings.
ASK_WITHOUT_PROMPT = "ask-without-prompt"
EXTRACT_WITHOUT_HINTS = "extract-without-hints"
NO_SCHEMA = "no-schema"


class AgentSchema:
    """One agent's field definitions, compiled once for checking any number of files."""

    def __init__(self, tenant: str, agent: str, definitions: Sequence[FieldDefinition]) -> None:
        self.tenant = tenant
        self.agent = agent
        self.definitions = {d.name: d for d in definitions}
        enabled = [d for d in definitions if d.enabled]
        self.types: dict[str, ValueType] = {d.name: d.value_type for d in enabled}
        self.allowed: dict[str, list[Any]] = {
            d.name: list(d.allowed_values) for d in enabled if d.allowed_values
        }
        self.names = frozenset(self.types)
        self._conditions: dict[str, list[ConditionProblem]] = {}

    def check_condition(self, condition: Condition) -> list[ConditionProblem]:
        """Undefined names and type problems of a condition (cached: files repeat them)."""
        cached = self._conditions.get(condition.source)
        if cached is None:
            cached = []
            undefined = False
            for name in condition.names:
                if name.name not in self.names:
                    undefined = True
                    cached.append(
                        ConditionProblem(
                            name.column,
                            WHEN_UNDEFINED_FIELD,
                            f"the condition names '{name.name}', which agent {self.agent} "
                            f"does not define{did_you_mean(name.name, self.names)}",
                        )
                    )
            if not undefined:
                cached.extend(check_types(condition, self.types, self.allowed))
            self._conditions[condition.source] = cached
        return cached


class ScenarioRule(BaseModel):
    """A business rule written in prose; requirements may cite it by id."""

    id: str
    text: str


class ScenarioFile(BaseModel):
    """What one requirements file says: the whole truth for its scenario."""

    path: str
    tenant: str
    agent: str
    scenario: str
    description: str | None = None
    rules: list[ScenarioRule] = ModelField(default_factory=list)
    requirements: list[ScenarioRequirement] = ModelField(default_factory=list)


@dataclass
class RequirementsCheck:
    """The outcome of one file: the scenario (None when its header is unusable) and findings.

    `scenario.requirements` holds only the requirements that passed their own checks; a caller
    that stores requirements must refuse a file with errors.
    """

    scenario: ScenarioFile | None
    errors: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    scenario_at: tuple[int, int] = (1, 1)


class _Collector:
    def __init__(self, path: str, doc: YamlDoc, lines: Sequence[str]) -> None:
        self.path = path
        self.doc = doc
        self.lines = lines
        self.errors: list[Finding] = []
        self.warnings: list[Finding] = []

    def at(self, line: int, column: int, code: str, message: str, warning: bool = False) -> None:
        finding = Finding(file=self.path, line=line, column=column, code=code, message=message)
        (self.warnings if warning else self.errors).append(finding)

    def add(self, code: str, message: str, *where: str | int) -> None:
        self.at(*self.doc.where(*where), code, message)

    def warn(self, code: str, message: str, *where: str | int) -> None:
        self.at(*self.doc.where(*where), code, message, warning=True)

    def condition_at(self, source: str, column: int, *where: str | int) -> tuple[int, int]:
        """File position of a column inside a `when` value. The YAML key's position is known;
        the value is found on that line (a plain or quoted one-line scalar). A block scalar or
        an escaped string falls back to the key."""
        line, key_column = self.doc.where(*where)
        if 0 < line <= len(self.lines):
            text = self.lines[line - 1]
            start = text.find(source, key_column - 1 + len(str(where[-1])))
            if start >= 0 and source:
                return line, start + column
        return line, key_column


def _slug(out: _Collector, value: Any, what: str, *where: str | int) -> str | None:
    try:
        return check_slug(value, what)
    except ValueError as exc:
        out.add(INVALID_NAME, str(exc), *where)
        return None


def _header(out: _Collector, data: dict[str, Any]) -> tuple[str, str, str] | None:
    for key in data:
        if key not in FILE_KEYS:
            out.add(
                UNKNOWN_KEY,
                f"unknown key '{key}' in a requirements file{did_you_mean(str(key), FILE_KEYS)}",
                key,
            )
    for key in ("tenant", "agent", "scenario", "requires"):
        if key not in data:
            out.add(MISSING_KEY, f"a requirements file needs a '{key}'")
    if any(key not in data for key in ("tenant", "agent", "scenario")):
        return None
    tenant: str | None
    try:
        tenant = check_key(data["tenant"], "tenant")
    except ValueError as exc:
        out.add(INVALID_VALUE, str(exc), "tenant")
        tenant = None
    agent = _slug(out, data["agent"], "agent", "agent")
    scenario = _slug(out, data["scenario"], "scenario", "scenario")
    if tenant is None or agent is None or scenario is None:
        return None
    return tenant, agent, scenario


def _rules(out: _Collector, raw: Any) -> list[ScenarioRule] | None:
    """The file's rules, or None when `rules` is unusable (rule references go unchecked)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        out.add(INVALID_VALUE, "rules must be a list of {id, text}", "rules")
        return None
    rules: list[ScenarioRule] = []
    seen: dict[str, int] = {}
    usable = True
    for index, item in enumerate(raw):
        at = ("rules", index)
        if not isinstance(item, dict):
            out.add(INVALID_VALUE, "a rule must be a mapping with an id and a text", *at)
            usable = False
            continue
        for key in item:
            if key not in RULE_KEYS:
                out.add(
                    UNKNOWN_KEY,
                    f"unknown key '{key}' in a rule{did_you_mean(str(key), RULE_KEYS)}",
                    *at,
                    key,
                )
        missing = [key for key in ("id", "text") if key not in item]
        for key in missing:
            out.add(MISSING_KEY, f"a rule needs {'an' if key == 'id' else 'a'} '{key}'", *at)
        if missing:
            usable = False
            continue
        rule_id = _slug(out, item["id"], "a rule id", *at, "id")
        if not isinstance(item["text"], str) or not item["text"].strip():
            out.add(INVALID_VALUE, "a rule's text must be non-empty text", *at, "text")
        if rule_id is None:
            usable = False
            continue
        if rule_id in seen:
            first, _ = out.doc.where("rules", seen[rule_id])
            out.add(
                DUPLICATE_RULE,
                f"rule '{rule_id}' is declared twice (first at line {first})",
                *at,
                "id",
            )
            continue
        seen[rule_id] = index
        if isinstance(item["text"], str):
            rules.append(ScenarioRule(id=rule_id, text=item["text"]))
    return rules if usable else None


@dataclass
class _Entry:
    """A requirement that passed its own checks, with what the file-wide checks need."""

    index: int
    requirement: ScenarioRequirement
    depends_on: list[tuple[int, str]]  # (position in the list, field name)


def _requirement(
    out: _Collector,
    raw: Any,
    index: int,
    header: tuple[str, str, str] | None,
    rule_ids: set[str] | None,
    schema: AgentSchema | None,
) -> _Entry | None:
    at: tuple[str | int, ...] = ("requires", index)
    if not isinstance(raw, dict):
        out.add(INVALID_VALUE, "a requirement must be a mapping with at least a 'field'", *at)
        return None
    ok = True
    for key in raw:
        if key not in REQUIREMENT_KEYS:
            out.add(
                UNKNOWN_KEY,
                f"unknown key '{key}' in a requirement{did_you_mean(str(key), REQUIREMENT_KEYS)}",
                *at,
                key,
            )
            ok = False
    name: str | None = None
    if "field" not in raw:
        out.add(MISSING_KEY, "a requirement needs a 'field'", *at)
        ok = False
    else:
        try:
            name = check_field_name(raw["field"], "field")
        except ValueError as exc:
            out.add(INVALID_NAME, str(exc), *at, "field")
            ok = False
    values: dict[str, Any] = {}
    level, level_known = Level.HARD, True
    if raw.get("level") is not None:
        try:
            level = Level(raw["level"])
        except ValueError:
            out.add(INVALID_VALUE, "level must be hard or soft", *at, "level")
            ok = level_known = False
    fallback = Fallback.ASK
    if raw.get("fallback") is not None:
        try:
            fallback = Fallback(raw["fallback"])
        except ValueError:
            out.add(
                INVALID_VALUE, "fallback must be one of: ask, skip, block, extract", *at, "fallback"
            )
            ok = False
        else:
            if fallback is Fallback.SKIP and level is Level.HARD and level_known:
                out.add(
                    SKIP_ON_HARD,
                    "fallback 'skip' is only allowed on a soft requirement: set level: soft, "
                    "or use ask, block or extract",
                    *at,
                    "fallback",
                )
                ok = False
    values["level"], values["fallback"] = level, fallback
    if raw.get("step") is not None:
        values["step"] = _slug(out, raw["step"], "step", *at, "step")
        ok = ok and values["step"] is not None
    if raw.get("rule") is not None:
        rule = raw["rule"]
        if not isinstance(rule, str):
            out.add(INVALID_VALUE, "rule must be the id of one of the file's rules", *at, "rule")
            ok = False
        elif rule_ids is not None and rule not in rule_ids:
            hint = did_you_mean(rule, frozenset(rule_ids))
            if not hint:
                hint = f" (declared: {', '.join(sorted(rule_ids))})" if rule_ids else ""
            out.add(
                UNKNOWN_RULE,
                f"rule '{rule}' is not declared under the file's rules{hint}",
                *at,
                "rule",
            )
            ok = False
        values["rule"] = rule
    if raw.get("when") is not None:
        ok = _when(out, raw["when"], at, schema) and ok
        values["when"] = raw["when"].strip() if isinstance(raw["when"], str) else None
    depends_on: list[tuple[int, str]] = []
    if raw.get("depends_on") is not None:
        deps = raw["depends_on"]
        if not isinstance(deps, list):
            out.add(INVALID_VALUE, "depends_on must be a list of field names", *at, "depends_on")
            ok = False
        else:
            for position, dep in enumerate(deps):
                try:
                    depends_on.append((position, check_field_name(dep, "a depends_on entry")))
                except ValueError as exc:
                    out.add(INVALID_NAME, str(exc), *at, "depends_on", position)
                    ok = False
            values["depends_on"] = list(dict.fromkeys(dep for _, dep in depends_on))
    order = raw.get("collection_order")
    if order is not None:
        if isinstance(order, bool) or not isinstance(order, int):
            out.add(
                INVALID_VALUE, "collection_order must be a whole number", *at, "collection_order"
            )
            ok = False
        else:
            values["collection_order"] = order
    review = raw.get("needs_human_review")
    if review is not None:
        if not isinstance(review, bool):
            out.add(
                INVALID_VALUE,
                "needs_human_review must be true or false",
                *at,
                "needs_human_review",
            )
            ok = False
        else:
            values["needs_human_review"] = review
    confidence = raw.get("confidence")
    if confidence is not None:
        if (
            isinstance(confidence, bool)
            or not isinstance(confidence, int | float)
            or not math.isfinite(confidence)
            or not 0 <= confidence <= 1
        ):
            out.add(INVALID_VALUE, "confidence must be a number from 0 to 1", *at, "confidence")
            ok = False
        else:
            values["confidence"] = float(confidence)
    if name is not None and schema is not None:
        ok = _against_schema(out, name, fallback, raw, at, schema) and ok
    if not ok or name is None or header is None:
        return None
    tenant, agent, scenario = header
    requirement = ScenarioRequirement(
        tenant=tenant, agent=agent, scenario=scenario, field=name, **values
    )
    return _Entry(index, requirement, depends_on)


def _against_schema(
    out: _Collector,
    name: str,
    fallback: Fallback,
    raw: dict[str, Any],
    at: tuple[str | int, ...],
    schema: AgentSchema,
) -> bool:
    definition = schema.definitions.get(name)
    if definition is None or not definition.enabled:
        why = "disables" if definition is not None else "does not define"
        out.add(
            UNKNOWN_FIELD,
            f"field '{name}' is required, but agent {schema.agent}'s schema {why} it"
            + (did_you_mean(name, schema.names) if definition is None else ""),
            *at,
            "field",
        )
        return False
    where = (*at, "fallback") if "fallback" in raw else at
    if fallback is Fallback.ASK and not definition.collection_prompt:
        out.warn(
            ASK_WITHOUT_PROMPT,
            f"fallback 'ask' on '{name}', whose definition has no collection_prompt: the agent "
            "will have no question to ask",
            *where,
        )
    if (
        fallback is Fallback.EXTRACT
        and not definition.extraction_hint
        and not definition.extraction_examples
    ):
        out.warn(
            EXTRACT_WITHOUT_HINTS,
            f"fallback 'extract' on '{name}', whose definition has neither extraction_hint "
            "nor extraction_examples to guide the extraction",
            *where,
        )
    return True


def _when(out: _Collector, raw: Any, at: tuple[str | int, ...], schema: AgentSchema | None) -> bool:
    where = (*at, "when")
    if not isinstance(raw, str):
        out.add(
            INVALID_VALUE,
            'when must be a condition written as text, e.g. when: "refund_amount > 500"',
            *where,
        )
        return False
    source = raw.strip()
    try:
        condition = _parse_condition(source)
    except ConditionError as exc:
        line, column = out.condition_at(source, exc.column, *where)
        prefix = "the condition does not parse: " if exc.code == "when-syntax" else ""
        out.at(line, column, exc.code, prefix + exc.message)
        return False
    if schema is None:
        return True
    problems = schema.check_condition(condition)
    for problem in problems:
        line, column = out.condition_at(source, problem.column, *where)
        out.at(line, column, problem.code, problem.message)
    return not problems


def _cycles(out: _Collector, entries: list[_Entry]) -> None:
    """Report each depends_on cycle once, at the first requirement (in file order) on it."""
    graph: dict[str, list[str]] = {}
    first_entry: dict[str, _Entry] = {}
    for entry in entries:
        name = entry.requirement.field
        first_entry.setdefault(name, entry)
        targets = graph.setdefault(name, [])
        targets.extend(dep for _, dep in entry.depends_on if dep not in targets)
    reported: set[frozenset[str]] = set()
    for entry in entries:
        start = entry.requirement.field
        for position, dep in entry.depends_on:
            path = _path(graph, dep, start)
            if path is None:
                continue
            cycle = [start, *path]
            members = frozenset(cycle)
            if members in reported:
                continue
            reported.add(members)
            out.add(
                DEPENDS_ON_CYCLE,
                f"depends_on forms a cycle: {' -> '.join(cycle)} (no order can satisfy it)",
                "requires",
                entry.index,
                "depends_on",
                position,
            )


def _path(graph: Mapping[str, list[str]], source: str, target: str) -> list[str] | None:
    """Shortest dependency path source -> ... -> target, or None (breadth first)."""
    previous: dict[str, str | None] = {source: None}
    queue = [source]
    for node in queue:
        if node == target:
            path = [node]
            back = previous[node]
            while back is not None:
                path.append(back)
                back = previous[back]
            return path[::-1]
        for nxt in graph.get(node, ()):
            if nxt not in previous:
                previous[nxt] = node
                queue.append(nxt)
    return None


def parse_requirements(
    path: str,
    doc: YamlDoc,
    schemas: Mapping[tuple[str, str], AgentSchema | None],
    text: str | None = None,
) -> RequirementsCheck:
    """Check one requirements file and build its ScenarioRequirement models.

    `schemas` maps (tenant, agent) to the agent's compiled schema. An agent that is absent
    gets a `no-schema` warning and no schema checks; one mapped to None has a schema that is
    itself invalid (already reported), so its files skip the schema checks silently. `text`
    (the file's content) places `when` findings on the column of the offending token.
    """
    out = _Collector(path, doc, text.splitlines() if text is not None else ())
    data = doc.data
    if not isinstance(data, dict):
        out.add(
            INVALID_FILE,
            "a requirements file must be a mapping with tenant, agent, scenario and requires",
        )
        return RequirementsCheck(None, out.errors, out.warnings)
    header = _header(out, data)
    schema: AgentSchema | None = None
    if header is not None:
        tenant, agent, _ = header
        if (tenant, agent) in schemas:
            schema = schemas[(tenant, agent)]
        else:
            out.warn(
                NO_SCHEMA,
                f"no schema file for agent {agent} of tenant {tenant} was given: the fields "
                "and conditions were not checked against it (pass it as a PATH or --schema)",
                "agent",
            )
    description = data.get("description")
    if description is not None and not isinstance(description, str):
        out.add(INVALID_VALUE, "description must be text", "description")
        description = None
    rules = _rules(out, data.get("rules"))
    rule_ids = None if rules is None else {rule.id for rule in rules}
    requires = data.get("requires")
    entries: list[_Entry] = []
    if requires is not None and not isinstance(requires, list):
        out.add(INVALID_VALUE, "requires must be a list of requirements", "requires")
    elif requires:
        for index, raw in enumerate(requires):
            entry = _requirement(out, raw, index, header, rule_ids, schema)
            if entry is not None:
                entries.append(entry)
    _duplicates(out, requires if isinstance(requires, list) else [])
    _dependencies(out, entries, requires if isinstance(requires, list) else [], schema)
    _cycles(out, entries)
    if header is None:
        return RequirementsCheck(None, out.errors, out.warnings)
    tenant, agent, scenario = header
    model = ScenarioFile(
        path=path,
        tenant=tenant,
        agent=agent,
        scenario=scenario,
        description=description,
        rules=rules or [],
        requirements=[entry.requirement for entry in entries],
    )
    return RequirementsCheck(model, out.errors, out.warnings, doc.where("scenario"))


def _duplicates(out: _Collector, requires: list[Any]) -> None:
    """One requirement per (field, step); judged on the raw entries so that a duplicate is
    reported even when one of the two has an unrelated mistake."""
    seen: dict[tuple[str, Any], int] = {}
    for index, raw in enumerate(requires):
        if not isinstance(raw, dict) or not isinstance(raw.get("field"), str):
            continue
        step = raw.get("step")
        key = (raw["field"], step if isinstance(step, str) else None)
        if key in seen:
            line, _ = out.doc.where("requires", seen[key])
            for_step = f"for step '{key[1]}'" if key[1] is not None else "without a step"
            out.add(
                DUPLICATE_REQUIREMENT,
                f"field '{key[0]}' is already required {for_step} at line {line}",
                "requires",
                index,
                "field",
            )
        else:
            seen[key] = index


def _dependencies(
    out: _Collector, entries: list[_Entry], requires: list[Any], schema: AgentSchema | None
) -> None:
    """depends_on may only name fields this scenario requires: nothing else would collect
    them, and a requirement waiting on them would never apply."""
    required = {
        raw["field"]
        for raw in requires
        if isinstance(raw, dict) and isinstance(raw.get("field"), str)
    }
    for entry in entries:
        for position, dep in entry.depends_on:
            if dep in required:
                continue
            if schema is not None and dep in schema.names:
                why = f"'{dep}', which this scenario does not require: add a requirement for it"
            else:
                why = f"'{dep}', which this scenario does not require" + did_you_mean(
                    dep, frozenset(required)
                )
            out.add(
                UNKNOWN_DEPENDS_ON,
                f"depends_on names {why}",
                "requires",
                entry.index,
                "depends_on",
                position,
            )
