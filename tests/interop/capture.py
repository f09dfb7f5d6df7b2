"""A one-shot loopback HTTP server that records the raw request it receives.

The interop tests point a real Axis 1.4 client at it to capture golden wire
vectors. It deliberately does *not* use an HTTP library: the point is to see
the bytes exactly as Axis wrote them, including the Axis 1.x Content-Length
bug (CPCSCC.md §10) where the DIME body runs past the declared length.

It accepts exactly one connection on 127.0.0.1 (ephemeral port), reads the
request, answers with canned bytes, closes, and hands a :class:`CapturedRequest`
to the test.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

# The peer is a test subject, but it is still a peer: cap what we buffer.
MAX_REQUEST_BYTES = 32 * 1024 * 1024
MAX_HEAD_BYTES = 64 * 1024
# After the declared Content-Length has arrived, how long to wait for the
# surplus bytes the Axis bug sends. Axis writes the whole body before it reads
# the answer, so the surplus is already in flight; this only bounds the wait.
SURPLUS_IDLE_SECONDS = 0.3
CONNECTION_TIMEOUT_SECONDS = 30.0

CANNED_ENVIAR_RESPONSE_XML = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
    b"<soapenv:Body>"
    b'<cp:enviarFicheroResponse xmlns:cp="http://simel.ree.es/cpcscc/2003/Mensajes">'
    b"<cp:codigo>0</cp:codigo>"
    b"</cp:enviarFicheroResponse>"
    b"</soapenv:Body>"
    b"</soapenv:Envelope>"
)


def http10_response(body: bytes, content_type: str = "text/xml; charset=utf-8") -> bytes:
    """A complete ``HTTP/1.0 200`` answer that closes the connection."""
    head = (
        "HTTP/1.0 200 OK\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n"
        "\r\n"
    )
    return head.encode("ascii") + body


class CaptureError(Exception):
    """The client sent something this little server cannot frame."""


@dataclass
class CapturedRequest:
    """One HTTP request exactly as it came off the socket."""

    raw: bytes
    """Every byte received, head and body, before any de-chunking."""
    request_line: str
    headers: list[tuple[str, str]]
    body: bytes
    """The entity body: de-chunked for chunked transfer-encoding; otherwise
    everything after the head, *including* any bytes past Content-Length."""
    declared_length: int | None
    """The Content-Length header, if any."""
    chunk_sizes: list[int] = field(default_factory=list)
    """HTTP chunk sizes, in order, for chunked transfer-encoding (without the final 0)."""

    def header(self, name: str) -> str | None:
        """The first header called ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    @property
    def surplus(self) -> int:
        """Body bytes received beyond the declared Content-Length (0 if none declared)."""
        if self.declared_length is None:
            return 0
        return len(self.body) - self.declared_length


