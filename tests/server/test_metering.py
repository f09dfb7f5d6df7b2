"""The request metrics still count every request, with the remembered label children."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from concentrador.server import metering
from concentrador.telemetry.metrics import REGISTRY


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def _serve(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> TestClient[web.Request, web.Application]:
    app = web.Application(middlewares=[metering.metering_middleware])
    app.router.add_post("/", handler)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def test_every_request_is_counted_under_its_labels() -> None:
    async def handler(request: web.Request) -> web.Response:
        await request.read()
        metering.note(request, operation="recogerFichero", peer="METER1")
        return web.Response(body=b"12345")

    ok = {"operation": "recogerFichero", "peer": "METER1", "result": "ok"}
    before = _value("concentrador_requests_total", **ok)
    bytes_in = _value("concentrador_server_bytes_total", direction="in", peer="METER1")
    bytes_out = _value("concentrador_server_bytes_total", direction="out", peer="METER1")
    timed = _value("concentrador_request_duration_seconds_count", operation="recogerFichero")
    client = await _serve(handler)
    try:
        for _ in range(3):
            async with client.post("/", data=b"abc") as response:
                assert response.status == 200
    finally:
        await client.close()
    assert _value("concentrador_requests_total", **ok) == before + 3
    assert _value("concentrador_server_bytes_total", direction="in", peer="METER1") == (
        bytes_in + 9
    )
    assert _value("concentrador_server_bytes_total", direction="out", peer="METER1") == (
        bytes_out + 15
    )
    timed_after = _value("concentrador_request_duration_seconds_count", operation="recogerFichero")
    assert timed_after == timed + 3


async def test_a_fault_and_an_http_error_get_their_own_results() -> None:
    async def handler(request: web.Request) -> web.Response:
        metering.note(request, operation="confirmacionRecepcionFichero", peer="METER2")
        if request.query.get("fault"):
            metering.note(request, result="Client.Fichero")
            return web.Response(status=500)
        raise web.HTTPForbidden()

    labels = {"operation": "confirmacionRecepcionFichero", "peer": "METER2"}
    fault = _value("concentrador_requests_total", **labels, result="Client.Fichero")
    forbidden = _value("concentrador_requests_total", **labels, result="http_403")
    client = await _serve(handler)
    try:
        for query in ("?fault=1", "", "?fault=1"):
            async with client.post("/" + query) as response:
                assert response.status in (403, 500)
    finally:
        await client.close()
    assert _value("concentrador_requests_total", **labels, result="Client.Fichero") == fault + 2
    assert _value("concentrador_requests_total", **labels, result="http_403") == forbidden + 1
