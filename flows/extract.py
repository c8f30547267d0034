"""The `extract` flow (hourly): requirement extraction for the requirements files whose content
changed since the last run."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from ccv.service import extraction
from ccv.service.extraction import ChangeSet, ExtractionResult
from flows._common import (
    RETRYING,
    gather,
    log_ccv_events,
    report,
    task_runner,
)


@task(name="detect-changes", cache_policy=NO_CACHE)
def detect_changes(directory: str | None, state_file: str | None) -> ChangeSet:
    """Requirements files changed since their last recorded extraction (SHA-256 of content)."""
    return extraction.detect_changes(
        extraction.watched_directory(directory), Path(state_file) if state_file else None
    )


@task(
    name="extract-tenant",
    task_run_name="extract-{tenant}",
    **RETRYING,
)
def extract_tenant(
    tenant: str, files: list[str], write: bool, model: str | None
) -> ExtractionResult:
    """Extraction for one tenant's changed files (the model is ccv's configured extractor)."""
    return extraction.get_extractor(model=model).extract([Path(f) for f in files], write=write)


@task(name="record-extracted", cache_policy=NO_CACHE)
def record_extracted(
    directory: str, files: list[str], removed: list[str], state_file: str | None
) -> int:
    """Remember the extracted files' content hashes, so that the next run skips them."""
    return extraction.record_extracted(
        Path(directory),
        files,
        removed=removed,
        state_file=Path(state_file) if state_file else None,
    )


@flow(name="extract", task_runner=task_runner())
def extract(
    directory: str | None = None,
    tenants: list[str] | None = None,
    write: bool = True,
    model: str | None = None,
    state_file: str | None = None,
) -> dict[str, int]:
    """Re-run requirement extraction for the requirements files changed since the last run.

    directory: the requirements files (default CCV_REQUIREMENTS_DIR), searched recursively.
    tenants: only these tenants' files; null takes every tenant.
    write: write the proposals into the files and remember them as done; false is a dry run
      that reports what it would propose and leaves them to the next run.
    model: the LLM (default CCV_LLM_MODEL).
    state_file: where the content hashes are kept (default DIRECTORY/.ccv-extract-state.json).
    Returns the number of files extracted per tenant.
    """
    log_ccv_events()
    changes = detect_changes(directory, state_file)
    if changes.unreadable:
        get_run_logger().warning(
            "extract: skipped files that are not readable YAML: %s", ", ".join(changes.unreadable)
        )
    groups = {
        tenant: [change.file for change in files]
        for tenant, files in changes.by_tenant().items()
        if tenants is None or tenant in tenants
    }
    futures = {
        tenant: extract_tenant.submit(tenant, files, write, model)
        for tenant, files in sorted(groups.items())
    }
    done, failed = gather(futures)
    if write and (done or changes.removed):
        extracted = [file for tenant in done for file in groups[tenant]]
        record_extracted(changes.directory, extracted, changes.removed, changes.state_file)
    report(
        "extract",
        {
            tenant: {"files": len(result.files), "proposed": result.proposed, "written": write}
            for tenant, result in done.items()
        },
        failed,
        f"Requirement extraction per tenant ({changes.unchanged} files unchanged)",
    )
    return {tenant: len(result.files) for tenant, result in done.items()}
