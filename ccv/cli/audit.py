"""`ccv audit`: what the vault did, newest first."""

from __future__ import annotations

import typer

from ccv.cli.state import emit, parse_time_option, state


def audit(
    ctx: typer.Context,
    tenant: str = typer.Option(..., "--tenant", help="Tenant."),
    customer: str | None = typer.Option(None, "--customer", help="Only this customer's events."),
    item: str | None = typer.Option(None, "--item", help="Only this item's events (its id)."),
    event: str | None = typer.Option(
        None, "--event", help="Only this event: status_change, delete, erase, reveal_pii, ..."
    ),
    actor: str | None = typer.Option(
        None, "--actor", help="Only this actor: a whole actor or its person (user:ana)."
    ),
    since: str | None = typer.Option(None, "--since", help="Events at or after TIME."),
    until: str | None = typer.Option(None, "--until", help="Events before TIME."),
    limit: int = typer.Option(100, "--limit", help="At most N events (1-10000)."),
    cursor: str | None = typer.Option(
        None, "--cursor", help="Continue after a page: the next_cursor it printed."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> None:
    """Audit events newest first: status changes, deletions, erasures, PII reveals.

    Example: ccv audit --tenant northwind-bank --customer cust-001 --since 2026-12-01
    """
    page = (
        state(ctx)
        .vault()
        .audit(
            tenant,
            customer=customer,
            item_id=item,
            event=event,
            actor=actor,
            since=parse_time_option(since, "--since"),
            until=parse_time_option(until, "--until"),
            limit=limit,
            cursor=cursor,
        )
    )
    emit(page, json_output, "audit")
