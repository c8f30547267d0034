"""Where one profile read spends its time: cProfile over N `vault.get_profile` calls.

    python -m benchmarks.profile_reads --database-url sqlite:///ccv_bench.db [--reads 10000]

Runs on a benchmark database that `python -m benchmarks` built (tenant `bench`), reads random
customers of it, and prints the per-read time, then the functions with the most time of their
own and the most time below them, per read. `--cache` reads through Redis ($CCV_REDIS_URL).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import random
import time

from benchmarks.backend import Backend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--database-name", default="ccv_bench")
    parser.add_argument("--reads", type=int, default=10_000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--cache", action="store_true", help="read through $CCV_REDIS_URL")
    args = parser.parse_args()

    import os

    from ccv.config import Settings
    from ccv.vault import Vault

    backend = Backend(args.database_url, args.database_name)
    redis_url = os.environ.get("CCV_REDIS_URL") if args.cache else None
    vault = Vault(
        Settings(database_url=backend.ccv_url, redis_url=redis_url, cache_prefix="ccvprofile")
    )
    with vault.db.read() as conn:
        from sqlalchemy import text

        known = list(
            conn.execute(
                text(
                    "SELECT DISTINCT customer FROM fields"
                    " WHERE tenant = 'bench' AND status = 'active'"
                )
            ).scalars()
        )
    rng = random.Random(7)
    customers = [rng.choice(known) for _ in range(args.reads)]
    for customer in customers[:500]:  # warm: statement caches, pools, Redis entries
        vault.get_profile("bench", customer)
    started = time.perf_counter()
    for customer in customers:
        vault.get_profile("bench", customer)
    plain = (time.perf_counter() - started) / len(customers) * 1e6
    profiler = cProfile.Profile()
    profiler.enable()
    for customer in customers:
        vault.get_profile("bench", customer)
    profiler.disable()
    vault.close()
    print(f"{backend.describe()}: {len(customers)} reads, {plain:.0f} µs per read unprofiled")
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats(order).print_stats(args.top)
        print(f"--- by {order} (seconds over all {len(customers)} reads) ---")
        lines = out.getvalue().splitlines()
        start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
        print("\n".join(lines[start:]))


if __name__ == "__main__":
    main()
