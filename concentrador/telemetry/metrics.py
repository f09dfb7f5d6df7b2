"""The process's Prometheus metrics, defined once, recorded by the layers that do the work.

The server (``server/metering.py``) counts requests and bytes and times them;
the client runner times its cycles. The gauges that describe the spool, the
certificates and the peers are not here: they are read when Prometheus
scrapes, from the same status model as the status page
(``console/collector.py``), so they cannot drift from what the page shows.

Our own :class:`CollectorRegistry` rather than prometheus-client's global
one: importing a library must not add metrics to ours, and tests can read
exactly these values.

Label values stay bounded: ``peer`` is a configured peer id (or
``UNKNOWN_PEER`` for requests refused before we knew who called),
``operation`` one of the five CPCSCC operations (or ``UNKNOWN_OPERATION``),
``result`` ``ok``, a fault code or an enviarFichero codigo.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = [
    "BYTES",
    "CYCLE_SECONDS",
    "REGISTRY",
    "REQUESTS",
    "REQUEST_SECONDS",
    "UNKNOWN_OPERATION",
    "UNKNOWN_PEER",
]

UNKNOWN_PEER = "-"
UNKNOWN_OPERATION = "-"

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "concentrador_requests",
    "CPCSCC requests served, by operation, calling peer and result "
    "(ok, the SOAP fault code, or the enviarFichero codigo).",
    ["operation", "peer", "result"],
    registry=REGISTRY,
)
BYTES = Counter(
    "concentrador_server_bytes",
    "Bytes of CPCSCC request bodies received (in) and of answers sent (out), by peer.",
    ["direction", "peer"],
    registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "concentrador_request_duration_seconds",
    "Time to serve one CPCSCC request, from its head to the end of the answer.",
    ["operation"],
    # From a time answer (ms) to an 8 MB block over a slow line (minutes).
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
    registry=REGISTRY,
)
CYCLE_SECONDS = Histogram(
    "concentrador_client_cycle_duration_seconds",
    "Time of one client cycle (collect or push) with one peer, by its result (ok, failed).",
    ["kind", "peer", "result"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
    registry=REGISTRY,
)
