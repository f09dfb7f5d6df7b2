"""Re-framing DIME request bodies so that Axis 1.x's short Content-Length is tolerated.

Apache Axis 1.x (HTTP/1.0, its default) sends DIME attachments over 1 MiB as
chunked DIME records and declares ``Content-Length = total − 12 × (records − 2)``:
the 12-byte header of every continuation record is not counted, but every
byte is sent (CPCSCC.md §10, docs/interop.md). An HTTP parser that believes
the Content-Length stops short of the DIME message and takes the surplus for
the start of the next request.

:class:`RequestReframer` sits on the raw byte stream of one connection,
*before* the HTTP parser, and is pure (bytes in, bytes out). For a
``POST`` with ``Content-Type: application/dime``, one valid Content-Length
and no Transfer-Encoding (HTTP/1.0 or 1.1) it rewrites the head to
``Transfer-Encoding: chunked`` (the declared length moves to
:data:`DECLARED_LENGTH_HEADER`) and re-frames the body as HTTP chunks, walking
the DIME record headers (:class:`DimeExtentTracker`) to find where the
message really ends:

- the declared Content-Length bytes always belong to the body (HTTP's own
  rule; a message that ends earlier keeps its trailing bytes, which the DIME
  reader then judges);
- past it, bytes are taken only while the DIME message is incomplete and
  only as far as Axis's miscount can explain: at most 12 bytes per record
  header begun so far, minus two (the envelope and the first attachment
  record are counted by Axis). That allowance is below
  ``12 × DimeLimits.max_records`` (48 KiB by default) in any case. A body
  that would run further, or whose bytes there are not DIME records, is cut
  there (:class:`BodyCut`): the DIME reader then fails on the truncated
  message and the peer gets a fault. Whatever the peer sends after a cut on
  that connection is dropped: it is the rest of a body we refused, and fed to
  the HTTP parser it would only turn the fault into a 400;
- when the peer stops sending while bytes are still owed, the adapter calls
  :meth:`RequestReframer.cut` after a grace time, so a client whose DIME
  message is simply truncated still gets its fault instead of waiting (the
  peer is waiting for an answer, so what it sends next is a new request).

Every other request passes through byte for byte, and keep-alive requests
after it are followed through their Content-Length. What this class cannot
follow (a chunked or upgraded request, a head it does not understand) makes
it step aside for the rest of the connection: from then on every byte passes
through untouched, exactly as if it were not there.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from concentrador.protocol import (
    DIME_CONTENT_TYPE,
    HEADER_SIZE,
    DimeError,
    DimeExtentTracker,
    DimeLimits,
)

__all__ = [
    "DECLARED_LENGTH_HEADER",
    "TOO_LONG_REASON",
    "BodyCut",
    "ContentLengthTolerated",
    "ReframerEvent",
    "RequestReframer",
]

# Carries the peer's original Content-Length of a re-framed request to the
# application, only so that its faults can say what happened. A peer can send
# it itself; it then only changes the wording of its own fault.
DECLARED_LENGTH_HEADER = "Concentrador-Declared-Length"

_DIME_MEDIA_TYPE = DIME_CONTENT_TYPE.encode("ascii")
_VERSIONS = (b"HTTP/1.0", b"HTTP/1.1")
_LAST_CHUNK = b"0\r\n\r\n"
TOO_LONG_REASON = "the DIME message goes on past the 12 bytes per record Axis 1.x leaves uncounted"
# RFC 9110 token characters, the only ones a header name may have.
_HEADER_NAME_CHARS = frozenset(
    b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


@dataclass(frozen=True, slots=True)
class ContentLengthTolerated:
    """A DIME body ran past its Content-Length, as Axis 1.x's miscount does."""

    declared: int
    actual: int
    records: int


@dataclass(frozen=True, slots=True)
class BodyCut:
    """A DIME body was ended before its DIME message was complete."""

    declared: int
    received: int
    reason: str


ReframerEvent = ContentLengthTolerated | BodyCut


class _State(enum.Enum):
    HEAD = enum.auto()  # collecting a request head
    BODY = enum.auto()  # passing a Content-Length body through
    DIME_DECLARED = enum.auto()  # re-framing a DIME body, within its Content-Length
    DIME_SURPLUS = enum.auto()  # re-framing a DIME body, past its Content-Length
    PASSTHROUGH = enum.auto()  # stepped aside for the rest of the connection
    DISCARD = enum.auto()  # after a cut body: drop the rest of the connection


