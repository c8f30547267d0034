"""`ccv schema`: field definitions per agent."""

from __future__ import annotations

from pathlib import Path

import typer

from ccv.cli.state import print_json, state, stdout

app = typer.Typer(help="Field definitions (schema files, one per agent).", no_args_is_help=True)


@app.command("apply")
def apply(
    ctx: typer.Context,
    files: list[Path] = typer.Argument(..., help="Schema YAML files."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Show what would change per definition; store nothing."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Load field definitions; each file is the whole truth for its agent (idempotent).

    Example: ccv schema apply schemas/support-bot.yaml --dry-run
    """
    result = state(ctx).vault().apply_schema(files, dry_run=dry_run)
    if json_output:
        print_json(result)
        return
    from rich.markup import escape

    console = stdout()
    verb = "would be " if dry_run else ""
    console.print(
        f"{result.files} file(s): {result.created} {verb}created, {result.updated} {verb}updated,"
        f" {result.unchanged} unchanged, {result.disabled} {verb}disabled",
        highlight=False,
    )
    for change in result.changes:
        what = f" ({', '.join(change.attributes)})" if change.attributes else ""
        console.print(
            escape(f"  {change.change} {change.tenant}/{change.agent}/{change.name}{what}"),
            highlight=False,
        )
    if dry_run:
        console.print("dry run: nothing stored", highlight=False)


@app.command("show")
def show(
    ctx: typer.Context,
    tenant: str = typer.Option(..., "--tenant", help="Tenant."),
    agent: str | None = typer.Option(None, "--agent", help="Only this agent."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List field definitions. Example: ccv schema show --tenant acme --agent support-bot"""
    definitions = state(ctx).vault().schema(tenant, agent)
    if json_output:
        print_json(
            {"tenant": tenant, "definitions": [d.model_dump(mode="json") for d in definitions]}
        )
        return
    from rich.table import Table

    table = Table(title=f"Field definitions of {tenant}")
    for column in ("agent", "name", "type", "pii", "retention", "mode", "prompt"):
        table.add_column(column)
    for d in definitions:
        table.add_row(
            d.agent,
            d.name,
            d.value_type.value,
            "yes" if d.is_pii else "",
            f"{d.retention_days}d" if d.retention_days else "",
            d.validation_mode.value,
            d.collection_prompt or "",
        )
    stdout().print(table)
