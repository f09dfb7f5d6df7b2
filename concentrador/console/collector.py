"""The gauges of ``/metrics``, read when Prometheus scrapes, from the status page's model.

The counters and histograms live in :mod:`concentrador.telemetry.metrics`
(recorded as the work happens); these gauges describe state, so they are
computed from :func:`~concentrador.console.overview.build_overview` at
scrape time and can never disagree with the page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from concentrador.console.overview import Overview, parse_time

__all__ = ["StatusCollector"]


class StatusCollector(Collector):
    """Gauges over one :class:`Overview`, built afresh on every scrape."""

    def __init__(self, overview: Callable[[], Overview]) -> None:
        self._overview = overview

    def collect(self) -> Iterator[GaugeMetricFamily]:
        overview = self._overview()
        files = GaugeMetricFamily(
            "concentrador_spool_files",
            "Files in each spool state, per peer.",
            labels=["peer", "state"],
        )
        offset = GaugeMetricFamily(
            "concentrador_peer_clock_offset_seconds",
            "The peer's clock minus ours, measured at its last collection.",
            labels=["peer"],
        )
        last_ok = GaugeMetricFamily(
            "concentrador_last_successful_cycle_timestamp_seconds",
            "When the last successful client cycle with the peer ended (Unix time).",
            labels=["peer", "kind"],
        )
        for peer in overview.peers:
            for state, count in peer.status.counts.items():
                files.add_metric([peer.id, state], count)
            if peer.clock_offset is not None:
                offset.add_metric([peer.id], peer.clock_offset)
            for kind, key in (("collect", "last_cycle_ok_at"), ("push", "last_push_ok_at")):
                when = parse_time(peer.fact(key))
                if when is not None:
                    last_ok.add_metric([peer.id, kind], when.timestamp())
        expiry = GaugeMetricFamily(
            "concentrador_certificate_expiry_timestamp_seconds",
            "When each certificate of the node expires (Unix time).",
            labels=["role", "subject"],
        )
        for cert in overview.node.certificates:
            if cert.not_after is not None:
                expiry.add_metric([cert.role, cert.subject or ""], cert.not_after.timestamp())
        crl = GaugeMetricFamily(
            "concentrador_crl_next_update_timestamp_seconds",
            "When the CRL in use says a newer one is due (Unix time).",
        )
        if overview.node.crl is not None and overview.node.crl.next_update is not None:
            crl.add_metric([], overview.node.crl.next_update.timestamp())
        started = GaugeMetricFamily(
            "concentrador_start_time_seconds", "When the daemon started (Unix time)."
        )
        started.add_metric([], overview.started_at.timestamp())
        yield from (files, offset, last_ok, expiry, crl, started)
