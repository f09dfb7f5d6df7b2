"""Request metrics of the CPCSCC app: one middleware, and notes from the handlers.

The middleware times every request and counts it, with its body and answer
bytes, once it is answered. What only the handler knows (which operation,
which peer, which fault code or enviarFichero codigo) it writes on the
request with :func:`note`, so ``app.py`` stays one line per fact.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from concentrador.telemetry.metrics import (
    BYTES,
    REQUEST_SECONDS,
    REQUESTS,
    UNKNOWN_OPERATION,
    UNKNOWN_PEER,
)

__all__ = ["METER_KEY", "RequestMeter", "metering_middleware", "note"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class RequestMeter:
    """What a handler learnt about one request, for its metric labels."""

    operation: str = UNKNOWN_OPERATION
    peer: str = UNKNOWN_PEER
    result: str | None = None  # None: "ok" for a 2xx/3xx answer, else "http_<status>"


METER_KEY = web.RequestKey("concentrador_meter", RequestMeter)

# prometheus_client's ``labels()`` validates and locks on every call (~3 µs,
# four per request); the children it returns are kept forever anyway, so they
# are looked up here once. The label values are bounded (operations, configured
# peers, fault codes, statuses); the cap only guards against a surprise.
_MAX_CACHED = 4096
_children: dict[tuple[object, ...], Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    key = (id(metric), *labels)
    child = _children.get(key)
    if child is None:
        child = metric.labels(*labels)
        if len(_children) < _MAX_CACHED:
            _children[key] = child
    return child


def note(
    request: web.BaseRequest,
    *,
    operation: object = None,
    peer: str | None = None,
    result: object = None,
) -> None:
    """Record what the handler knows now; ``None`` leaves a label as it was."""
    meter = request.get(METER_KEY)
    if meter is None:  # an app built without the middleware (unit tests of a handler)
        return
    if operation is not None:
        meter.operation = str(operation)
    if peer is not None:
        meter.peer = peer
    if result is not None:
        meter.result = str(result)


@web.middleware
async def metering_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    meter = RequestMeter()
    request[METER_KEY] = meter
    started = time.perf_counter()
    status = 500
    response: web.StreamResponse | None = None
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        result = meter.result or ("ok" if status < 400 else f"http_{status}")
        _child(REQUESTS, meter.operation, meter.peer, result).inc()
        _child(REQUEST_SECONDS, meter.operation).observe(time.perf_counter() - started)
        # Streamed bodies count what was read; a plain answer its Content-Length.
        _child(BYTES, "in", meter.peer).inc(request.content.total_bytes)
        if response is not None:
            _child(BYTES, "out", meter.peer).inc(response.content_length or 0)
