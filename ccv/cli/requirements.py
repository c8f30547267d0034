"""`ccv requirements`: scenario requirement files. `validate` needs no database (a CI gate);
`apply` stores them."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ccv.cli.state import print_json, state, stderr, stdout
from ccv.errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from ccv.domain.models import Finding
    from ccv.service.requirements import RequirementsValidation

app = typer.Typer(
    help="Scenario requirement files (one YAML file per scenario).", no_args_is_help=True
)


class OutputFormat(StrEnum):
    TEXT = "text"
    JSON = "json"
    GITHUB = "github"


@app.command("validate")
def validate(
    paths: list[Path] = typer.Argument(
        ..., help="Requirement and schema YAML files, or directories to search recursively."
    ),
    schema: list[Path] | None = typer.Option(
        None, "--schema", help="A schema file (or directory) to check against; repeatable."
    ),
    output: OutputFormat = typer.Option(
        OutputFormat.TEXT, "--format", help="text, json, or github (Actions annotations)."
    ),
    json_output: bool = typer.Option(False, "--json", help="Same as --format json."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 on warnings too."),
) -> None:
    """Check requirement files against their agents' schemas, without a database.

    Exit 1 on errors, and on warnings with --strict.

    Example: ccv requirements validate requirements/ --schema schemas/ --format github
    """
    if json_output:
        if output is OutputFormat.GITHUB:
            raise UsageError("--json and --format github cannot be combined")
        output = OutputFormat.JSON
    from ccv.service.requirements import validate_requirements

    result = validate_requirements(paths, schema or [])
    if output is OutputFormat.JSON:
        print_json(result)
    elif output is OutputFormat.GITHUB:
        _github(result)
    else:
        _text(stdout(), result)
    if result.failed(strict):
        raise typer.Exit(1)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _summary(result: RequirementsValidation) -> str:
    return (
        f"{_plural(result.files, 'file')} checked: {_plural(len(result.errors), 'error')}, "
        f"{_plural(len(result.warnings), 'warning')}"
    )


def _text(console: Console, result: RequirementsValidation) -> None:
    from rich.markup import escape

    by_file: dict[str, list[tuple[str, Finding]]] = {}
    for severity, findings in (("error", result.errors), ("warning", result.warnings)):
        for finding in findings:
            by_file.setdefault(finding.file, []).append((severity, finding))
    for file in sorted(by_file):
        console.print(f"[bold]{escape(file)}[/]", soft_wrap=True)
        rows = sorted(by_file[file], key=lambda row: (row[1].line, row[1].column))
        for severity, finding in rows:
            style = "red" if severity == "error" else "yellow"
            where = f"{finding.line}:{finding.column}"
            console.print(
                f"  {where:<8} [{style}]{severity:<7}[/] {finding.code:<22} "
                f"{escape(finding.message)}",
                soft_wrap=True,
                highlight=False,
            )
    style = "red" if result.errors else "yellow" if result.warnings else "green"
    console.print(f"[{style}]{_summary(result)}[/]", highlight=False)


def _escape_data(text: str) -> str:
    # GitHub Actions workflow-command escaping (as in @actions/core).
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _github(result: RequirementsValidation) -> None:
    lines = []
    for command, findings in (("error", result.errors), ("warning", result.warnings)):
        for f in findings:
            lines.append(
                f"::{command} file={_escape_property(f.file)},line={f.line},col={f.column},"
                f"title={_escape_property(f.code)}::{_escape_data(f.message)}"
            )
    if lines:
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
    # Annotations alone on stdout; the summary goes to the log through stderr.
    stderr().print(_summary(result), highlight=False)


@app.command("apply")
def apply(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(
        ..., help="Requirement files (and schema files to check against), or directories."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> None:
    """Validate requirement files, then store each as the whole truth for its scenario.

    Checks run as in `validate`, against the agents' schemas in the database (schema files
    among the PATHs take precedence; `schema apply` stores those). Any error stores nothing
    (exit 1); warnings are printed and do not block. Requirements no longer in a file are
    removed; re-applying the same files changes nothing.

    Example: ccv requirements apply requirements/
    """
    result = state(ctx).vault().apply_requirements(paths)
    if result.warnings:
        from rich.markup import escape

        console = stderr()
        for f in result.warnings:
            console.print(
                f"[yellow]warning:[/] {escape(f.file)}:{f.line}:{f.column}: "
                f"{escape(f.message)} ({f.code})",
                soft_wrap=True,
                highlight=False,
            )
    if json_output:
        print_json(result)
        return
    console = stdout()
    for scenario in result.scenarios:
        console.print(
            f"{scenario.tenant}/{scenario.scenario} ({scenario.status}): "
            f"{scenario.created} created, {scenario.updated} updated, "
            f"{scenario.unchanged} unchanged, {scenario.removed} removed",
            highlight=False,
        )
    console.print(
        f"{_plural(len(result.scenarios), 'scenario')} from {_plural(result.files, 'file')}: "
        f"{result.created} created, {result.updated} updated, {result.unchanged} unchanged, "
        f"{result.removed} removed",
        highlight=False,
    )


@app.command("extract")
def extract(
    paths: list[Path] = typer.Argument(
        ..., help="Requirement files (and the agents' schema files), or directories."
    ),
    schema: list[Path] | None = typer.Option(
        None, "--schema", help="A schema file (or directory) of the agents; repeatable."
    ),
    model: str | None = typer.Option(
        None, "--model", help="litellm model string (default CCV_LLM_MODEL)."
    ),
    api_base: str | None = typer.Option(
        None, "--api-base", help="OpenAI-style base URL, e.g. http://127.0.0.1:8000/v1."
    ),
    write: bool = typer.Option(
        False, "--write", help="Merge the suggestions into the files (comments and order kept)."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> None:
    """Propose requirements from each scenario's description and rules, as a diff.

    Fields named in `when` conditions and {{profile.NAME}} templates are proposed without the
    LLM (confidence 1.0); one LLM call per file proposes the rest (cached by content hash: an
    unchanged file costs no call). Confidence below 0.8 sets needs_human_review; fields the
    schema lacks come back as definitions to add and are not written. --write never changes a
    requirement already in the file. Exit 5 when the LLM fails; nothing is written then.

    Example: ccv requirements extract fixtures/demo --model openai/gpt-4o-mini --write
    """
    from ccv.config import load_settings
    from ccv.service.extraction import get_extractor

    extractor = get_extractor(
        load_settings(), model=model, api_base=api_base, schema_paths=schema or []
    )
    result = extractor.extract(paths, write=write)
    if json_output:
        print_json(result)
        return
    from rich.markup import escape

    console = stdout()
    for file in result.files:
        state_note = " (cached)" if file.cached else ""
        console.print(
            f"[bold]{escape(file.path)}[/]{state_note}: {_plural(file.proposed, 'suggestion')}"
            + (", written" if file.written else ""),
            highlight=False,
            soft_wrap=True,
        )
        if file.diff:
            sys.stdout.flush()
            console.print(escape(file.diff), highlight=False, soft_wrap=True, end="")
        for definition in file.definitions:
            console.print(
                f"  [yellow]define in the schema:[/] {definition['name']} "
                f"({definition['value_type']}{', PII' if definition['is_pii'] else ''})",
                highlight=False,
            )
    if not write and any(file.diff for file in result.files):
        console.print("dry run: pass --write to merge these into the files", highlight=False)
