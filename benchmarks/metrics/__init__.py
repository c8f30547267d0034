"""Metric modules: importing this package registers every metric.

A new metric is a function decorated with `benchmarks.registry.metric` in one of these modules
(or a new module imported here); `benchmarks.cli.RUN_ORDER` says when it runs.
"""

from benchmarks.metrics import (  # noqa: F401 - imported for their registrations
    cache,
    export,
    flows,
    identity,
    imports,
    lineage,
    llm,
    offline,
    reads,
    report,
    requirements,
    sweeps,
    writes,
)
