"""Rejected requests log one WARNING each, rate-limited per source (issue 13, item 12).

Driven over raw TLS: the peer's address and DN and the reason are in the
line, no traceback; our own bugs keep theirs.
"""

from __future__ import annotations

import asyncio
import logging
import re
from urllib.parse import urlsplit

import pytest

from concentrador.pki import DevPki
from concentrador.server.axis.rejections import Peer, PeerErrorLogger, RejectionLog
from concentrador.server.axis.runner import AxisTolerantAppRunner
from tests.server.conftest import Node, client_context
from tests.server.raw_tls import exchange

DN = "DN CN=crec-client-1,CN=CREC,OU=Concentradores,O=REE,C=es"
HOST = b"Host: localhost\r\n"


def logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize(
    ("request_bytes", "reason"),
    [
        (
            b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "BadHttpMessage (400): Duplicate Content-Length",
        ),
        (b"GET / HTTP/1.1\r\n" + HOST + b"X: " + b"a" * 9000 + b"\r\n\r\n", "LineTooLong (400)"),
        (b"GET / HTTP/1.1\nHost: x\n\n", "BadStatusLine (400)"),
        (b"GET http://a:b/ HTTP/1.1\r\n" + HOST + b"\r\n", "InvalidURLError (400)"),
        (b"POST /\r\n" + HOST + b"\r\n", "request line has no HTTP version: b'POST /'"),
    ],
)
async def test_malformed_request_is_one_warning_without_traceback(
    node: Node, pki: DevPki, caplog: pytest.LogCaptureFixture, request_bytes: bytes, reason: str
) -> None:
    caplog.set_level(logging.DEBUG)
    result = await exchange(node, pki, request_bytes)
    # Ours (a refused request line) is HTTP/1.1; aiohttp's own parse errors answer 1.0.
    assert re.match(rb"HTTP/1\.[01] 400 Bad Request\r\n", result.answer)
    assert result.closed and result.seconds < 1.0
    (record,) = logged(caplog)
    assert record.levelno == logging.WARNING and record.exc_info is None
    message = record.getMessage()
    assert message.startswith("rejected a request from 127.0.0.1:") and DN in message
    assert reason in message
    assert len(message) < 400


async def test_connection_reset_mid_body_is_one_warning(
    node: Node, pki: DevPki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    port = urlsplit(node.url).port
    _, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=client_context(pki, "CREC-client"), server_hostname="localhost"
    )
    writer.write(
        b"POST / HTTP/1.1\r\n" + HOST + b"Content-Type: text/xml\r\nContent-Length: 1000\r\n\r\n<a"
    )
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.transport.abort()
    for _ in range(50):
        if logged(caplog):
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    (record,) = logged(caplog)
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert "ConnectionResetError" in record.getMessage() and DN in record.getMessage()


async def test_a_flood_from_one_address_is_logged_as_a_few_lines_and_a_count(
    node: Node, pki: DevPki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    assert isinstance(node.runner, AxisTolerantAppRunner)
    node.runner.rejections.burst = 3
    node.runner.rejections.window = 1.0
    for _ in range(10):
        result = await exchange(node, pki, b"POST /\r\n" + HOST + b"\r\n")
        assert result.answer.startswith(b"HTTP/1.1 400 ")
    assert len(logged(caplog)) == 3
    await asyncio.sleep(1.2)
    *_, summary = logged(caplog)
    assert len(logged(caplog)) == 4
    assert summary.getMessage().startswith("rejected 7 more requests from 127.0.0.1 in 1 s")


async def test_our_own_bug_keeps_its_traceback(
    node: Node, pki: DevPki, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_location: str) -> bytes:
        raise RuntimeError("a bug of ours")

    monkeypatch.setattr("concentrador.server.app.render_wsdl", broken)
    caplog.set_level(logging.DEBUG)
    result = await exchange(node, pki, b"GET /?wsdl HTTP/1.1\r\n" + HOST + b"\r\n", wait=1.0)
    assert result.answer.startswith(b"HTTP/1.1 500 ")
    (record,) = logged(caplog)
    assert record.levelno == logging.ERROR and record.exc_info is not None
    assert record.exc_info[0] is RuntimeError


class _Transport(asyncio.BaseTransport):
    def __init__(self, host: str, port: int) -> None:
        super().__init__({"peername": (host, port)})


async def test_sources_are_limited_apart_and_the_table_stays_bounded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    clock = [0.0]
    rejections = RejectionLog(burst=2, window=10.0, clock=lambda: clock[0])
    for port in range(5):
        rejections.rejected(Peer(_Transport("10.0.0.1", port)), "bad")
        rejections.rejected(Peer(_Transport("10.0.0.2", port)), "bad")
    assert [r.getMessage() for r in caplog.records].count(
        "rejected a request from 10.0.0.2:1: bad"
    ) == 1
    assert len(caplog.records) == 4
    clock[0] = 11.0  # a new window for 10.0.0.3; the others still owe their count
    rejections.rejected(Peer(_Transport("10.0.0.3", 1)), "bad")
    assert len(caplog.records) == 5
    rejections.close()
    summaries = [r.getMessage() for r in caplog.records[5:]]
    assert sorted(summaries) == [
        f"rejected 3 more requests from 10.0.0.{n} in 10 s without logging each (the last: bad)"
        for n in (1, 2)
    ]


def test_peer_error_logger_passes_our_errors_on(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    adapter = PeerErrorLogger(
        logging.getLogger("aiohttp.server"), RejectionLog(), _Transport("::1", 9)
    )
    try:
        raise KeyError("ours")
    except KeyError:
        adapter.exception("Error handling request")
    (record,) = caplog.records
    assert record.levelno == logging.ERROR and record.exc_info is not None
    adapter.exception("Error handling request", exc_info=ConnectionResetError("gone"))
    assert caplog.records[-1].getMessage() == (
        "rejected a request from [::1]:9: ConnectionResetError: gone"
    )
