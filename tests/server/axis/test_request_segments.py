"""The re-framer keeps requests apart and refuses request lines that are not HTTP/1.x (pure)."""

from __future__ import annotations

import pytest

from concentrador.server.axis.heads import request_line_problem
from concentrador.server.axis.reframer import RequestReframer, RequestRefused

GET = b"GET /x?wsdl HTTP/1.1\r\nHost: a\r\n\r\n"
POST = b"POST /x HTTP/1.0\r\nContent-Type: text/xml\r\nContent-Length: 3\r\n\r\nabc"


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b"POST /", "request line has no HTTP version"),
        (b"POST / HTTP/0.9", "unsupported HTTP version"),
        (b"POST / HTTP/2.0", "unsupported HTTP version"),
        (b"POST / http/1.1", "unsupported HTTP version"),
        (b"POST  / HTTP/1.1", "malformed request line"),
        (b"POST / HTTP/1.1 ", "malformed request line"),
        (b"P(ST / HTTP/1.1", "malformed request method"),
        (b"POST /a\x7fb HTTP/1.1", "malformed request target"),
        (b"\x16\x03\x01\x02\x00", "malformed request line"),
    ],
)
def test_bad_request_lines_are_named(line: bytes, problem: str) -> None:
    found = request_line_problem(line)
    assert found is not None and found.startswith(problem)


@pytest.mark.parametrize(
    "line", [b"POST / HTTP/1.1", b"GET http://h/x?wsdl HTTP/1.0", b"M-SEARCH * HTTP/1.1"]
)
def test_http_1x_request_lines_pass(line: bytes) -> None:
    assert request_line_problem(line) is None


def test_each_request_is_a_segment_of_its_own() -> None:
    assert RequestReframer().receive_requests(POST + GET + POST) == [POST, GET, POST]


def test_refused_line_follows_the_requests_before_it_and_ends_the_stream() -> None:
    reframer = RequestReframer()
    segments = reframer.receive_requests(POST + b"POST /\r\nHost: a\r\n\r\n" + GET)
    assert segments[0] == POST
    assert segments[1:] == [RequestRefused("request line has no HTTP version: b'POST /'")]
    assert reframer.discarding
    assert reframer.receive_requests(GET) == []


def test_a_line_is_refused_as_soon_as_it_ends() -> None:
    reframer = RequestReframer()
    assert reframer.receive_requests(b"POST /") == []
    segments = reframer.receive_requests(b"\r\nHost")  # the head is not complete yet
    assert segments == [RequestRefused("request line has no HTTP version: b'POST /'")]


def test_a_dripping_line_is_checked_once_it_ends() -> None:
    reframer = RequestReframer()
    assert all(reframer.receive_requests(bytes([byte])) == [] for byte in GET[:-1])
    assert reframer.receive_requests(GET[-1:]) == [GET]
