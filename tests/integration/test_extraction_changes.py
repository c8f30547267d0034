"""The change detector of requirement extraction: which requirements files changed since the
last recorded extraction, by content hash, with the state kept in a small JSON file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ccv.errors import UsageError
from ccv.service.extraction import (
    STATE_FILE_NAME,
    ChangeSet,
    detect_changes,
    get_extractor,
    record_extracted,
    watched_directory,
)

DEMO = Path(__file__).resolve().parents[2] / "fixtures" / "demo"
REQUIREMENTS = sorted(p.name for p in (DEMO / "requirements").glob("*.yaml"))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """The demo's requirements and schema files, as a team keeps them in a repository."""
    root = tmp_path / "agents"
    shutil.copytree(DEMO / "requirements", root / "requirements")
    shutil.copytree(DEMO / "schema", root / "schema")
    (root / ".github").mkdir()
    (root / ".github" / "ci.yaml").write_text("requires: [hidden folders are skipped]\n")
    return root


def _paths(changes: ChangeSet) -> list[str]:
    return [c.path for c in changes.changed]


def test_first_run_sees_every_requirements_file_and_no_schema_file(tree: Path) -> None:
    changes = detect_changes(tree)
    assert _paths(changes) == [f"requirements/{name}" for name in REQUIREMENTS]
    assert {c.tenant for c in changes.changed} == {"northwind-bank"}
    assert list(changes.by_tenant()) == ["northwind-bank"]
    assert changes.state_file == str(tree / STATE_FILE_NAME)
    assert (changes.unchanged, changes.removed) == (0, [])


def test_recorded_files_are_unchanged_until_their_content_changes(tree: Path) -> None:
    first = detect_changes(tree)
    assert record_extracted(tree, [c.file for c in first.changed]) == len(REQUIREMENTS)
    again = detect_changes(tree)
    assert (again.changed, again.unchanged) == ([], len(REQUIREMENTS))

    edited = tree / "requirements" / REQUIREMENTS[0]
    edited.write_text(edited.read_text() + "# reworded\n")
    (tree / "requirements" / REQUIREMENTS[1]).touch()  # a new mtime is not a change
    assert _paths(detect_changes(tree)) == [f"requirements/{REQUIREMENTS[0]}"]


def test_a_new_file_of_another_tenant_is_grouped_apart(tree: Path) -> None:
    record_extracted(tree, [c.file for c in detect_changes(tree).changed])
    (tree / "globex.yml").write_text(
        "tenant: globex\nagent: bot\nscenario: refund\nrequires:\n  - field: email\n"
    )
    changes = detect_changes(tree)
    assert {t: [c.path for c in cs] for t, cs in changes.by_tenant().items()} == {
        "globex": ["globex.yml"]
    }


def test_deleted_files_are_reported_and_forgotten_once_recorded(tree: Path) -> None:
    record_extracted(tree, [c.file for c in detect_changes(tree).changed])
    (tree / "requirements" / REQUIREMENTS[0]).unlink()
    changes = detect_changes(tree)
    assert changes.removed == [f"requirements/{REQUIREMENTS[0]}"]
    record_extracted(tree, [], removed=changes.removed)
    assert detect_changes(tree).removed == []
    state = json.loads((tree / STATE_FILE_NAME).read_text())
    assert sorted(state["files"]) == [f"requirements/{name}" for name in REQUIREMENTS[1:]]


def test_unreadable_yaml_is_a_change_without_tenant(tree: Path) -> None:
    broken = tree / "requirements" / "broken.yaml"
    broken.write_text("tenant: [unclosed\n")
    changes = detect_changes(tree)
    assert changes.unreadable == ["requirements/broken.yaml"]
    assert "requirements/broken.yaml" not in [
        c.path for cs in changes.by_tenant().values() for c in cs
    ]


def test_the_hash_recorded_is_the_content_after_extraction(tree: Path) -> None:
    # An extractor that writes its proposals into the file must not trigger the next run.
    changes = detect_changes(tree)
    target = Path(changes.changed[0].file)
    target.write_text(target.read_text() + "# proposals written by the extractor\n")
    record_extracted(tree, [c.path for c in changes.changed])  # relative paths work too
    assert detect_changes(tree).changed == []


def test_a_state_file_elsewhere_and_a_corrupt_one(tree: Path, tmp_path: Path) -> None:
    state = tmp_path / "state" / "extract.json"
    record_extracted(tree, [c.file for c in detect_changes(tree, state).changed], state_file=state)
    assert detect_changes(tree, state).changed == []
    assert not (tree / STATE_FILE_NAME).exists()
    state.write_text("{not json")
    with pytest.raises(UsageError, match="delete it to extract every file again"):
        detect_changes(tree, state)


def test_directory_comes_from_the_argument_or_ccv_requirements_dir(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CCV_REQUIREMENTS_DIR", raising=False)
    with pytest.raises(UsageError, match="CCV_REQUIREMENTS_DIR"):
        watched_directory(None)
    monkeypatch.setenv("CCV_REQUIREMENTS_DIR", str(tree))
    assert watched_directory(None) == tree
    assert watched_directory(str(tree / "requirements")) == tree / "requirements"
    with pytest.raises(UsageError, match="not a directory"):
        detect_changes(tree / "missing")


def test_the_extractor_needs_a_model_and_builds_without_importing_litellm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ccv.service.extractor import LLMRequirementExtractor

    monkeypatch.delenv("CCV_LLM_MODEL", raising=False)
    with pytest.raises(UsageError, match="--model"):
        get_extractor()
    extractor = get_extractor(model="openai/gpt-4o-mini")
    assert isinstance(extractor, LLMRequirementExtractor)
    assert extractor.model.name == "openai/gpt-4o-mini"
