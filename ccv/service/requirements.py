"""Requirements capability: check requirement files and the schema files they rely on, with
no database (the CI gate), and store them (`requirements apply`).

Only the domain layer is imported at module level: validating never loads SQLAlchemy or opens
a database; `apply_requirements` imports the store when it runs.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel
from pydantic import Field as ModelField

from ccv.domain.models import FieldDefinition, Finding
from ccv.domain.requirements_file import (
    DUPLICATE_KEY,
    DUPLICATE_SCENARIO,
    INVALID_FILE,
    YAML_SYNTAX,
    AgentSchema,
    ScenarioFile,
    parse_requirements,
)
from ccv.domain.schema_file import parse_schema
from ccv.domain.yamldoc import YamlDoc, YamlError, parse_yaml
from ccv.errors import InvalidFilesError, UsageError

if TYPE_CHECKING:
    from ccv.store.cache import RedisCache
    from ccv.store.database import Database

YAML_SUFFIXES = (".yaml", ".yml")
DUPLICATE_AGENT = "duplicate-agent"


class RequirementsValidation(BaseModel):
    """The outcome of `requirements validate` (SPEC §5 JSON shape: files, errors, warnings)."""

    files: int
    errors: list[Finding]
    warnings: list[Finding]
    # For the commands that store what they validated; never part of the JSON output.
    scenarios: list[ScenarioFile] = ModelField(default_factory=list, exclude=True)

    def failed(self, strict: bool = False) -> bool:
        return bool(self.errors) or (strict and bool(self.warnings))


@dataclass
class _Source:
    path: Path
    explicit: bool  # named on the command line, not found in a directory
    as_schema: bool  # given with --schema


@dataclass
class _Read:
    source: _Source
    kind: str  # "schema" | "requirements" | "broken"
    doc: YamlDoc | None
    text: str | None
    findings: list[Finding]


def _walk(directory: Path) -> Iterator[Path]:
    """YAML files under a directory, sorted, skipping hidden files and directories (.git,
    .venv, .github...), which never hold requirement files and can be large."""
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and name.lower().endswith(YAML_SUFFIXES):
                yield Path(root) / name


def _sources(paths: Sequence[Path], schema_paths: Sequence[Path]) -> list[_Source]:
    sources: list[_Source] = []
    seen: set[Path] = set()
    for as_schema, group in ((True, schema_paths), (False, paths)):
        for path in group:
            if path.is_dir():
                found = [_Source(f, False, as_schema) for f in _walk(path)]
            elif path.exists():
                found = [_Source(path, True, as_schema)]
            else:
                raise UsageError(f"{path}: no such file or directory")
            for source in found:
                key = source.path.resolve()
                if key not in seen:
                    seen.add(key)
                    sources.append(source)
    return sources


def _finding(path: Path, line: int, column: int, code: str, message: str) -> Finding:
    return Finding(file=str(path), line=line, column=column, code=code, message=message)


def _kind(data: Any) -> str | None:
    """Told apart by content (SPEC §5): `fields` makes a schema file, `requires` (or a
    `scenario`, so that a file missing its `requires` is still recognised) a requirements file."""
    if not isinstance(data, dict):
        return None
    schema = "fields" in data
    requirements = "requires" in data or "scenario" in data
    if schema and requirements:
        return "both"
    return "schema" if schema else "requirements" if requirements else None


def _read(source: _Source) -> _Read | None:
    """The file parsed and classified; None for a YAML file found in a directory that is
    neither a schema nor a requirements file (other YAML may live beside them)."""
    path = source.path
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        finding = _finding(path, 1, 1, INVALID_FILE, "the file is not UTF-8 text")
        return _Read(source, "broken", None, None, [finding])
    except OSError as exc:
        finding = _finding(path, 1, 1, INVALID_FILE, f"cannot read the file: {exc.strerror}")
        return _Read(source, "broken", None, None, [finding])
    try:
        doc = parse_yaml(text)
    except YamlError as exc:
        code = DUPLICATE_KEY if str(exc).startswith("duplicate key") else YAML_SYNTAX
        finding = _finding(path, exc.line, exc.column, code, str(exc))
        return _Read(source, "broken", None, text, [finding])
    if source.explicit and source.as_schema:
        return _Read(source, "schema", doc, text, [])
    kind = _kind(doc.data)
    if kind == "both":
        finding = _finding(
            path,
            *doc.where(),
            INVALID_FILE,
            "the file has both fields (a schema) and requires (a requirements file); "
            "keep one agent's schema and each scenario in files of their own",
        )
        return _Read(source, "broken", doc, text, [finding])
    if kind is None:
        if not source.explicit:
            return None
        finding = _finding(
            path,
            *doc.where(),
            INVALID_FILE,
            "neither a schema file (top-level fields) nor a requirements file (top-level requires)",
        )
        return _Read(source, "broken", doc, text, [finding])
    return _Read(source, kind, doc, text, [])


def _text_key(data: Any, key: str) -> str | None:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def _schemas(
    reads: list[_Read], given: Mapping[tuple[str, str], AgentSchema | None]
) -> tuple[dict[tuple[str, str], AgentSchema | None], list[Finding]]:
    """Each agent's schema compiled once. An agent whose schema file is invalid maps to None:
    its requirement files then skip the schema checks instead of drowning in false alarms."""
    compiled: dict[tuple[str, str], AgentSchema | None] = {}
    defined_in: dict[tuple[str, str], Path] = {}
    findings: list[Finding] = []
    for read in reads:
        if read.kind != "schema" or read.doc is None:
            continue
        definitions, problems = parse_schema(str(read.source.path), read.doc)
        findings.extend(problems)
        tenant, agent = _text_key(read.doc.data, "tenant"), _text_key(read.doc.data, "agent")
        if tenant is None or agent is None:
            continue
        key = (tenant, agent)
        if key in defined_in:
            findings.append(
                _finding(
                    read.source.path,
                    *read.doc.where("agent"),
                    DUPLICATE_AGENT,
                    f"agent {agent} of tenant {tenant} is also defined in {defined_in[key]} "
                    "(one schema file per agent)",
                )
            )
            continue
        defined_in[key] = read.source.path
        compiled[key] = None if problems else AgentSchema(tenant, agent, definitions)
    return {**given, **compiled}, findings


def validate_requirements(
    paths: Sequence[Path],
    schema_paths: Sequence[Path] = (),
    schemas: Mapping[tuple[str, str], AgentSchema | None] | None = None,
) -> RequirementsValidation:
    """Check every schema and requirements file under `paths` and `schema_paths`.

    Directories are searched recursively for *.yaml and *.yml; a YAML file found there that is
    neither kind is skipped, a file named explicitly must be one. `schemas` adds compiled
    schemas from elsewhere (the database, for `requirements apply`); schema files given here
    take precedence over them. A path that does not exist is a usage error.
    """
    sources = _sources(paths, schema_paths)
    reads = [read for read in map(_read, sources) if read is not None]
    if not reads:
        where = ", ".join(str(p) for p in (*paths, *schema_paths))
        raise UsageError(f"no schema or requirements files found in {where}")
    compiled, errors = _schemas(reads, schemas or {})
    warnings: list[Finding] = []
    scenarios: list[ScenarioFile] = []
    owners: dict[tuple[str, str], list[tuple[Path, tuple[int, int]]]] = {}
    for read in reads:
        errors.extend(read.findings)
        if read.kind != "requirements" or read.doc is None:
            continue
        check = parse_requirements(str(read.source.path), read.doc, compiled, read.text)
        errors.extend(check.errors)
        warnings.extend(check.warnings)
        if check.scenario is not None:
            scenarios.append(check.scenario)
            key = (check.scenario.tenant, check.scenario.scenario)
            owners.setdefault(key, []).append((read.source.path, check.scenario_at))
    for (tenant, scenario), files in owners.items():
        if len(files) < 2:
            continue
        for path, (line, column) in files:
            others = ", ".join(str(other) for other, _ in files if other != path)
            errors.append(
                _finding(
                    path,
                    line,
                    column,
                    DUPLICATE_SCENARIO,
                    f"scenario '{scenario}' of tenant {tenant} is also defined in {others} "
                    "(one file per scenario)",
                )
            )
    order = {str(read.source.path): index for index, read in enumerate(reads)}

    def position(finding: Finding) -> tuple[int, int, int, str]:
        return (order.get(finding.file, len(order)), finding.line, finding.column, finding.code)

    return RequirementsValidation(
        files=len(reads),
        errors=sorted(errors, key=position),
        warnings=sorted(warnings, key=position),
        scenarios=scenarios,
    )


# --- apply: validate, then store ------------------------------------------------------------


class ScenarioApplied(BaseModel):
    """What `requirements apply` did to one scenario."""

    tenant: str
    scenario: str
    agent: str
    file: str
    status: Literal["created", "updated", "unchanged"]
    created: int
    updated: int
    unchanged: int
    removed: int


class RequirementsApplyResult(BaseModel):
    """The outcome of `requirements apply`: requirement counts over every file, per scenario
    details, and the warnings (which never block)."""

    files: int
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    scenarios: list[ScenarioApplied] = ModelField(default_factory=list)
    warnings: list[Finding] = ModelField(default_factory=list)


def content_hash(scenario: ScenarioFile) -> str:
    """What the file says, independent of layout and comments: a reformatted file keeps its
    hash, a changed description, rule or requirement does not."""
    data = scenario.model_dump(mode="json", exclude={"path"})
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def apply_requirements(
    db: Database, paths: Sequence[Path], *, cache: RedisCache | None = None
) -> RequirementsApplyResult:
    """Validate like `requirements validate`, against the agents' schemas stored in the
    database merged with any schema files among `paths` (files win), then store each
    requirements file as the whole truth for its scenario, all in one transaction.

    Any error stores nothing (InvalidFilesError, exit 1); warnings are returned. Schema files
    among `paths` are only read for checking: `schema apply` stores them.
    """
    # Imported here: `validate_requirements` must stay free of SQLAlchemy.
    from ccv.domain.timeutil import utcnow
    from ccv.store import outbox
    from ccv.store import requirements as store
    from ccv.store.definitions import load_definitions

    # A first, database-free pass names the tenants whose stored schemas are needed.
    tenants = sorted({s.tenant for s in validate_requirements(paths).scenarios})
    stored: dict[tuple[str, str], AgentSchema | None] = {}
    with db.read() as conn:
        for tenant in tenants:
            by_agent: dict[str, list[FieldDefinition]] = {}
            for definition in load_definitions(conn, tenant):
                by_agent.setdefault(definition.agent, []).append(definition)
            for agent, definitions in by_agent.items():
                stored[(tenant, agent)] = AgentSchema(tenant, agent, definitions)
    result = validate_requirements(paths, schemas=stored)
    if result.errors:
        raise InvalidFilesError(
            [(f.file, f.line, f.column, f"{f.message} ({f.code})") for f in result.errors]
        )
    outcome = RequirementsApplyResult(files=result.files, warnings=result.warnings)
    now = utcnow()
    changed: set[str] = set()
    with db.write() as conn:
        store.lock_scenarios(conn, ((s.tenant, s.scenario) for s in result.scenarios))
        for scenario in result.scenarios:
            header = store.ScenarioHeader(
                tenant=scenario.tenant,
                scenario=scenario.scenario,
                agent=scenario.agent,
                description=scenario.description,
                source_file=scenario.path,
                content_hash=content_hash(scenario),
            )
            counts = store.replace_scenario(conn, header, scenario.requirements, now)
            if counts.changed:
                changed.add(scenario.tenant)
            status: Literal["created", "updated", "unchanged"] = (
                "created"
                if counts.scenario_created
                else "updated"
                if counts.changed
                else "unchanged"
            )
            outcome.scenarios.append(
                ScenarioApplied(
                    tenant=scenario.tenant,
                    scenario=scenario.scenario,
                    agent=scenario.agent,
                    file=scenario.path,
                    status=status,
                    created=counts.created,
                    updated=counts.updated,
                    unchanged=counts.unchanged,
                    removed=counts.removed,
                )
            )
            outcome.created += counts.created
            outcome.updated += counts.updated
            outcome.unchanged += counts.unchanged
            outcome.removed += counts.removed
        owed = [outbox.record(conn, t, requirements=True, now=now) for t in sorted(changed)]
    # Committed: the tenants' cached scenarios go stale (one INCR each).
    if cache is not None:
        for recorded in owed:
            cache.deliver(recorded)
    return outcome