class _SocketReader:
    """Buffered reads from a socket with a hard cap on the total received."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = bytearray()
        self.raw = bytearray()

    def _fill(self) -> bool:
        chunk = self._sock.recv(65536)
        if not chunk:
            return False
        self.raw += chunk
        if len(self.raw) > MAX_REQUEST_BYTES:
            raise CaptureError(f"request larger than {MAX_REQUEST_BYTES} bytes")
        self._buffer += chunk
        return True

    def read_until(self, delimiter: bytes, limit: int) -> bytes:
        while (index := self._buffer.find(delimiter)) < 0:
            if len(self._buffer) > limit:
                raise CaptureError(f"no {delimiter!r} within {limit} bytes")
            if not self._fill():
                raise CaptureError(f"connection closed before {delimiter!r}")
        end = index + len(delimiter)
        data = bytes(self._buffer[:end])
        del self._buffer[:end]
        return data

    def read_exactly(self, count: int) -> bytes:
        while len(self._buffer) < count:
            if not self._fill():
                raise CaptureError(f"connection closed {count - len(self._buffer)} bytes short")
        data = bytes(self._buffer[:count])
        del self._buffer[:count]
        return data

    def read_until_idle(self, idle_seconds: float) -> bytes:
        """Whatever else arrives before the peer goes quiet (or closes)."""
        self._sock.settimeout(idle_seconds)
        try:
            while self._fill():
                pass
        except TimeoutError:
            pass
        finally:
            self._sock.settimeout(CONNECTION_TIMEOUT_SECONDS)
        data = bytes(self._buffer)
        self._buffer.clear()
        return data


def _read_request(sock: socket.socket) -> tuple[CapturedRequest, _SocketReader]:
    reader = _SocketReader(sock)
    head = reader.read_until(b"\r\n\r\n", MAX_HEAD_BYTES).decode("latin-1")
    lines = head[:-4].split("\r\n")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise CaptureError(f"malformed header line {line!r}")
        headers.append((name.strip(), value.strip()))
    request = CapturedRequest(
        raw=b"", request_line=lines[0], headers=headers, body=b"", declared_length=None
    )
    if (request.header("Expect") or "").lower() == "100-continue":
        sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")

    if (request.header("Transfer-Encoding") or "").lower() == "chunked":
        body = bytearray()
        while True:
            size_line = reader.read_until(b"\r\n", 1024).decode("latin-1")
            size = int(size_line.split(";", 1)[0].strip(), 16)
            if size == 0:
                break
            request.chunk_sizes.append(size)
            body += reader.read_exactly(size)
            if reader.read_exactly(2) != b"\r\n":
                raise CaptureError("chunk not followed by CRLF")
        # Trailers (usually none) end with an empty line.
        while reader.read_until(b"\r\n", MAX_HEAD_BYTES) != b"\r\n":
            pass
        request.body = bytes(body)
    else:
        length_text = request.header("Content-Length")
        if length_text is not None:
            request.declared_length = int(length_text)
            declared = reader.read_exactly(request.declared_length)
        else:
            declared = b""
        # Axis may send more than it declared (CPCSCC.md §10); keep it all.
        request.body = declared + reader.read_until_idle(SURPLUS_IDLE_SECONDS)
    request.raw = bytes(reader.raw)
    return request, reader


class CaptureServer:
    """Serve one request on loopback: record it, answer ``response``, close.

    ``response`` is the complete HTTP answer (status line, headers, body) as
    bytes or as an iterable of byte pieces (so a streamed DIME body need not
    be joined). Use as a context manager; :meth:`result` waits for the capture.
    """

    def __init__(self, response: bytes | Iterable[bytes]) -> None:
        self._response = response
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(CONNECTION_TIMEOUT_SECONDS)
        self.port: int = self._listener.getsockname()[1]
        self._captured: CapturedRequest | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve_one, name="capture", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/cpcscc"

    def __enter__(self) -> CaptureServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        # close() alone does not wake a thread blocked in accept() on Linux;
        # shutdown() does, so a failed client does not cost the full timeout.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(timeout=CONNECTION_TIMEOUT_SECONDS)

    def _serve_one(self) -> None:
        try:
            conn, _ = self._listener.accept()
        except OSError as exc:  # closed by __exit__ or timed out: nobody called
            self._error = exc
            return
        with conn:
            conn.settimeout(CONNECTION_TIMEOUT_SECONDS)
            try:
                self._captured, _ = _read_request(conn)
                pieces = [self._response] if isinstance(self._response, bytes) else self._response
                for piece in pieces:
                    conn.sendall(piece)
                conn.shutdown(socket.SHUT_WR)
            except (OSError, CaptureError, ValueError) as exc:
                self._error = exc

    def result(self, timeout: float = CONNECTION_TIMEOUT_SECONDS) -> CapturedRequest:
        """The captured request; raises if none arrived or it could not be framed."""
        self._thread.join(timeout=timeout)
        if self._captured is None:
            raise CaptureError(f"no request captured: {self._error!r}")
        if self._error is not None:
            raise CaptureError(f"capture incomplete: {self._error!r}")
        return self._captured
