"""`ccv cache`: the Redis read cache's shared counters, and dropping its entries."""

from __future__ import annotations

import typer

from ccv.cli.state import print_json, state, stdout

app = typer.Typer(
    help="The Redis read cache (needs --redis-url or CCV_REDIS_URL).", no_args_is_help=True
)


@app.command("stats")
def stats(
    ctx: typer.Context,
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> None:
    """Hits, misses and errors counted in Redis by every process, and the hit rate.

    Example: ccv --redis-url redis://127.0.0.1:6379/0 cache stats --json
    """
    result = state(ctx).vault().cache_stats()
    if json_output:
        print_json(result)
        return
    rate = "n/a" if result.hit_rate is None else f"{result.hit_rate:.1%}"
    stdout().print(
        f"hits {result.hits}, misses {result.misses}, errors {result.errors}, hit rate {rate}",
        highlight=False,
    )


@app.command("flush")
def flush(
    ctx: typer.Context,
    tenant: str | None = typer.Option(None, "--tenant", help="Only this tenant's entries."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> None:
    """Drop cached entries (the database is untouched; reads refill the cache).

    Example: ccv cache flush --tenant northwind-bank
    """
    result = state(ctx).vault().flush_cache(tenant)
    if json_output:
        print_json(result)
        return
    if result.tenant is not None:
        from rich.markup import escape

        stdout().print(f"flushed the cache of tenant {escape(result.tenant)}", highlight=False)
    else:
        stdout().print(f"flushed the cache: {result.deleted} entries deleted", highlight=False)