class RequestReframer:
    """One connection's request stream, DIME bodies re-framed (see the module doc).

    ``receive(data)`` returns the bytes to hand to the HTTP parser (possibly
    empty: a head is held until it is complete, at most ``max_head`` bytes).
    ``events()`` returns and forgets what happened since the last call.
    """

    def __init__(self, limits: DimeLimits | None = None, *, max_head: int = 64 * 1024) -> None:
        self._limits = limits or DimeLimits()
        self._max_head = max_head
        self._state = _State.HEAD
        self._head = bytearray()
        self._scanned = 0  # head bytes already searched for the blank line
        self._remaining = 0  # body bytes still to pass (BODY, DIME_DECLARED)
        self._declared = 0
        self._surplus = 0
        self._tracker: DimeExtentTracker | None = None
        self._events: list[ReframerEvent] = []

    @property
    def awaiting_surplus(self) -> bool:
        """True when a DIME body is past its Content-Length and still incomplete."""
        return self._state is _State.DIME_SURPLUS

    @property
    def passing_through(self) -> bool:
        """True once the reframer has stepped aside for good."""
        return self._state is _State.PASSTHROUGH

    @property
    def discarding(self) -> bool:
        """True after a body was cut: the rest of the connection is dropped."""
        return self._state is _State.DISCARD

    def events(self) -> list[ReframerEvent]:
        events, self._events = self._events, []
        return events

    def receive(self, data: bytes) -> bytes:
        out: list[bytes | memoryview] = []
        view = memoryview(data)
        while view:
            state = self._state
            if state is _State.PASSTHROUGH:
                out.append(view)
                break
            if state is _State.DISCARD:
                break
            if state is _State.HEAD:
                view = self._receive_head(view, out)
            elif state is _State.BODY:
                taken = min(self._remaining, len(view))
                out.append(view[:taken])
                view = view[taken:]
                self._remaining -= taken
                if not self._remaining:
                    self._state = _State.HEAD
            elif state is _State.DIME_DECLARED:
                view = self._receive_declared(view, out)
            else:
                view = self._receive_surplus(view, out)
        return b"".join(out)

    def cut(self) -> bytes:
        """End a body that is awaiting surplus now (the peer went quiet)."""
        if self._state is not _State.DIME_SURPLUS:
            return b""
        self._events.append(
            BodyCut(self._declared, self._declared + self._surplus, "no more bytes arrived")
        )
        self._tracker = None
        self._state = _State.HEAD
        return _LAST_CHUNK

    # ---------------------------------------------------------------- heads

    def _receive_head(self, view: memoryview, out: list[bytes | memoryview]) -> memoryview:
        if not self._head:
            # Empty lines before a request line are the parser's business.
            skip = 0
            while skip < len(view) and view[skip] in b"\r\n":
                skip += 1
            if skip:
                out.append(view[:skip])
                return view[skip:]
        self._head += view
        end = self._head_end()
        if end is None:
            if len(self._head) > self._max_head:
                self._step_aside(out)
            return memoryview(b"")
        head = bytes(self._head[:end])
        rest = bytes(self._head[end:])
        self._head.clear()
        self._scanned = 0
        self._start_request(head, out)
        return memoryview(rest)

    def _head_end(self) -> int | None:
        start = max(0, self._scanned - 2)
        self._scanned = len(self._head)
        ends = [
            index + len(mark)
            for mark in (b"\n\r\n", b"\n\n")
            if (index := self._head.find(mark, start)) >= 0
        ]
        return min(ends) if ends else None

    def _step_aside(self, out: list[bytes | memoryview]) -> None:
        out.append(bytes(self._head))
        self._head.clear()
        self._state = _State.PASSTHROUGH

    def _start_request(self, head: bytes, out: list[bytes | memoryview]) -> None:
        parsed = _parse_head(head)
        if parsed is None or parsed.opaque:
            out.append(head)
            self._state = _State.PASSTHROUGH
            return
        if parsed.is_dime_upload:
            out.append(parsed.rewritten())
            self._declared = self._remaining = parsed.content_length
            self._surplus = 0
            self._tracker = DimeExtentTracker(self._limits)
            self._state = _State.DIME_DECLARED
            if not self._remaining:
                self._after_declared(out)
            return
        out.append(head)
        self._remaining = parsed.content_length
        self._state = _State.BODY if self._remaining else _State.HEAD

    # ---------------------------------------------------------- DIME bodies

    def _receive_declared(self, view: memoryview, out: list[bytes | memoryview]) -> memoryview:
        taken = min(self._remaining, len(view))
        piece = view[:taken]
        tracker = self._tracker
        if tracker is not None and not tracker.complete:
            try:
                tracker.feed(piece)
            except DimeError:
                # Not DIME we can follow: the declared length decides alone,
                # and the DIME reader will say what is wrong.
                self._tracker = None
        _chunk(piece, out)
        self._remaining -= taken
        if not self._remaining:
            self._after_declared(out)
        return view[taken:]

    def _after_declared(self, out: list[bytes | memoryview]) -> None:
        tracker = self._tracker
        if tracker is None or tracker.complete or self._allowance(tracker) <= 0:
            # Ends at its Content-Length, whatever the DIME says: HTTP as usual.
            self._end_body(out)
            return
        self._state = _State.DIME_SURPLUS

    def _allowance(self, tracker: DimeExtentTracker) -> int:
        """Surplus bytes Axis's miscount can explain so far, minus those taken.

        Axis leaves out 12 bytes per continuation record; every byte it sends
        past the declared length is preceded (or begun) by at least as many
        such headers, so counting the header the next byte would begin keeps
        an honest Axis stream always within the allowance.
        """
        headers = tracker.records + (1 if tracker.at_record_start else 0)
        return HEADER_SIZE * (headers - 2) - self._surplus

    def _receive_surplus(self, view: memoryview, out: list[bytes | memoryview]) -> memoryview:
        tracker = self._tracker
        assert tracker is not None
        allowed = self._allowance(tracker)
        if allowed <= 0:
            self._cut(out, TOO_LONG_REASON)
            return view
        piece = view[: min(allowed, len(view))]
        before = tracker.received
        try:
            tracker.feed(piece)
        except DimeError as exc:
            taken = tracker.received - before
            _chunk(piece[:taken], out)
            self._surplus += taken
            self._cut(out, str(exc))
            return view[taken:]
        taken = tracker.received - before
        _chunk(piece[:taken], out)
        self._surplus += taken
        if tracker.complete:
            self._events.append(
                ContentLengthTolerated(
                    self._declared, self._declared + self._surplus, tracker.records
                )
            )
            self._end_body(out)
        return view[taken:]

    def _cut(self, out: list[bytes | memoryview], reason: str) -> None:
        self._events.append(BodyCut(self._declared, self._declared + self._surplus, reason))
        out.append(_LAST_CHUNK)
        self._tracker = None
        self._state = _State.DISCARD

    def _end_body(self, out: list[bytes | memoryview]) -> None:
        out.append(_LAST_CHUNK)
        self._tracker = None
        self._state = _State.HEAD


