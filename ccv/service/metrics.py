"""Prometheus exposition of `ccv report` (extra `ccv[metrics]`): gauges labelled by tenant.

`report_text` gives the text format for a node exporter's textfile collector; `serve` answers
scrapes with the process metrics of `ccv.observe` plus the report gauges, computed per scrape.
Both come from `prometheus_client`, never assembled by hand.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ccv.domain.models import Report
from ccv.errors import CcvError, MissingExtraError

if TYPE_CHECKING:
    from prometheus_client.registry import Collector

log = logging.getLogger("ccv")


def _client() -> Any:
    try:
        import prometheus_client
    except ImportError:
        raise MissingExtraError("metrics", "prometheus_client") from None
    return prometheus_client


def report_families(report: Report) -> Iterator[Any]:
    """The report as metric families (SPEC §11): one gauge per count, labelled by tenant."""
    from prometheus_client.core import GaugeMetricFamily

    def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Any:
        return GaugeMetricFamily(name, doc, labels=("tenant", *labels))

    customers = gauge("ccv_customers", "Customers with a profile.")
    identities = gauge("ccv_identities", "Channel identities linked to customers.")
    fields = gauge("ccv_field_versions", "Stored field versions by status.", ("status",))
    assets = gauge("ccv_asset_versions", "Stored asset versions by status.", ("status",))
    overdue = gauge(
        "ccv_overdue_items",
        "Active fields and assets past expires_at that the expiry sweep has not marked yet.",
    )
    expiring = gauge(
        "ccv_expiring_items", "Active fields and assets expiring within a window.", ("within",)
    )
    confirm = gauge("ccv_requires_confirmation", "Active values that require confirmation.")
    max_depth = gauge("ccv_lineage_max_depth", "Deepest lineage chain of an active item.")
    depths = gauge(
        "ccv_lineage_depth_items", "Active fields and assets by lineage depth.", ("depth",)
    )
    invalid = gauge(
        "ccv_invalid_values", "Active values failing the current definitions.", ("field",)
    )
    for tenant, found in report.tenants.items():
        customers.add_metric([tenant], found.customers)
        identities.add_metric([tenant], found.identities)
        for status, count in found.fields.items():
            fields.add_metric([tenant, status], count)
        for status, count in found.assets.items():
            assets.add_metric([tenant, status], count)
        overdue.add_metric([tenant], found.overdue)
        for window, count in found.expiring.items():
            expiring.add_metric([tenant, window], count)
        confirm.add_metric([tenant], found.requires_confirmation)
        max_depth.add_metric([tenant], found.lineage.max_depth)
        for depth, count in found.lineage.histogram.items():
            depths.add_metric([tenant, depth], count)
        for field, count in found.invalid.items():
            invalid.add_metric([tenant, field], count)
    stamp = GaugeMetricFamily(
        "ccv_report_timestamp_seconds", "When the report counted (Unix time)."
    )
    stamp.add_metric([], report.now.timestamp())
    yield from (customers, identities, fields, assets, overdue, expiring, confirm)
    yield from (max_depth, depths, invalid, stamp)


class _Reported:
    """A collector whose samples are the families of one report, made when collected."""

    def __init__(self, make: Callable[[], Report]) -> None:
        self.make = make

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily("ccv_report_up", "1 when the last scrape's report succeeded.")
        try:
            families = list(report_families(self.make()))
        except CcvError as exc:
            log.warning("report failed during a scrape: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families


def report_text(report: Report) -> str:
    """The Prometheus text exposition of `report` (a registry of its own)."""
    client = _client()
    registry = client.CollectorRegistry(auto_describe=False)
    collector: Collector = _Reported(lambda: report)
    registry.register(collector)
    text: bytes = client.generate_latest(registry)
    return text.decode()


def serve(make: Callable[[], Report], port: int, host: str = "127.0.0.1") -> Any:
    """Start answering scrapes on host:port (a daemon thread); returns the server. The default
    registry (process metrics) plus the report gauges, counted when scraped."""
    client = _client()
    from ccv import observe

    observe.enable()
    registry = client.CollectorRegistry(auto_describe=False)
    registry.register(_Both(client.REGISTRY, _Reported(make)))
    server, thread = client.start_http_server(port, addr=host, registry=registry)
    return server, thread


class _Both:
    """The default registry's samples followed by the report's."""

    def __init__(self, registry: Any, reported: _Reported) -> None:
        self.registry = registry
        self.reported = reported
        self.lock = threading.Lock()

    def collect(self) -> Iterator[Any]:
        with self.lock:  # one report at a time, however many scrapers
            yield from self.registry.collect()
            yield from self.reported.collect()
