"""`ccv db`: schema migrations (PostgreSQL is migrated only from here)."""

from __future__ import annotations

import typer

from ccv.cli.state import print_json, state, stdout

app = typer.Typer(help="Database migrations (Alembic).", no_args_is_help=True)


def _show(revision: object, json_output: bool) -> None:
    from ccv.service.admin import Revision

    assert isinstance(revision, Revision)
    if json_output:
        print_json(revision)
        return
    status = "up to date" if revision.up_to_date else f"behind (head is {revision.head})"
    stdout().print(f"{revision.database}: revision {revision.current or 'none'}, {status}")
    if revision.citus is not None:
        stdout().print(
            f"  Citus {revision.citus['version']} coordinator, {revision.citus['workers']}"
            " worker(s)",
            highlight=False,
        )
    for ran in revision.ran:
        stdout().print(f"  ran {ran}", highlight=False)


@app.command("upgrade")
def upgrade(
    ctx: typer.Context,
    revision: str = typer.Argument("head", help="Target revision."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Upgrade the database schema. Example: ccv db upgrade"""
    from ccv.service import admin

    _show(admin.upgrade(state(ctx).vault().db, revision), json_output)


@app.command("downgrade")
def downgrade(
    ctx: typer.Context,
    revision: str = typer.Argument(..., help="Target revision (base removes everything)."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Downgrade the database schema. Example: ccv db downgrade base"""
    from ccv.service import admin

    _show(admin.downgrade(state(ctx).vault().db, revision), json_output)


@app.command("current")
def current(
    ctx: typer.Context,
    json_output: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show the database's schema revision. Example: ccv db current"""
    from ccv.service import admin

    _show(admin.current(state(ctx).vault().db), json_output)
