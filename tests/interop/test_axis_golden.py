"""Golden vectors from a real Apache Axis 1.4 client (CPCSCC.md §10).

A Java program drives Debian's Axis 1.4 the way a production CPCSCC client
does; a loopback capture server records its raw request bytes; our DIME
reader and SOAP parsing must make sense of exactly those bytes. The reverse
direction proves that Axis accepts what our DIME writer produces.

The physical DIME records are walked with a few lines of independent code
(``axis_wire.walk_physical_records``), so the chunking facts are checked
without trusting the codec under test.

The stored vector ``vectors/axis14_enviarFichero_small.http`` is written by
``test_stored_vector_is_what_axis_sends_today`` when it is missing or when
CONCENTRADOR_REGEN_VECTORS=1; otherwise that test replays its attachment
through Axis and demands byte-identical output (Host port and the random
attachment id aside).
"""

from __future__ import annotations

import bz2
import hashlib
import os
import random
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from lxml import etree

from concentrador.protocol.dime import DimeMessageWriter, read_message
from concentrador.protocol.messages import EnviarFichero, Fichero, RecogerFicheroResponse
from concentrador.protocol.soap import SoapVersion, build_envelope, parse_envelope
from tests.interop.axis import AxisToolchain
from tests.interop.axis_wire import (
    CP_NS,
    DIME_HEADER,
    SOAP11_NS,
    fichero_fields,
    read_incrementally,
    split_http,
    walk_physical_records,
)
from tests.interop.capture import (
    CANNED_ENVIAR_RESPONSE_XML,
    CapturedRequest,
    CaptureServer,
    http10_response,
)

SOAP_ACTOR_NEXT = "http://schemas.xmlsoap.org/soap/actor/next"
BZIP2_TYPE = "application/x-bzip2"
MIB = 1024 * 1024
CONCENTRADOR_ID = "0086"
TRANSPORTS = ("http10", "chunked")

VECTOR_DIR = Path(__file__).parent / "vectors"
SMALL_VECTOR = VECTOR_DIR / "axis14_enviarFichero_small.http"
# Set to 1 to rewrite the stored vector from a fresh Axis capture.
REGEN_ENV = "CONCENTRADOR_REGEN_VECTORS"


# --- inputs -----------------------------------------------------------------


def po1011_bzip2(lines: int = 120, seed: int = 11) -> bytes:
    """A small, realistic bzip2 attachment: an hourly-curve-like P.O. 10.11 text."""
    rng = random.Random(seed)
    rows = [
        f"ES0031405{rng.randrange(10**9):09d}0F;11;2004/06/{12 + hour // 24:02d} "
        f"{hour % 24:02d}:00;0;{rng.randrange(5000)};0;0;{rng.randrange(900)};0;0;0;0;1"
        for hour in range(lines)
    ]
    return bz2.compress(("\n".join(rows) + "\n").encode("ascii"))


