"""`ccv report`: what the vault holds per tenant, for people, scripts and Prometheus."""

from __future__ import annotations

import sys

import typer

from ccv.cli.state import parse_time_option, print_json, state, stdout
from ccv.errors import UsageError

FORMATS = ("text", "json", "prometheus")


def report(
    ctx: typer.Context,
    tenant: list[str] | None = typer.Option(None, "--tenant", help="Tenant (repeatable)."),
    all_tenants: bool = typer.Option(False, "--all-tenants", help="Every tenant."),
    now: str | None = typer.Option(None, "--now", help="Count as if it were TIME."),
    output_format: str = typer.Option(
        "text", "--format", help="text, json or prometheus (text exposition)."
    ),
    json_output: bool = typer.Option(False, "--json", help="The same as --format json."),
) -> None:
    """Counts per tenant: customers, versions by status, overdue and expiring values,
    lineage depth, values failing the current definitions.

    Example: ccv report --all-tenants --format prometheus > /var/lib/node_exporter/ccv.prom
    """
    if output_format not in FORMATS:
        raise UsageError("--format must be text, json or prometheus")
    if json_output:
        output_format = "json"
    result = (
        state(ctx)
        .vault()
        .report(tenant or [], all_tenants=all_tenants, now=parse_time_option(now, "--now"))
    )
    if output_format == "json":
        print_json(result)
    elif output_format == "prometheus":
        from ccv.service.metrics import report_text

        sys.stdout.write(report_text(result))
    else:
        from ccv.cli import render

        render.report(stdout(), result)
