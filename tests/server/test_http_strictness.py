"""HTTP strictness against hostile peers (issue 13, items 8-10), over raw TLS.

Each answer is asserted byte-exact where it matters, with the time it took:
a refused request is answered at once and the connection closed, never left
to a timeout.
"""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlsplit

import pytest
from lxml import etree

from concentrador.pki import DevPki
from concentrador.protocol.messages import PeticionFechaHora
from concentrador.protocol.soap import build_envelope
from tests.server.conftest import Node
from tests.server.raw_tls import exchange

ENVELOPE = build_envelope(PeticionFechaHora().to_xml(), concentrador_id="CREC")
FAST = 1.0  # seconds: an answer that is not a timeout


def post(request_line: bytes = b"POST / HTTP/1.1", body: bytes = ENVELOPE) -> bytes:
    return (
        request_line + b"\r\nHost: localhost\r\nContent-Type: text/xml\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body) + body
    )


def wsdl_address(answer: bytes) -> str:
    body = answer.partition(b"\r\n\r\n")[2]
    root = etree.fromstring(body)
    (address,) = root.iterfind(".//{http://schemas.xmlsoap.org/wsdl/soap/}address")
    return str(address.get("location"))


@pytest.mark.parametrize(
    "request_line",
    [
        b"POST /",
        b"POST / HTTP/0.9",
        b"POST / HTTP/2.0",
        b"POST / HTTP/1.1 extra",
        b"POST  / HTTP/1.1",
    ],
)
async def test_request_line_without_http_1x_is_400_with_no_body(
    node: Node, pki: DevPki, request_line: bytes
) -> None:
    result = await exchange(node, pki, post(request_line))
    head, _, body = result.answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"\r\nContent-Length: 0\r\n" in head + b"\r\n" and b"Connection: close" in head
    assert body == b"" and b"fechaHora" not in result.answer
    assert result.closed and result.seconds < FAST


async def test_request_followed_by_garbage_is_answered_then_closed(node: Node, pki: DevPki) -> None:
    result = await exchange(node, pki, post() + b"GARBAGE GARBAGE\r\n\r\n")
    assert result.answers() == [b"HTTP/1.1 200 OK", b"HTTP/1.1 400 Bad Request"]
    first, _, rest = result.answer.partition(b"HTTP/1.1 400 Bad Request")
    assert b"<cp:fechaHora>15/01/2024 11:00:00</cp:fechaHora>" in first
    assert rest.endswith(b"\r\n\r\n")  # the 400 has no body
    assert result.closed and result.seconds < FAST


async def test_garbage_without_a_line_end_still_lets_the_request_through(
    node: Node, pki: DevPki
) -> None:
    # The junk never completes a request line: the request is answered, and
    # the connection waits (for the head deadline of the daemon's guard).
    result = await exchange(node, pki, post() + b"\x16\x03\x01junk", wait=0.5)
    assert result.answers() == [b"HTTP/1.1 200 OK"]


async def test_two_pipelined_requests_are_both_answered(node: Node, pki: DevPki) -> None:
    closing = post().replace(b"Host: localhost", b"Host: localhost\r\nConnection: close")
    result = await exchange(node, pki, post() + closing)
    assert result.answers() == [b"HTTP/1.1 200 OK", b"HTTP/1.1 200 OK"]
    assert result.answer.count(b"<cp:fechaHora>") == 2
    assert result.closed and result.seconds < FAST


def wsdl_get(host: bytes) -> bytes:
    return b"GET /cpcscc/services?wsdl HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n"


@pytest.mark.parametrize("host", [b"evil:port", b"evil:99999", b"a@b", b"[::zz]:1", b"x" * 300])
async def test_hostile_host_header_falls_back_to_our_own_address(
    node: Node, pki: DevPki, host: bytes
) -> None:
    result = await exchange(node, pki, wsdl_get(host))
    assert result.answer.startswith(b"HTTP/1.1 200 OK\r\n"), result.answer[:300]
    port = urlsplit(node.url).port
    assert wsdl_address(result.answer) == f"https://127.0.0.1:{port}/cpcscc/services"
    assert result.closed and result.seconds < FAST


@pytest.mark.parametrize("host", [b"concentrador.example:8443", b"[::1]:8443", b"10.0.0.1"])
async def test_plain_host_header_names_the_address(node: Node, pki: DevPki, host: bytes) -> None:
    result = await exchange(node, pki, wsdl_get(host))
    assert wsdl_address(result.answer) == f"https://{host.decode()}/cpcscc/services"


async def test_configured_public_url_wins_over_any_host(node: Node, pki: DevPki) -> None:
    config = node.state.config
    public = "https://concentrador.example.es:443/cpcscc"
    node.state.config = replace(config, server=replace(config.server, public_url=public))
    for host in (b"evil:port", b"other.example"):
        result = await exchange(node, pki, wsdl_get(host))
        assert wsdl_address(result.answer) == public