def random_payload(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


# Name → (file name, payload factory). "one_mib" sits exactly on Axis's
# chunking threshold; "large" is 2.5 MiB, i.e. three 1 MiB-bounded chunks.
ATTACHMENTS: dict[str, tuple[str, Callable[[], bytes]]] = {
    "small": ("F1_0086_20040612_20040617.9.bz2", po1011_bzip2),
    "one_mib": ("P1_20031120.1.bz2", lambda: random_payload(MIB, seed=1)),
    "large": ("P1_20031120.2.bz2", lambda: random_payload(5 * MIB // 2, seed=2)),
}


def check_with_soap_layer(envelope: bytes, expected: Fichero) -> None:
    """Our own SOAP layer and message model read Axis's envelope the same way."""
    parsed = parse_envelope(envelope)
    assert parsed.version is SoapVersion.SOAP11
    assert parsed.concentrador_id == CONCENTRADOR_ID
    assert parsed.must_understand == []
    assert parsed.fault is None
    assert [etree.QName(e).localname for e in parsed.body_elements] == ["enviarFichero"]
    assert EnviarFichero.from_xml(parsed.body_elements[0]).fichero == expected


# --- capturing ----------------------------------------------------------------


@dataclass(frozen=True)
class EnviarCapture:
    request: CapturedRequest
    nombre: str
    payload: bytes
    codigo: str


CaptureFn = Callable[[str, str], EnviarCapture]


def run_enviar(
    axis: AxisToolchain, tmp: Path, nombre: str, payload: bytes, transport: str
) -> EnviarCapture:
    attachment = tmp / f"{transport}-{nombre}"
    attachment.write_bytes(payload)
    checksum = hashlib.md5(payload).hexdigest()
    with CaptureServer(http10_response(CANNED_ENVIAR_RESPONSE_XML)) as server:
        output = axis.run(
            "AxisEnviarFichero",
            server.url,
            CONCENTRADOR_ID,
            nombre,
            checksum,
            str(attachment),
            transport,
        )
        request = server.result()
    return EnviarCapture(request, nombre, payload, output["codigo"][0])


@pytest.fixture(scope="module")
def enviar_capture(axis: AxisToolchain, tmp_path_factory: pytest.TempPathFactory) -> CaptureFn:
    """Capture Axis's enviarFichero for (attachment name, transport), once per module."""
    cache: dict[tuple[str, str], EnviarCapture] = {}
    tmp = tmp_path_factory.mktemp("enviar")

    def capture(size: str, transport: str) -> EnviarCapture:
        if (size, transport) not in cache:
            nombre, make_payload = ATTACHMENTS[size]
            cache[size, transport] = run_enviar(axis, tmp, nombre, make_payload(), transport)
        return cache[size, transport]

    return capture


MATRIX = [(size, transport) for size in ATTACHMENTS for transport in TRANSPORTS]


# --- enviarFichero: Axis → us ---------------------------------------------------


@pytest.mark.interop
@pytest.mark.parametrize(("size", "transport"), MATRIX)
def test_our_reader_parses_axis_enviar_fichero(
    enviar_capture: CaptureFn, size: str, transport: str
) -> None:
    captured = enviar_capture(size, transport)
    assert captured.codigo == "0", "Axis did not understand the canned enviarFicheroResponse"
    body = captured.request.body
    if transport == "http10":
        # The surplus bytes of the Content-Length bug belong to the message.
        assert len(body) >= captured.request.declared_length

    records = read_message(body)
    assert len(records) == 2
    envelope, attachment = records
    assert int(envelope.type_format) == 0x02
    assert envelope.type == SOAP11_NS
    assert int(attachment.type_format) == 0x01
    assert attachment.type == BZIP2_TYPE
    assert hashlib.md5(attachment.data).hexdigest() == hashlib.md5(captured.payload).hexdigest()
    assert len(attachment.data) == len(captured.payload)

    streamed = read_incrementally(body)
    assert streamed == [(int(r.type_format), r.type, r.id, r.data) for r in records]


@pytest.mark.interop
@pytest.mark.parametrize(("size", "transport"), MATRIX)
def test_axis_chunks_attachments_over_one_mib(
    enviar_capture: CaptureFn, size: str, transport: str
) -> None:
    captured = enviar_capture(size, transport)
    physical = walk_physical_records(captured.request.body)
    soap, first, *continuations = physical

    expected_chunks = max(1, -(-len(captured.payload) // MIB))  # ceil, at least one
    assert 1 + expected_chunks == len(physical)
    assert [soap.message_begin, soap.message_end, soap.chunked] == [True, False, False]
    assert re.fullmatch(rb"uuid:[0-9A-F-]{36}", soap.id), soap.id
    assert first.type_format == 0x01 and first.type == BZIP2_TYPE.encode()
    assert re.fullmatch(rb"[0-9A-F]{32}", first.id), first.id
    attachment_records = [first, *continuations]
    assert [r.data_length for r in attachment_records[:-1]] == [MIB] * (expected_chunks - 1)
    assert sum(r.data_length for r in attachment_records) == len(captured.payload)
    assert [r.chunked for r in attachment_records] == [True] * (expected_chunks - 1) + [False]
    assert [r.message_end for r in physical] == [False] * len(physical[:-1]) + [True]
    assert not any(r.message_begin for r in physical[1:])
    for continuation in continuations:
        assert (continuation.type_format, continuation.id, continuation.type) == (0, b"", b"")


@pytest.mark.interop
@pytest.mark.parametrize("size", list(ATTACHMENTS))
def test_http10_content_length_is_12_bytes_short_per_extra_record(
    enviar_capture: CaptureFn, size: str
) -> None:
    request = enviar_capture(size, "http10").request
    assert request.request_line.endswith(" HTTP/1.0")
    assert request.header("Transfer-Encoding") is None
    extra_records = len(walk_physical_records(request.body)) - 2
    # The Axis 1.x bug (CPCSCC.md §10): Content-Length counts one header per
    # *logical* record, so each continuation chunk's 12-byte header is missing.
    assert request.surplus == DIME_HEADER * extra_records
    if size == "large":
        assert request.surplus == 24


@pytest.mark.interop
@pytest.mark.parametrize("size", list(ATTACHMENTS))
def test_http11_chunked_transfer_has_no_content_length(
    enviar_capture: CaptureFn, size: str
) -> None:
    request = enviar_capture(size, "chunked").request
    assert request.request_line.endswith(" HTTP/1.1")
    assert request.header("Transfer-Encoding") == "chunked"
    assert request.header("Content-Length") is None
    assert sum(request.chunk_sizes) == len(request.body)
    if size == "large":
        # Axis flushes each DIME header/data piece as its own HTTP chunk: the
        # 12-byte continuation headers show up as chunks of exactly 12.
        assert request.chunk_sizes.count(DIME_HEADER) == 2
        assert request.chunk_sizes.count(MIB) == 2


@pytest.mark.interop
@pytest.mark.parametrize(("size", "transport"), MATRIX)
def test_axis_envelope_and_http_head(enviar_capture: CaptureFn, size: str, transport: str) -> None:
    captured = enviar_capture(size, transport)
    request = captured.request
    assert request.request_line.startswith("POST ")
    assert request.header("Content-Type") == "application/dime"
    assert request.header("SOAPAction") == '"enviarFichero"'
    assert request.header("User-Agent") == "Axis/1.4"
    assert request.header("Expect") is None

    envelope = read_message(request.body)[0].data
    fields = fichero_fields(envelope)
    assert fields["id"] == CONCENTRADOR_ID
    assert fields["actor"] == SOAP_ACTOR_NEXT
    assert fields["mustUnderstand"] == "0"
    assert fields["Nombre"] == captured.nombre
    assert fields["Checksum"] == hashlib.md5(captured.payload).hexdigest()
    assert fields["xsi_type"] is not None and fields["xsi_type"].endswith(":Fichero")
    # JAX-RPC wrapped style: the wrapper sits in a *default* namespace.
    assert b'<enviarFichero xmlns="' + CP_NS.encode() + b'">' in envelope
    expected = Fichero(captured.nombre, hashlib.md5(captured.payload).hexdigest())
    check_with_soap_layer(envelope, expected)


# --- the stored vector ------------------------------------------------------------


def normalise_capture(raw: bytes) -> bytes:
    """Blank what legitimately differs between runs: the Host port and the attachment's id."""
    raw = re.sub(rb"\r\nHost: 127\.0\.0\.1:\d+\r\n", b"\r\nHost: 127.0.0.1:PORT\r\n", raw)
    return re.sub(rb"[0-9A-F]{32}(?=application/x-bzip2)", b"X" * 32, raw)


@pytest.mark.interop
def test_stored_vector_is_what_axis_sends_today(axis: AxisToolchain, tmp_path: Path) -> None:
    if os.environ.get(REGEN_ENV) == "1" or not SMALL_VECTOR.exists():
        nombre, make_payload = ATTACHMENTS["small"]
        fresh = run_enviar(axis, tmp_path, nombre, make_payload(), "http10")
        VECTOR_DIR.mkdir(exist_ok=True)
        SMALL_VECTOR.write_bytes(fresh.request.raw)
    stored = SMALL_VECTOR.read_bytes()
    _, _, body = split_http(stored)
    envelope, attachment = read_message(body)
    fields = fichero_fields(envelope.data)
    # Replay the stored attachment through Axis: everything else must come out identical.
    replay = run_enviar(axis, tmp_path, fields["Nombre"], attachment.data, "http10")
    assert normalise_capture(replay.request.raw) == normalise_capture(stored)


def test_saved_vector_parses_without_java() -> None:
    raw = SMALL_VECTOR.read_bytes()
    request_line, headers, body = split_http(raw)
    assert request_line == "POST /cpcscc HTTP/1.0"
    assert headers["content-type"] == "application/dime"
    assert headers["soapaction"] == '"enviarFichero"'
    # One DIME record per logical record: the Axis Content-Length bug cannot show here.
    assert int(headers["content-length"]) == len(body)
    assert 1024 < len(raw) < 16 * 1024

    envelope, attachment = read_message(body)
    assert (int(envelope.type_format), envelope.type) == (0x02, SOAP11_NS)
    assert envelope.id.startswith("uuid:")
    assert (int(attachment.type_format), attachment.type) == (0x01, BZIP2_TYPE)
    assert re.fullmatch(r"[0-9A-F]{32}", attachment.id)

    fields = fichero_fields(envelope.data)
    assert fields["id"] == CONCENTRADOR_ID
    assert fields["Checksum"] == hashlib.md5(attachment.data).hexdigest()
    assert fields["Nombre"].endswith(".bz2")
    assert bz2.decompress(attachment.data).startswith(b"ES0031405")
    check_with_soap_layer(envelope.data, Fichero(fields["Nombre"], fields["Checksum"]))

    # The streaming reader, fed in small pieces, agrees with the one-shot helper.
    assert read_incrementally(body, piece=7) == [
        (int(r.type_format), r.type, r.id, r.data) for r in (envelope, attachment)
    ]


# --- recogerFichero: us → Axis ----------------------------------------------------


def recoger_response_envelope(nombre: str, checksum: str) -> bytes:
    """The §4.3 response exactly as our server writes it (strict model + SOAP layer)."""
    response = RecogerFicheroResponse(Fichero(nombre, checksum))
    return build_envelope(response.to_xml(), version=SoapVersion.SOAP11)


def dime_http_response(envelope: bytes, payload: bytes, chunk_size: int | None) -> list[bytes]:
    """An HTTP/1.0 answer streaming our DimeMessageWriter's output, piece by piece."""
    writer = DimeMessageWriter(envelope, len(payload), chunk_size=chunk_size)
    pieces = [writer.begin()]
    step = 64 * 1024  # feed like a file reader would, not the whole payload at once
    for offset in range(0, len(payload), step):
        pieces.extend(writer.write(payload[offset : offset + step]))
    pieces.append(writer.end())
    assert sum(len(p) for p in pieces) == writer.total_length
    head = (
        "HTTP/1.0 200 OK\r\nContent-Type: application/dime\r\n"
        f"Content-Length: {writer.total_length}\r\nConnection: close\r\n\r\n"
    ).encode("ascii")
    return [head, *pieces]


@pytest.mark.interop
@pytest.mark.parametrize("chunk_size", [None, MIB], ids=["unchunked", "chunked-1MiB"])
def test_axis_accepts_our_dime_writer(axis: AxisToolchain, chunk_size: int | None) -> None:
    nombre = "P1_20031120.2.bz2"
    payload = random_payload(5 * MIB // 2, seed=3)
    checksum = hashlib.md5(payload).hexdigest()
    response = dime_http_response(recoger_response_envelope(nombre, checksum), payload, chunk_size)
    body = b"".join(response[1:])
    expected_records = 2 if chunk_size is None else 4
    assert len(walk_physical_records(body)) == expected_records

    with CaptureServer(response) as server:
        output = axis.run("AxisRecogerFichero", server.url, CONCENTRADOR_ID, nombre, "http10")
        request = server.result()

    assert output["nombre"] == [nombre]
    assert output["checksum"] == [checksum]
    assert output["attachments"] == ["1"]
    assert output["length"] == [str(len(payload))]
    assert output["md5"] == [checksum]

    # The plain (attachment-less) request Axis sent, for the record.
    assert request.header("Content-Type") == "text/xml; charset=utf-8"
    assert request.header("SOAPAction") == '"recogerFichero"'
    assert int(request.header("Content-Length")) == len(request.body)
    root = etree.fromstring(request.body)
    asked = root.find(f"{{{SOAP11_NS}}}Body/{{{CP_NS}}}recogerFichero/{{{CP_NS}}}nombreFichero")
    assert asked is not None and asked.text == nombre


# --- the capture server itself (no Java) ---------------------------------------------


def send_raw(url_port: int, request: bytes) -> bytes:
    """Send ``request`` on a fresh loopback connection and return the whole answer."""
    with socket.create_connection(("127.0.0.1", url_port), timeout=10) as conn:
        conn.sendall(request)
        answer = bytearray()
        while chunk := conn.recv(65536):
            answer += chunk
    return bytes(answer)


def test_capture_keeps_bytes_past_content_length() -> None:
    reply = http10_response(b"<ok/>")
    with CaptureServer(reply) as server:
        answer = send_raw(
            server.port, b"POST /x HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello, surplus"
        )
        captured = server.result()
    assert answer == reply
    assert captured.declared_length == 5
    assert captured.body == b"hello, surplus"
    assert captured.surplus == len(b", surplus")


def test_capture_decodes_chunked_transfer_and_answers_expect() -> None:
    request = (
        b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
        b"3\r\nabc\r\nc;ext=1\r\n0123456789ab\r\n0\r\n\r\n"
    )
    with CaptureServer([b"HTTP/1.0 200 OK\r\n", b"\r\n"]) as server:
        answer = send_raw(server.port, request)
        captured = server.result()
    assert answer == b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\n\r\n"
    assert captured.body == b"abc0123456789ab"
    assert captured.chunk_sizes == [3, 12]
    assert captured.declared_length is None and captured.surplus == 0
    assert captured.raw == request
