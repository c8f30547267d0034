"""`ccv identity`: channel identities (SPEC §10): resolve, link, unlink, list."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from ccv.cli.state import actor, print_json, state, stdout

if TYPE_CHECKING:
    from ccv.domain.models import IdentityResult

app = typer.Typer(
    help="Channel identities: which customer a WhatsApp number, email or cookie belongs to.",
    no_args_is_help=True,
)

JSON = typer.Option(False, "--json", help="Print one JSON document on stdout.")
TENANT = typer.Option(..., "--tenant", help="Tenant.")
CHANNEL = typer.Option(..., "--channel", help="Channel slug: whatsapp, sms, email, web, ...")
ID = typer.Option(..., "--id", help="The user's id on that channel (1-256 characters).")


def _emit(result: IdentityResult, json_output: bool) -> None:
    """An identity command's result: JSON, or one sentence saying what it did."""
    if json_output:
        print_json(result)
        return
    from rich.markup import escape

    identity = result.identity
    what = f"{identity.channel} {identity.channel_user_id}"
    verbs = {
        "created": f"created customer {result.customer} for",
        "found": f"customer {result.customer} is",
        "linked": f"linked to {result.customer}:",
        "moved": f"moved from {result.moved_from} to {result.customer}:",
        "updated": f"verified for {result.customer}:",
        "unchanged": f"already linked to {result.customer}:",
        "unlinked": f"unlinked from {result.customer}:",
    }
    stdout().print(escape(f"{verbs[result.outcome]} {what}"), highlight=False)


@app.command("resolve")
def resolve(
    ctx: typer.Context,
    tenant: str = TENANT,
    channel: str = CHANNEL,
    channel_user_id: str = ID,
    create: bool = typer.Option(
        False, "--create", help="Create the identity (and a customer) when it is unknown."
    ),
    customer: str | None = typer.Option(
        None, "--customer", help="With --create: the customer id to use (default: a new UUID)."
    ),
    json_output: bool = JSON,
) -> None:
    """The customer of a channel identity (exit 3 if none). With --create, get or create it
    atomically: concurrent creates of one identity yield one customer.

    Example: ccv identity resolve --tenant acme --channel whatsapp --id +4915112345678 --create
    """
    if customer is not None and not create:
        from ccv.errors import UsageError

        raise UsageError("--customer names the customer to create: it needs --create")
    result = (
        state(ctx)
        .vault()
        .resolve_identity(
            tenant, channel, channel_user_id, create=create, customer=customer, actor=actor(ctx)
        )
    )
    _emit(result, json_output)


@app.command("link")
def link(
    ctx: typer.Context,
    customer: str = typer.Argument(..., help="Customer id."),
    tenant: str = TENANT,
    channel: str = CHANNEL,
    channel_user_id: str = ID,
    verified: bool = typer.Option(False, "--verified", help="The identity has been verified."),
    move: bool = typer.Option(
        False, "--move", help="Take the identity from the customer it belongs to."
    ),
    json_output: bool = JSON,
) -> None:
    """Link an identity to a customer; refused (exit 4) when it belongs to another customer,
    unless --move.

    Example: ccv identity link c-1001 --tenant acme --channel email --id ana@example.com --verified
    """
    result = (
        state(ctx)
        .vault()
        .link_identity(
            tenant,
            customer,
            channel,
            channel_user_id,
            verified=verified,
            move=move,
            actor=actor(ctx),
        )
    )
    _emit(result, json_output)


@app.command("unlink")
def unlink(
    ctx: typer.Context,
    tenant: str = TENANT,
    channel: str = CHANNEL,
    channel_user_id: str = ID,
    json_output: bool = JSON,
) -> None:
    """Remove an identity from its customer (exit 3 if it is unknown).

    Example: ccv identity unlink --tenant acme --channel web --id cookie-7f3a
    """
    result = state(ctx).vault().unlink_identity(tenant, channel, channel_user_id, actor=actor(ctx))
    _emit(result, json_output)


@app.command("list")
def list_(
    ctx: typer.Context,
    customer: str = typer.Argument(..., help="Customer id."),
    tenant: str = TENANT,
    reveal_pii: bool = typer.Option(
        False, "--reveal-pii", help="Show email and phone ids (audited)."
    ),
    json_output: bool = JSON,
) -> None:
    """A customer's channel identities, email addresses and phone numbers masked.

    Example: ccv identity list c-1001 --tenant acme
    """
    result = (
        state(ctx)
        .vault()
        .list_identities(tenant, customer, reveal_pii=reveal_pii, actor=actor(ctx))
    )
    if json_output:
        print_json(result)
        return
    from ccv.cli import render

    render.identity_list(stdout(), result)