def _chunk(piece: memoryview, out: list[bytes | memoryview]) -> None:
    if piece:  # an empty chunk would end the body
        out.extend((b"%x\r\n" % len(piece), piece, b"\r\n"))


@dataclass(frozen=True, slots=True)
class _Head:
    request_line: bytes
    fields: list[tuple[bytes, bytes]]  # (lower-case name, raw line)
    method: bytes
    content_length: int
    opaque: bool  # a body or protocol we do not follow (chunked, upgrade, ...)
    dime: bool

    @property
    def is_dime_upload(self) -> bool:
        return self.dime and self.method == b"POST" and not self.opaque

    def rewritten(self) -> bytes:
        drop = (b"content-length", DECLARED_LENGTH_HEADER.lower().encode())
        lines = [self.request_line]
        lines += [line for name, line in self.fields if name not in drop]
        lines.append(b"Transfer-Encoding: chunked")
        lines.append(b"%s: %d" % (DECLARED_LENGTH_HEADER.encode(), self.content_length))
        return b"\r\n".join(lines) + b"\r\n\r\n"


def _parse_head(head: bytes) -> _Head | None:
    """The parts of a request head we need, or None if it is not plain HTTP/1.x.

    Strict on purpose: anything unusual (bare LF, folded lines, odd names)
    is left to aiohttp's parser untouched.
    """
    if head.count(b"\n") != head.count(b"\r\n"):
        return None
    lines = head[:-4].split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or parts[2] not in _VERSIONS or not parts[0].isalpha():
        return None
    fields: list[tuple[bytes, bytes]] = []
    lengths: list[bytes] = []
    content_types: list[bytes] = []
    opaque = parts[0] == b"CONNECT"
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or not set(name) <= _HEADER_NAME_CHARS:
            return None
        lower = name.lower()
        value = value.strip(b" \t")
        fields.append((lower, line))
        if lower == b"content-length":
            lengths.append(value)
        elif lower == b"content-type":
            content_types.append(value)
        elif lower in (b"transfer-encoding", b"upgrade"):
            opaque = True
    # (A Content-Length of more than 18 digits is no length we would accept.)
    if len(lengths) > 1 or (lengths and not (lengths[0].isdigit() and len(lengths[0]) <= 18)):
        opaque = True
    media_type = content_types[0].split(b";")[0].strip().lower() if content_types else b""
    return _Head(
        request_line=lines[0],
        fields=fields,
        method=parts[0],
        content_length=int(lengths[0]) if lengths and not opaque else 0,
        opaque=opaque,
        dime=len(content_types) == 1 and media_type == _DIME_MEDIA_TYPE and bool(lengths),
    )
