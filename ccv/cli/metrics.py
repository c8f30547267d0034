"""`ccv metrics serve`: Prometheus scrapes of the process metrics and the report gauges."""

from __future__ import annotations

import signal
import threading

import typer

from ccv.cli.state import state, stderr

app = typer.Typer(help="Prometheus metrics (needs ccv[metrics]).", no_args_is_help=True)


@app.command("serve")
def serve(
    ctx: typer.Context,
    port: int = typer.Option(9464, "--port", min=0, max=65535, help="TCP port (0: any free)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    tenant: list[str] | None = typer.Option(
        None, "--tenant", help="Report these tenants only (repeatable; default: every tenant)."
    ),
) -> None:
    """Serve /metrics until interrupted: the report gauges, counted at each scrape, and this
    process's metrics.

    Example: ccv metrics serve --port 9464 --host 0.0.0.0
    """
    from ccv.service.metrics import serve as start

    vault = state(ctx).vault()
    tenants = list(tenant or [])
    server, _ = start(lambda: vault.report(tenants, all_tenants=not tenants), port=port, host=host)
    bound = server.server_address[1]
    stderr().print(f"serving metrics on http://{host}:{bound}/metrics", highlight=False)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
