"""What every command shares: global options, the vault built on first use, output helpers."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import typer

from ccv.errors import UsageError

if TYPE_CHECKING:
    from pydantic import BaseModel
    from rich.console import Console

    from ccv.vault import Vault


@dataclass
class State:
    database_url: str | None = None
    redis_url: str | None = None
    config: str | None = None
    debug: bool = False
    actor: str | None = None
    _vault: Vault | None = field(default=None, repr=False)

    def vault(self) -> Vault:
        if self._vault is None:
            from ccv.config import load_settings
            from ccv.vault import Vault

            settings = load_settings(
                database_url=self.database_url,
                redis_url=self.redis_url,
                config_file=self.config,
            )
            self._vault = Vault(settings)
        return self._vault

    def close(self) -> None:
        if self._vault is not None:
            self._vault.close()
            self._vault = None


def state(ctx: typer.Context) -> State:
    root = ctx.find_root()
    if not isinstance(root.obj, State):
        root.obj = State()
    return root.obj


def actor(ctx: typer.Context) -> str:
    """The audit actor: who (`--actor`, `CCV_ACTOR`, the OS user) via which command line."""
    from ccv.service.audit import acting

    command = ctx.command_path.removeprefix(ctx.find_root().info_name or "ccv").strip()
    return acting(f"cli:{command}", state(ctx).actor)


def parse_time_option(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    from ccv.domain.timeutil import parse_time

    try:
        return parse_time(value)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None


def stdout() -> Console:
    from rich.console import Console

    # Piped output is read by people in logs and CI too: do not squeeze it to 80 columns.
    return Console() if sys.stdout.isatty() else Console(width=160)


def stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True)


def print_json(model: BaseModel | dict[str, Any], exclude: set[str] | None = None) -> None:
    """One JSON document on stdout and nothing else there."""
    if isinstance(model, dict):
        import json

        text = json.dumps(model, ensure_ascii=False, indent=2, default=str)
    else:
        text = model.model_dump_json(indent=2, exclude=exclude)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def emit(
    result: BaseModel,
    json_output: bool,
    renderer: str,
    *args: Any,
    exclude: set[str] | None = None,
) -> None:
    """Print a service result: JSON on stdout, or the Rich view `ccv.cli.render.<renderer>`
    (imported only then, keeping `--help` light)."""
    if json_output:
        print_json(result, exclude=exclude)
        return
    from ccv.cli import render

    getattr(render, renderer)(stdout(), result, *args)
