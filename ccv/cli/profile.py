"""`ccv profile`: import, read, trace, validate and the lifecycle operations."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ccv.cli.state import actor, emit, parse_time_option, print_json, state, stderr, stdout
from ccv.errors import RefusedError, UsageError

app = typer.Typer(help="Customer profiles: import, show, trace, lifecycle.", no_args_is_help=True)

JSON = typer.Option(False, "--json", help="Print one JSON document on stdout.")
TENANT = typer.Option(..., "--tenant", help="Tenant.")
LIMIT = typer.Option(
    100, "--limit", min=0, help="List at most N items per tenant (0: all); counts stay exact."
)


def _limit(value: int) -> int | None:
    return None if value == 0 else value


def _mode(value: str | None) -> object:
    if value is None:
        return None
    from ccv.domain.enums import ValidationMode

    try:
        return ValidationMode(value)
    except ValueError:
        raise UsageError("--validation must be strict, warn or disabled") from None


@app.command("import")
def import_(
    ctx: typer.Context,
    files: list[Path] = typer.Argument(
        ...,
        help="Records: .jsonl, .json (array) or wide .csv, each optionally .gz; - reads stdin.",
    ),
    tenant: str | None = typer.Option(None, "--tenant", help="Tenant of records that name none."),
    validation: str | None = typer.Option(
        None, "--validation", help="strict, warn or disabled (overrides the definitions)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Report without storing anything."),
    json_output: bool = JSON,
) -> None:
    """Import profile records; rejected records are listed by file:line (exit 1).

    Example: ccv profile import fixtures/demo/profiles.jsonl --tenant northwind-bank;
    zcat dump.jsonl.gz | ccv profile import -
    """
    from ccv.domain.enums import ValidationMode

    mode = _mode(validation)
    assert mode is None or isinstance(mode, ValidationMode)
    vault = state(ctx).vault()
    if sys.stderr.isatty() and not json_output:
        from ccv.cli.render import import_progress

        with import_progress(stderr()) as bar:
            task = bar.add_task("records checked and stored", total=None)

            def tick(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            result = vault.import_files(
                files,
                tenant=tenant,
                validation_mode=mode,
                dry_run=dry_run,
                actor=actor(ctx),
                progress=tick,
            )
    else:
        result = vault.import_files(
            files, tenant=tenant, validation_mode=mode, dry_run=dry_run, actor=actor(ctx)
        )
    if json_output:
        print_json(result)
    else:
        from ccv.cli import render

        render.import_result(stdout(), result)
    if result.rejected:
        raise typer.Exit(1)


@app.command("show")
def show(
    ctx: typer.Context,
    customer: str = typer.Argument(..., help="Customer id."),
    tenant: str = TENANT,
    history: bool = typer.Option(False, "--history", help="Also list every version."),
    as_of: str | None = typer.Option(None, "--as-of", help="The profile as it stood at TIME."),
    reveal_pii: bool = typer.Option(False, "--reveal-pii", help="Show PII values (audited)."),
    json_output: bool = JSON,
) -> None:
    """Show a customer's profile now or at a past time, PII masked.

    Example: ccv profile show c-1001 --tenant northwind-bank --history
    """
    at = parse_time_option(as_of, "--as-of")
    profile = (
        state(ctx)
        .vault()
        .get_profile(
            tenant, customer, as_of=at, history=history, reveal_pii=reveal_pii, actor=actor(ctx)
        )
    )
    _merged_note(customer, profile.merged_into)
    emit(profile, json_output, "profile", exclude=None if history else {"history", "asset_history"})


def _merged_note(customer: str, merged_into: str | None) -> None:
    """Reads of a merged customer say so on stderr (JSON has `merged_into`)."""
    if merged_into is not None:
        from rich.markup import escape

        stderr().print(
            f"note: {escape(customer)} was merged into {escape(merged_into)}; "
            f"showing {escape(merged_into)}",
            highlight=False,
        )


@app.command("list")
def list_(
    ctx: typer.Context,
    tenant: str = TENANT,
    where: list[str] | None = typer.Option(
        None, "--where", help="NAME=VALUE: only customers whose active NAME is VALUE (repeatable)."
    ),
    limit: int = typer.Option(100, "--limit", help="At most N customers (1-1000)."),
    cursor: str | None = typer.Option(None, "--cursor", help="Continue after a page."),
    json_output: bool = JSON,
) -> None:
    """List customers with their counts, by id; --where finds them by an exact value.

    Example: ccv profile list --tenant acme --where email=ana@example.com
    """
    from ccv.service.listing import parse_where

    result = (
        state(ctx)
        .vault()
        .list_customers(tenant, where=parse_where(where or []), limit=limit, cursor=cursor)
    )
    if json_output:
        print_json(result)
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"customers of {tenant}")
    for column in ("customer", "fields", "assets", "identities", "updated"):
        table.add_column(column)
    for found in result.customers:
        table.add_row(
            escape(found.customer),
            str(found.fields),
            str(found.assets),
            str(found.identities),
            found.updated_at.replace(microsecond=0).isoformat(),
        )
    console = stdout()
    console.print(table)
    if result.next_cursor:
        console.print(f"more customers: --cursor {result.next_cursor}", highlight=False)


@app.command("export")
def export(
    ctx: typer.Context,
    customers: list[str] | None = typer.Argument(None, help="Customers to export."),
    tenant: str = TENANT,
    all_customers: bool = typer.Option(False, "--all", help="Every customer of the tenant."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write to FILE (gzip when it ends in .gz); else stdout."
    ),
    json_output: bool = JSON,
) -> None:
    """Export customers as import records (JSON Lines, values in clear; audited).

    The summary goes to stdout when --output is given, else to stderr.
    Example: ccv profile export --all --tenant acme --output acme.jsonl.gz
    """
    if all_customers == bool(customers):
        raise UsageError("name the customers to export, or pass --all (not both)")
    vault = state(ctx).vault()
    chosen = None if all_customers else customers
    if output is None:
        stream = sys.stdout.buffer
        try:
            result = vault.export_profiles(tenant, stream, customers=chosen, actor=actor(ctx))
            stream.flush()
        except BrokenPipeError:  # the reader stopped (`| head`): the audit says what went out
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(141) from None
    else:
        result = vault.export_profiles(tenant, output, customers=chosen, actor=actor(ctx))
    if json_output:
        if output is None:
            sys.stderr.write(result.model_dump_json(indent=2) + "\n")
        else:
            print_json(result)
        return
    console = stderr() if output is None else stdout()
    console.print(
        f"exported {result.customers} customers of {tenant}: {result.fields} field and "
        f"{result.assets} asset versions, {result.identities} identities, {result.aliases} "
        f"aliases ({result.records} records) to {'stdout' if output is None else output}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


@app.command("trace")
def trace(
    ctx: typer.Context,
    item_id: str = typer.Argument(..., help="Field or asset id."),
    tenant: str = TENANT,
    output_format: str = typer.Option(
        "tree", "--format", help="tree, json, mermaid (flowchart) or dot (Graphviz)."
    ),
    json_output: bool = typer.Option(False, "--json", help="The same as --format json."),
) -> None:
    """Show lineage: the chain up to the root and every dependent, for any status; as a tree,
    JSON, or a picture (Mermaid, Graphviz DOT) labelled with kinds, names, statuses and short
    ids, never values.

    Example: ccv profile trace bef7e268 --tenant northwind-bank --format dot | dot -Tsvg > l.svg
    """
    if output_format.lower() not in ("tree", "json", "mermaid", "dot"):
        raise UsageError("--format must be tree, json, mermaid or dot")
    chosen = "json" if json_output else output_format.lower()
    result = state(ctx).vault().trace(tenant, item_id)
    if chosen in ("mermaid", "dot"):
        from ccv.cli import graph

        sys.stdout.write(graph.mermaid(result) if chosen == "mermaid" else graph.dot(result))
        return
    emit(result, chosen == "json", "trace")


@app.command("validate")
def validate(
    ctx: typer.Context,
    customer: str = typer.Argument(..., help="Customer id."),
    tenant: str = TENANT,
    agent: str = typer.Option(..., "--agent", help="Agent whose schema applies."),
    json_output: bool = JSON,
) -> None:
    """Check the active values against an agent's schema (exit 1 when invalid).

    Example: ccv profile validate c-1001 --tenant northwind-bank --agent support-bot
    """
    report = state(ctx).vault().validate_profile(tenant, customer, agent)
    _merged_note(customer, report.merged_into)
    if json_output:
        print_json(report)
    else:
        from ccv.cli import render

        render.validation(stdout(), report)
    if not report.valid:
        raise typer.Exit(1)


def _tenants(tenant: list[str] | None, all_tenants: bool) -> list[str]:
    if bool(tenant) == all_tenants:
        raise UsageError("give --tenant T or --all-tenants (exactly one)")
    return tenant or []


@app.command("expire")
def expire(
    ctx: typer.Context,
    tenant: list[str] | None = typer.Option(None, "--tenant", help="Tenant (repeatable)."),
    all_tenants: bool = typer.Option(False, "--all-tenants", help="Sweep every tenant."),
    apply: bool = typer.Option(False, "--apply", help="Change statuses (default: dry run)."),
    now: str | None = typer.Option(None, "--now", help="Sweep as if it were TIME."),
    limit: int = LIMIT,
    json_output: bool = JSON,
) -> None:
    """Mark values past expires_at as expired; a dry run unless --apply.

    Example: ccv profile expire --tenant northwind-bank --apply
    """
    tenants = _tenants(tenant, all_tenants)
    at = parse_time_option(now, "--now")
    result = (
        state(ctx)
        .vault()
        .expire(tenants, all_tenants=all_tenants, now=at, apply=apply, actor=actor(ctx))
    )
    emit(result, json_output, "sweep", "expired")


@app.command("orphans")
def orphans(
    ctx: typer.Context,
    tenant: list[str] | None = typer.Option(None, "--tenant", help="Tenant (repeatable)."),
    all_tenants: bool = typer.Option(False, "--all-tenants", help="Sweep every tenant."),
    apply: bool = typer.Option(False, "--apply", help="Change statuses (default: dry run)."),
    limit: int = LIMIT,
    json_output: bool = JSON,
) -> None:
    """Mark items whose vault source is gone as orphaned; a dry run unless --apply.

    Example: ccv profile orphans --all-tenants
    """
    tenants = _tenants(tenant, all_tenants)
    result = (
        state(ctx)
        .vault()
        .orphans(
            tenants,
            all_tenants=all_tenants,
            apply=apply,
            actor=actor(ctx),
            item_limit=_limit(limit),
        )
    )
    emit(result, json_output, "sweep", "orphaned")


@app.command("delete")
def delete(
    ctx: typer.Context,
    item_id: str = typer.Argument(..., help="Field or asset id."),
    tenant: str = TENANT,
    force: bool = typer.Option(False, "--force", help="Delete even with active dependents."),
    json_output: bool = JSON,
) -> None:
    """Delete one version (refused while it has active dependents, exit 4).

    Example: ccv profile delete 9a7e0c1d-... --tenant acme --force
    """
    result = state(ctx).vault().delete(tenant, item_id, force=force, actor=actor(ctx))
    if json_output:
        print_json(result)
        return
    console = stdout()
    console.print(f"deleted {result.kind.value} {result.id}")
    for orphan in result.orphaned:
        console.print(f"  orphaned dependent {orphan}")


@app.command("erase")
def erase(
    ctx: typer.Context,
    customer: str = typer.Argument(..., help="Customer id."),
    tenant: str = TENANT,
    yes: bool = typer.Option(False, "--yes", help="Confirm: this cannot be undone."),
    json_output: bool = JSON,
) -> None:
    """Right to erasure: remove every value of a customer (audit events stay, value-free).

    Example: ccv profile erase c-1001 --tenant acme --yes
    """
    if not yes:
        raise RefusedError(f"erasing {customer} cannot be undone: pass --yes to confirm")
    result = state(ctx).vault().erase(tenant, customer, actor=actor(ctx))
    if json_output:
        print_json(result)
        return
    aliases = f", merged ids {', '.join(result.aliases)}" if result.aliases else ""
    stdout().print(
        f"erased {result.customer}: {result.fields} field version(s), {result.assets} asset(s), "
        f"{result.identities} identit{'y' if result.identities == 1 else 'ies'}{aliases}; "
        f"{len(result.orphaned)} dependent(s) of other customers orphaned",
        highlight=False,
    )


@app.command("merge")
def merge(
    ctx: typer.Context,
    source: str = typer.Argument(..., help="The customer id that goes (becomes an alias)."),
    into: str = typer.Option(..., "--into", help="The customer id that stays."),
    tenant: str = TENANT,
    apply: bool = typer.Option(False, "--apply", help="Merge (default: dry run)."),
    json_output: bool = JSON,
) -> None:
    """Merge two customers: every version and identity of SOURCE moves to TARGET in one
    transaction; per name the newest version stays active, the others are superseded (history
    of both kept). SOURCE then names TARGET in every later command and import. Dry run unless
    --apply.

    Example: ccv profile merge c-2042 --into c-1001 --tenant acme --apply
    """
    result = state(ctx).vault().merge_customers(tenant, source, into, apply=apply, actor=actor(ctx))
    emit(result, json_output, "merge")


@app.command("gaps")
def gaps(
    ctx: typer.Context,
    customer: str = typer.Argument(..., help="Customer id."),
    tenant: str = TENANT,
    scenario: str = typer.Option(..., "--scenario", help="Scenario id."),
    now: str | None = typer.Option(
        None, "--now", help="Judge expiry and freshness as if it were TIME."
    ),
    json_output: bool = JSON,
) -> None:
    """List the scenario's unmet requirements for a customer, in collection order, with the
    prompt to ask and why each is missing. Exit 0 whatever is missing; 3 for an unknown scenario.

    Example: ccv profile gaps c-1024 --tenant northwind-bank --scenario refund-request
    """
    at = parse_time_option(now, "--now")
    result = state(ctx).vault().gaps(tenant, customer, scenario, now=at)
    _merged_note(customer, result.merged_into)
    if json_output:
        print_json(result)
        return
    from rich.markup import escape
    from rich.table import Table

    console = stdout()
    console.print(
        f"[bold]{escape(result.customer)}[/] for scenario [bold]{escape(result.scenario)}[/] "
        f"(tenant {escape(result.tenant)}, agent {escape(result.agent)})"
    )
    if result.missing:
        table = Table(title="missing, in collection order")
        for column in ("#", "field", "step", "level", "fallback", "reason", "prompt"):
            table.add_column(column)
        for entry in result.missing:
            table.add_row(
                "" if entry.collection_order is None else str(entry.collection_order),
                entry.field,
                escape(entry.step or ""),
                entry.level.value,
                entry.fallback.value,
                entry.reason,
                escape(entry.collection_prompt or ""),
            )
        console.print(table)
    else:
        console.print("[green]nothing missing[/]")
    satisfied = ", ".join(result.satisfied) if result.satisfied else "none"
    console.print(f"satisfied: {escape(satisfied)}", highlight=False)


@app.command("fill")
def fill(
    ctx: typer.Context,
    customer: str = typer.Argument(..., help="Customer id."),
    tenant: str = TENANT,
    scenario: str = typer.Option(..., "--scenario", help="Scenario id."),
    transcript: Path = typer.Option(
        ..., "--transcript", help='JSON: [{"role", "content"}, ...] or {"session_id", "turns"}.'
    ),
    model: str | None = typer.Option(
        None, "--model", help="litellm model string (default CCV_LLM_MODEL)."
    ),
    api_base: str | None = typer.Option(
        None, "--api-base", help="OpenAI-style base URL, e.g. http://127.0.0.1:8000/v1."
    ),
    apply: bool = typer.Option(False, "--apply", help="Store the values (default: dry run)."),
    reveal_pii: bool = typer.Option(False, "--reveal-pii", help="Show PII values (audited)."),
    json_output: bool = JSON,
) -> None:
    """Fill a customer's gaps in a scenario from a conversation transcript, with one LLM call.

    Only values the transcript states (with a quote found in it) that pass the schema are kept;
    below confidence 0.8 they are stored with requires_confirmation. Dry run unless --apply.
    Exit 5 when the LLM fails or answers malformed output twice; nothing is stored then.

    Example: ccv profile fill c-1024 --tenant northwind-bank --scenario refund-request
    --transcript chat.json --model openai/gpt-4o-mini --apply
    """
    result = (
        state(ctx)
        .vault()
        .fill(
            tenant,
            customer,
            scenario,
            transcript,
            model=model,
            api_base=api_base,
            apply=apply,
            reveal_pii=reveal_pii,
            actor=actor(ctx),
        )
    )
    if json_output:
        print_json(result)
        return
    from rich.markup import escape
    from rich.table import Table

    console = stdout()
    verb = "stored" if result.applied else "would store"
    console.print(
        f"[bold]{escape(result.customer)}[/] for scenario [bold]{escape(result.scenario)}[/] "
        f"from session {escape(result.session_id)}",
        highlight=False,
    )
    if not result.requested:
        console.print("[green]nothing to fill[/]")
        return
    if result.filled:
        table = Table(title=f"{verb} (source llm_extracted)")
        for column in ("field", "value", "confidence", "confirm", "turn", "quote"):
            table.add_column(column)
        for value in result.filled:
            table.add_row(
                value.field,
                escape(str(value.value)),
                f"{value.confidence:.2f}",
                "yes" if value.requires_confirmation else "",
                str(value.turn),
                escape(value.quote),
            )
        console.print(table)
    for dropped in result.rejected:
        console.print(
            f"[yellow]not used:[/] {dropped.field} = {escape(str(dropped.value))} "
            f"({escape(dropped.reason)})",
            highlight=False,
        )
    missing = ", ".join(result.still_missing) or "none"
    console.print(f"still missing: {escape(missing)}", highlight=False)
    if result.filled and not result.applied:
        console.print("dry run: pass --apply to store these values", highlight=False)
