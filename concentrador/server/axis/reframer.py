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

It also keeps requests apart: each is handed on as a segment of its own (a
parser error fails the whole chunk it is fed, so a request followed by junk
in one TCP read would be lost), and a request line that is not HTTP/1.0 or
1.1 (:func:`~concentrador.server.axis.heads.request_line_problem`) becomes a
:class:`RequestRefused` in its place: answered 400 after the requests before
it, and the rest of the connection dropped (docs/protocol.md, "Decision").
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from concentrador.protocol import (
    HEADER_SIZE,
    DimeError,
    DimeExtentTracker,
    DimeLimits,
)
from concentrador.server.axis.heads import (
    DECLARED_LENGTH_HEADER,
    RequestRefused,
    Segment,
    parse_head,
    request_line_problem,
)

__all__ = [
    "DECLARED_LENGTH_HEADER",
    "TOO_LONG_REASON",
    "BodyCut",
    "ContentLengthTolerated",
    "ReframerEvent",
    "RequestReframer",
    "RequestRefused",
    "Segment",
]

_LAST_CHUNK = b"0\r\n\r\n"
TOO_LONG_REASON = "the DIME message goes on past the 12 bytes per record Axis 1.x leaves uncounted"


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


class _Output:
    """What one ``receive`` hands on, cut into :data:`Segment` s at request ends."""

    def __init__(self) -> None:
        self._pieces: list[bytes | memoryview] = []
        self.segments: list[Segment] = []

    def append(self, piece: bytes | memoryview) -> None:
        self._pieces.append(piece)

    def extend(self, pieces: tuple[bytes | memoryview, ...]) -> None:
        self._pieces.extend(pieces)

    def end_request(self) -> None:
        if self._pieces:
            self.segments.append(b"".join(self._pieces))
            self._pieces.clear()

    def refuse(self, reason: str) -> None:
        self.end_request()
        self.segments.append(RequestRefused(reason))

    def done(self) -> list[Segment]:
        self.end_request()
        return self.segments


class _State(enum.Enum):
    HEAD = enum.auto()  # collecting a request head
    BODY = enum.auto()  # passing a Content-Length body through
    DIME_DECLARED = enum.auto()  # re-framing a DIME body, within its Content-Length
    DIME_SURPLUS = enum.auto()  # re-framing a DIME body, past its Content-Length
    PASSTHROUGH = enum.auto()  # stepped aside for the rest of the connection
    DISCARD = enum.auto()  # after a cut body or a refused request: drop the rest


class RequestReframer:
    """One connection's request stream, DIME bodies re-framed (see the module doc).

    ``receive_requests(data)`` returns what to hand to the HTTP parser, as
    :data:`Segment` s: each complete request (head and body) is a segment of
    its own, so the parser can answer it before it meets what follows (a
    parser error fails the whole chunk it was fed, request and all); a
    :class:`RequestRefused` stands for a request line we do not serve, and
    everything after it is dropped. Possibly empty: a head is held until it is
    complete, at most ``max_head`` bytes. ``receive(data)`` is the same as one
    string of bytes, refusals left out (tests). ``events()`` returns and
    forgets what happened since the last call.
    """

    def __init__(self, limits: DimeLimits | None = None, *, max_head: int = 64 * 1024) -> None:
        self._limits = limits or DimeLimits()
        self._max_head = max_head
        self._state = _State.HEAD
        self._head = bytearray()
        self._scanned = 0  # head bytes already searched for the blank line
        self._line_checked = False  # the held head's request line was found valid
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
        return b"".join(s for s in self.receive_requests(data) if isinstance(s, bytes))

    def receive_requests(self, data: bytes) -> list[Segment]:
        out = _Output()
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
                    out.end_request()
                    self._state = _State.HEAD
            elif state is _State.DIME_DECLARED:
                view = self._receive_declared(view, out)
            else:
                view = self._receive_surplus(view, out)
        return out.done()

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

    def _receive_head(self, view: memoryview, out: _Output) -> memoryview:
        if not self._head:
            # Empty lines before a request line are the parser's business.
            skip = 0
            while skip < len(view) and view[skip] in b"\r\n":
                skip += 1
            if skip:
                out.append(view[:skip])
                return view[skip:]
        self._head += view
        if not self._line_checked and self._refused(len(self._head) - len(view), out):
            return memoryview(b"")
        end = self._head_end()
        if end is None:
            if len(self._head) > self._max_head:
                self._step_aside(out)
            return memoryview(b"")
        head = bytes(self._head[:end])
        rest = bytes(self._head[end:])
        self._head.clear()
        self._scanned = 0
        self._line_checked = False
        self._start_request(head, out)
        return memoryview(rest)

    def _refused(self, new_from: int, out: _Output) -> bool:
        """Refuse the held head as soon as its request line is complete and bad.

        Only the new bytes (from ``new_from``) can hold the line's end, so a
        line dripping in one byte at a time is not searched again and again.
        """
        end = self._head.find(b"\n", new_from)
        if end < 0:
            return False
        line = bytes(self._head[:end])
        problem = request_line_problem(line[:-1] if line.endswith(b"\r") else line)
        if problem is None:
            self._line_checked = True
            return False
        self._head.clear()
        self._scanned = 0
        out.refuse(problem)
        self._state = _State.DISCARD
        return True

    def _head_end(self) -> int | None:
        start = max(0, self._scanned - 2)
        self._scanned = len(self._head)
        ends = [
            index + len(mark)
            for mark in (b"\n\r\n", b"\n\n")
            if (index := self._head.find(mark, start)) >= 0
        ]
        return min(ends) if ends else None

    def _step_aside(self, out: _Output) -> None:
        out.append(bytes(self._head))
        self._head.clear()
        self._state = _State.PASSTHROUGH

    def _start_request(self, head: bytes, out: _Output) -> None:
        parsed = parse_head(head)
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
        if self._remaining:
            self._state = _State.BODY
        else:
            out.end_request()
            self._state = _State.HEAD

    # ---------------------------------------------------------- DIME bodies

    def _receive_declared(self, view: memoryview, out: _Output) -> memoryview:
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

    def _after_declared(self, out: _Output) -> None:
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

    def _receive_surplus(self, view: memoryview, out: _Output) -> memoryview:
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

    def _cut(self, out: _Output, reason: str) -> None:
        self._events.append(BodyCut(self._declared, self._declared + self._surplus, reason))
        out.append(_LAST_CHUNK)
        out.end_request()
        self._tracker = None
        self._state = _State.DISCARD

    def _end_body(self, out: _Output) -> None:
        out.append(_LAST_CHUNK)
        out.end_request()
        self._tracker = None
        self._state = _State.HEAD


def _chunk(piece: memoryview, out: _Output) -> None:
    if piece:  # an empty chunk would end the body
        out.extend((b"%x\r\n" % len(piece), piece, b"\r\n"))
