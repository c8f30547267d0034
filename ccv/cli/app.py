"""The `ccv` command line: global options, error handling, and the command groups.

Kept light at import time: services, SQLAlchemy and Rich tables load inside the commands.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer._click.exceptions import ClickException
from typer.core import TyperGroup

from ccv.cli.state import State, state
from ccv.errors import CcvError, UsageError


class CcvGroup(TyperGroup):
    """Turns CcvError into one red line on stderr and the SPEC exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except CcvError as exc:
            if isinstance(ctx.obj, State) and ctx.obj.debug:
                raise
            _fail(str(exc), exc.exit_code)
        except (typer.Exit, typer.Abort, ClickException):
            raise  # exits and usage errors that the command line machinery reports itself
        except Exception as exc:  # noqa: BLE001 - last resort, see below
            from sqlalchemy.exc import DBAPIError

            if isinstance(ctx.obj, State) and ctx.obj.debug:
                raise
            if isinstance(exc, DBAPIError):
                from ccv.store.engine import backend_error

                error = backend_error(exc, "the configured database")
                _fail(str(error), error.exit_code)
            # A bug: say so in one line; --debug shows the traceback.
            _fail(f"internal error ({type(exc).__name__}: {exc}); rerun with --debug", 1)
        finally:
            if isinstance(ctx.obj, State):
                ctx.obj.close()


def _fail(message: str, code: int) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    for line in message.splitlines() or [""]:
        console.print(f"[bold red]error:[/] {escape(line)}")
    raise typer.Exit(code)


app = typer.Typer(
    cls=CcvGroup,
    name="ccv",
    help="Customer Context Vault: customer context with lineage, lifecycle and schema.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def main_options(
    ctx: typer.Context,
    database_url: str | None = typer.Option(
        None,
        "--database-url",
        help="Database URL (env CCV_DATABASE_URL; default sqlite:///ccv.db).",
    ),
    redis_url: str | None = typer.Option(
        None, "--redis-url", help="Redis URL for the read cache (env CCV_REDIS_URL)."
    ),
    config: str | None = typer.Option(None, "--config", help="A ccv.toml settings file."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
    actor: str | None = typer.Option(
        None,
        "--actor",
        envvar="CCV_ACTOR",
        help="Who acts, as audit events record it (env CCV_ACTOR; default user:<OS user>).",
    ),
    log_format: str = typer.Option(
        "text", "--log-format", envvar="CCV_LOG_FORMAT", help="Logs on stderr: text or json."
    ),
    log_level: str = typer.Option(
        "warning",
        "--log-level",
        envvar="CCV_LOG_LEVEL",
        help="debug, info, warning (default) or error.",
    ),
) -> None:
    """Customer Context Vault: customer context with lineage, lifecycle and schema."""
    current = state(ctx)
    current.database_url = database_url
    current.redis_url = redis_url
    current.config = config
    current.debug = debug
    from ccv import observe

    try:
        observe.configure_logging(log_format.lower(), log_level.lower())
    except ValueError as exc:
        raise UsageError(f"--log-format/--log-level: {exc}") from None
    if actor is not None:
        from ccv.service.audit import check_actor

        current.actor = check_actor(actor)


def _register() -> None:
    from ccv.cli import (
        audit,
        cache,
        db,
        identity,
        metrics,
        profile,
        report,
        requirements,
        schema,
    )

    app.add_typer(db.app, name="db")
    app.add_typer(schema.app, name="schema")
    app.add_typer(profile.app, name="profile")
    app.add_typer(identity.app, name="identity")
    app.add_typer(requirements.app, name="requirements")
    app.add_typer(cache.app, name="cache")
    app.command("audit")(audit.audit)
    app.command("report")(report.report)
    app.add_typer(metrics.app, name="metrics")


_register()


def main() -> None:
    """Console entry point."""
    sys.exit(app())
