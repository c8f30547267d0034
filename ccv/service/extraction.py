"""Requirement extraction: the interface that the scheduled flow and `ccv requirements extract`
call, and the detector that finds the requirements files changed since the last run.

The LLM-backed extractor lives in ccv/service/extractor.py (`get_extractor` builds it). The
change state is a small JSON file (by default `.ccv-extract-state.json` in the watched
directory): extraction reads and writes files, not the vault, so its bookkeeping travels with
the files (a volume, a checkout) and needs neither a database nor a migration.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel
from pydantic import Field as ModelField

from ccv.config import Settings
from ccv.domain.timeutil import ensure_utc, utcnow
from ccv.domain.yamldoc import YamlError, parse_yaml
from ccv.errors import UsageError

STATE_FILE_NAME = ".ccv-extract-state.json"
STATE_VERSION = 1
YAML_SUFFIXES = (".yaml", ".yml")


class FileExtraction(BaseModel):
    """What extraction did with one requirements file."""

    path: str
    scenario: str | None = None
    proposed: int = 0  # requirements proposed by the model (new or changed)
    written: bool = False
    cached: bool = False  # answered from the content-hash cache: no LLM call
    suggestions: list[dict[str, Any]] = ModelField(default_factory=list)
    definitions: list[dict[str, Any]] = ModelField(default_factory=list)  # fields to define
    diff: str = ""  # the file against the file with the suggestions merged in


class ExtractionResult(BaseModel):
    files: list[FileExtraction] = ModelField(default_factory=list)

    @property
    def proposed(self) -> int:
        return sum(file.proposed for file in self.files)


class RequirementExtractor(Protocol):
    """Proposes requirements from the scenario and rule text of requirements files.

    With `write`, the proposals are written back into the files given (never elsewhere: a new
    file would count as a change at the next run); without, nothing is written. Raises
    `BackendError` when the model is unreachable or keeps answering malformed output.
    """

    def extract(self, paths: Sequence[Path], *, write: bool) -> ExtractionResult: ...


def get_extractor(
    settings: Settings | None = None,
    *,
    model: str | None = None,
    api_base: str | None = None,
    schema_paths: Sequence[Path] | None = None,
) -> RequirementExtractor:
    """The LLM extractor for `model` (default CCV_LLM_MODEL, at CCV_LLM_API_BASE).

    Agents' schemas come from schema files among the paths given to `extract`, from
    `schema_paths`, else from CCV_REQUIREMENTS_DIR. litellm is imported at the first call.
    """
    if settings is None:
        from ccv.config import load_settings

        settings = load_settings()
    from ccv.service.extractor import LLMRequirementExtractor
    from ccv.service.llm import build_model

    llm = build_model(settings, model=model, api_base=api_base)
    if schema_paths is None:
        schema_paths = [settings.requirements_dir] if settings.requirements_dir else []
    return LLMRequirementExtractor(llm, schema_paths=schema_paths)


class ChangedFile(BaseModel):
    """A requirements file whose content differs from the last successful extraction."""

    path: str  # relative to the watched directory, with forward slashes: the state's key
    file: str  # absolute path, to read
    sha256: str
    tenant: str | None  # the file's `tenant`, or None when the file cannot be read as YAML


class ChangeSet(BaseModel):
    directory: str
    state_file: str
    changed: list[ChangedFile]
    unchanged: int
    removed: list[str]  # recorded files that no longer exist

    def by_tenant(self) -> dict[str, list[ChangedFile]]:
        """Readable changed files grouped by tenant (unreadable ones are in `unreadable`)."""
        groups: dict[str, list[ChangedFile]] = {}
        for change in self.changed:
            if change.tenant is not None:
                groups.setdefault(change.tenant, []).append(change)
        return groups

    @property
    def unreadable(self) -> list[str]:
        return [change.path for change in self.changed if change.tenant is None]


def watched_directory(directory: str | Path | None, settings: Settings | None = None) -> Path:
    """The directory to watch: the one given, else CCV_REQUIREMENTS_DIR."""
    if directory:
        return Path(directory)
    if settings is None:
        from ccv.config import load_settings

        settings = load_settings()
    if settings.requirements_dir is None:
        raise UsageError("give the requirements directory, or set CCV_REQUIREMENTS_DIR")
    return settings.requirements_dir


def state_path(directory: Path, state_file: Path | None = None) -> Path:
    return state_file if state_file is not None else directory / STATE_FILE_NAME


def _yaml_files(directory: Path) -> Iterator[Path]:
    """YAML files under `directory`, skipping hidden files and folders (.git, .github)."""
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.endswith(YAML_SUFFIXES) and not name.startswith("."):
                yield Path(root) / name


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_state(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        files = data["files"]
        if not isinstance(files, dict):
            raise TypeError("files is not an object")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        # Starting over would silently re-extract (and pay for) every file: the operator decides.
        raise UsageError(
            f"the extraction state file {path} is unreadable ({exc}); "
            "delete it to extract every file again"
        ) from None
    return files


def _requirements_tenant(path: Path) -> tuple[bool, str | None]:
    """(is a requirements file, its tenant). Schema files and other YAML are not extracted."""
    try:
        data = parse_yaml(path.read_text(encoding="utf-8")).data
    except (OSError, UnicodeDecodeError, YamlError):
        return True, None
    if not isinstance(data, dict):
        return True, None
    if "requires" not in data and "scenario" not in data:
        return False, None
    tenant = data.get("tenant")
    return True, tenant if isinstance(tenant, str) and tenant else None


def detect_changes(directory: Path, state_file: Path | None = None) -> ChangeSet:
    """The requirements files under `directory` whose content changed since their last recorded
    extraction (all of them on the first run), compared by SHA-256 of their bytes."""
    if not directory.is_dir():
        raise UsageError(f"{directory} is not a directory")
    state = state_path(directory, state_file)
    recorded = _read_state(state)
    changed: list[ChangedFile] = []
    seen: set[str] = set()
    unchanged = 0
    for file in _yaml_files(directory):
        key = file.relative_to(directory).as_posix()
        seen.add(key)
        digest = _digest(file)
        entry = recorded.get(key)
        if isinstance(entry, dict) and entry.get("sha256") == digest:
            unchanged += 1
            continue
        is_requirements, tenant = _requirements_tenant(file)
        if is_requirements:
            changed.append(
                ChangedFile(path=key, file=str(file.resolve()), sha256=digest, tenant=tenant)
            )
    return ChangeSet(
        directory=str(directory.resolve()),
        state_file=str(state),
        changed=changed,
        unchanged=unchanged,
        removed=sorted(set(recorded) - seen),
    )


@contextmanager
def _locked(state: Path) -> Iterator[None]:
    """An exclusive lock beside the state file: concurrent runs merge, never overwrite."""
    import fcntl

    with open(state.with_name(state.name + ".lock"), "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def record_extracted(
    directory: Path,
    files: Sequence[str],
    *,
    removed: Sequence[str] = (),
    state_file: Path | None = None,
    at: datetime | None = None,
) -> int:
    """Record `files` (absolute, or relative to `directory`) as extracted, with the hash of their
    content now: a file the extractor rewrote is not a change at the next run. `removed` keys
    are forgotten. Returns how many files were recorded."""
    state = state_path(directory, state_file)
    when = ensure_utc(at or utcnow()).isoformat()
    state.parent.mkdir(parents=True, exist_ok=True)
    with _locked(state):
        recorded = _read_state(state)
        for key in removed:
            recorded.pop(key, None)
        count = 0
        for name in files:
            path = Path(name) if Path(name).is_absolute() else directory / name
            if not path.is_file():  # deleted while extracting: picked up as removed next time
                continue
            key = path.resolve().relative_to(directory.resolve()).as_posix()
            recorded[key] = {"sha256": _digest(path), "extracted_at": when}
            count += 1
        document = {"version": STATE_VERSION, "files": dict(sorted(recorded.items()))}
        handle, temporary = tempfile.mkstemp(dir=state.parent, prefix=state.name + ".")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(document, out, indent=1)
                out.write("\n")
            os.replace(temporary, state)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    return count
