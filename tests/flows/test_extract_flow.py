"""The `extract` flow with a fake extractor (queued answers): only changed files are extracted,
one task per tenant, and a file counts as done only once its tenant's extraction succeeded."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import flows.extract
from ccv.errors import BackendError, UsageError
from ccv.service import extraction
from ccv.service.extraction import ExtractionResult, FileExtraction
from flows._common import TenantsFailed
from flows.extract import extract, extract_tenant

DEMO = Path(__file__).resolve().parents[2] / "fixtures" / "demo"
GLOBEX = "tenant: globex\nagent: bot\nscenario: refund\nrequires:\n  - field: email\n"


class FakeExtractor:
    """Stands in for the LLM extractor. Every call is recorded; a call whose first file has
    queued failures raises the next one, any other proposes one requirement per file."""

    def __init__(self) -> None:
        self.failures: dict[str, list[BaseException]] = {}
        self.calls: list[tuple[list[str], bool]] = []

    def extract(self, paths: Sequence[Path], *, write: bool) -> ExtractionResult:
        names = sorted(p.name for p in paths)
        self.calls.append((names, write))
        queued = self.failures.get(names[0], [])
        if queued:
            raise queued.pop(0)
        return ExtractionResult(
            files=[FileExtraction(path=str(p), proposed=1, written=write) for p in paths]
        )


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, prefect_server: str) -> FakeExtractor:
    fake_model = FakeExtractor()
    monkeypatch.setattr(
        extraction, "get_extractor", lambda settings=None, *, model=None: fake_model
    )
    monkeypatch.setattr(
        flows.extract, "extract_tenant", extract_tenant.with_options(retry_delay_seconds=0)
    )
    return fake_model


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "agents"
    shutil.copytree(DEMO / "requirements", root / "requirements")
    shutil.copytree(DEMO / "schema", root / "schema")
    monkeypatch.setenv("CCV_REQUIREMENTS_DIR", str(root))
    return root


def _run(**parameters: Any) -> tuple[Any, Any]:
    state = extract(**parameters, return_state=True)
    return state, state.result(raise_on_failure=False)


DEMO_FILES = sorted(p.name for p in (DEMO / "requirements").glob("*.yaml"))


def test_only_files_changed_since_the_last_run_are_extracted(
    fake: FakeExtractor, tree: Path
) -> None:
    state, counts = _run()
    assert state.is_completed(), counts
    assert counts == {"northwind-bank": len(DEMO_FILES)}
    assert fake.calls == [(DEMO_FILES, True)]

    state, counts = _run()
    assert state.is_completed() and counts == {}
    assert len(fake.calls) == 1  # nothing changed: the model is not called

    edited = tree / "requirements" / DEMO_FILES[0]
    edited.write_text(edited.read_text() + "# reworded\n")
    (tree / "globex.yaml").write_text(GLOBEX)
    state, counts = _run(directory=str(tree))
    assert state.is_completed() and counts == {"globex": 1, "northwind-bank": 1}
    assert sorted(fake.calls[1:]) == [([DEMO_FILES[0]], True), (["globex.yaml"], True)]


def test_a_dry_run_leaves_the_files_to_the_next_run(fake: FakeExtractor, tree: Path) -> None:
    state, counts = _run(write=False)
    assert state.is_completed() and counts == {"northwind-bank": len(DEMO_FILES)}
    assert fake.calls == [(DEMO_FILES, False)]
    assert not (tree / extraction.STATE_FILE_NAME).exists()
    state, counts = _run(tenants=["globex"])  # another tenant only: nothing to do
    assert state.is_completed() and counts == {}
    state, counts = _run()
    assert counts == {"northwind-bank": len(DEMO_FILES)}


def test_a_failing_model_is_retried_and_a_tenant_that_keeps_failing_waits_for_the_next_run(
    fake: FakeExtractor, tree: Path
) -> None:
    (tree / "globex.yaml").write_text(GLOBEX)
    # globex: one backend failure, retried; northwind-bank: refused, which is not retried.
    fake.failures = {
        "globex.yaml": [BackendError("the LLM is unreachable")],
        DEMO_FILES[0]: [UsageError("model refused")],
    }
    state, error = _run()
    assert state.is_failed() and isinstance(error, TenantsFailed)
    assert str(error) == "extract failed for 1 tenant(s): northwind-bank: UsageError: model refused"
    assert sorted(names for names, _ in fake.calls) == [
        DEMO_FILES,
        ["globex.yaml"],
        ["globex.yaml"],
    ]

    # globex's file was recorded, northwind-bank's wait for the next run.
    state, counts = _run()
    assert state.is_completed() and counts == {"northwind-bank": len(DEMO_FILES)}
