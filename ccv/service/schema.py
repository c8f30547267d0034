"""Schema capability: apply schema files (field definitions per agent) and list them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ccv.domain.definitions import compile_rules
from ccv.domain.models import DefinitionChange, FieldDefinition, Finding, SchemaApplyResult
from ccv.domain.schema_file import parse_schema
from ccv.domain.timeutil import utcnow
from ccv.domain.yamldoc import YamlError, parse_yaml
from ccv.errors import InvalidFilesError, UsageError
from ccv.service import validity
from ccv.store import outbox
from ccv.store.database import Database
from ccv.store.definitions import load_definitions, replace_agent

if TYPE_CHECKING:
    from ccv.store.cache import RedisCache


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not a file") from None
    except UnicodeDecodeError:
        raise InvalidFilesError([(str(path), 1, 1, "the file is not UTF-8 text")]) from None
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror}") from None


def load_schema_file(path: Path) -> tuple[list[FieldDefinition], list[Finding]]:
    text = read_text(path)
    try:
        doc = parse_yaml(text)
    except YamlError as exc:
        return [], [
            Finding(
                file=str(path),
                line=exc.line,
                column=exc.column,
                code="yaml-syntax",
                message=str(exc),
            )
        ]
    return parse_schema(str(path), doc)


def _conflicts(
    given: dict[tuple[str, str], list[FieldDefinition]], stored: Sequence[FieldDefinition]
) -> list[tuple[str, int, int, str]]:
    """Agents of one tenant must agree on each field's value_type."""
    problems: list[tuple[str, int, int, str]] = []
    replaced_agents = {agent for _, agent in given}
    seen: dict[str, FieldDefinition] = {d.name: d for d in stored if d.agent not in replaced_agents}
    for (_tenant, _agent), definitions in sorted(given.items()):
        for definition in definitions:
            other = seen.get(definition.name)
            if other is not None and other.value_type != definition.value_type:
                problems.append(
                    (
                        definition.source_file or "?",
                        1,
                        1,
                        f"field '{definition.name}' is {definition.value_type.value} here but "
                        f"{other.value_type.value} in {other.source_file or 'the stored schema'} "
                        f"(agent {other.agent}); agents of one tenant must agree on value_type",
                    )
                )
            else:
                seen.setdefault(definition.name, definition)
    return problems


# Bookkeeping, not what a definition says.
_NOT_ATTRIBUTES = frozenset({"id", "tenant", "agent", "name", "updated_at", "source_file"})


def _changes(
    before: Sequence[FieldDefinition], after: Sequence[FieldDefinition]
) -> list[DefinitionChange]:
    old = {(d.agent, d.name): d for d in before}
    changes = []
    for new in after:
        was = old.get((new.agent, new.name))
        base = {"tenant": new.tenant, "agent": new.agent, "name": new.name}
        if was is None:
            changes.append(DefinitionChange(**base, change="created"))
            continue
        if was.enabled and not new.enabled:
            changes.append(DefinitionChange(**base, change="disabled"))
            continue
        then, now = was.model_dump(), new.model_dump()
        differ = sorted(k for k in now if k not in _NOT_ATTRIBUTES and now[k] != then.get(k))
        if differ:
            changes.append(DefinitionChange(**base, change="updated", attributes=differ))
    return changes


def apply_schema(
    db: Database,
    paths: Sequence[Path],
    *,
    dry_run: bool = False,
    cache: RedisCache | None = None,
) -> SchemaApplyResult:
    """Validate every file, then replace each agent's definitions in one transaction (rolled
    back when `dry_run`: the result says what would change, per definition)."""
    findings: list[Finding] = []
    by_agent: dict[tuple[str, str], list[FieldDefinition]] = {}
    files_of: dict[tuple[str, str], str] = {}
    for path in paths:
        definitions, problems = load_schema_file(path)
        findings.extend(problems)
        if not definitions:
            continue
        key = (definitions[0].tenant, definitions[0].agent)
        if key in files_of:
            findings.append(
                Finding(
                    file=str(path),
                    line=1,
                    column=1,
                    code="duplicate-agent",
                    message=f"agent {key[1]} of tenant {key[0]} is also defined in {files_of[key]}",
                )
            )
            continue
        files_of[key] = str(path)
        by_agent[key] = definitions
    if findings:
        raise InvalidFilesError([(f.file, f.line, f.column, f.message) for f in findings])
    now = utcnow()
    created = updated = unchanged = disabled = 0
    changed: set[str] = set()
    changes: list[DefinitionChange] = []
    transaction = db.rollback_only() if dry_run else db.write()
    with transaction as conn:
        for tenant in sorted({t for t, _ in by_agent}):
            group = {key: defs for key, defs in by_agent.items() if key[0] == tenant}
            before = load_definitions(conn, tenant)
            conflicts = _conflicts(group, before)
            if conflicts:
                raise InvalidFilesError(conflicts)
            names: set[str] = set()
            for (_, agent), definitions in sorted(group.items()):
                c, u, same, removed, touched = replace_agent(conn, tenant, agent, definitions, now)
                created, updated, unchanged = created + c, updated + u, unchanged + same
                disabled += removed
                names |= touched
            if names:
                changed.add(tenant)
                # The active values of the changed names are judged by the new definitions.
                rules = compile_rules(load_definitions(conn, tenant))
                validity.restamp(conn, tenant, rules, names)
            agents = {agent for _, agent in group}
            changes.extend(
                _changes(
                    [d for d in before if d.agent in agents],
                    [d for d in load_definitions(conn, tenant) if d.agent in agents],
                )
            )
        # PII flags and validators feed every cached read of these tenants.
        owed = [outbox.record(conn, tenant, epoch=True, now=now) for tenant in sorted(changed)]
        stored = [
            d
            for tenant in sorted({t for t, _ in by_agent})
            for d in load_definitions(conn, tenant)
            if (d.tenant, d.agent) in by_agent
        ]
    # Committed: now the tenants' cached entries go.
    if cache is not None and not dry_run:
        for recorded in owed:
            cache.deliver(recorded)
    return SchemaApplyResult(
        files=len(paths),
        created=created,
        updated=updated,
        unchanged=unchanged,
        disabled=disabled,
        definitions=stored,
        dry_run=dry_run,
        changes=changes,
    )


def show_schema(db: Database, tenant: str, agent: str | None = None) -> list[FieldDefinition]:
    with db.read() as conn:
        return load_definitions(conn, tenant, agent)
