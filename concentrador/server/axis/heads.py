"""Reading HTTP/1.x request heads, byte for byte, for the re-framer (pure).

Two questions only: is a request line one we serve at all
(:func:`request_line_problem`), and what of a complete head does the
re-framer need (:func:`parse_head`)? Strict on purpose: a request line
without ``HTTP/1.0`` or ``HTTP/1.1`` is refused (llhttp would serve
``POST /`` as HTTP/0.9, and ``HTTP/2.0`` as if it were 1.1), while an odd
header line is left to aiohttp's parser untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

from concentrador.protocol import DIME_CONTENT_TYPE

__all__ = [
    "DECLARED_LENGTH_HEADER",
    "Head",
    "RequestRefused",
    "Segment",
    "parse_head",
    "request_line_problem",
]

# Carries the peer's original Content-Length of a re-framed request to the
# application, only so that its faults can say what happened. A peer can send
# it itself; it then only changes the wording of its own fault.
DECLARED_LENGTH_HEADER = "Concentrador-Declared-Length"

_DIME_MEDIA_TYPE = DIME_CONTENT_TYPE.encode("ascii")
_VERSIONS = (b"HTTP/1.0", b"HTTP/1.1")
# RFC 9110 token characters, the only ones a method or header name may have.
_TOKEN_CHARS = frozenset(
    b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
# The same set as bytes: ``name.translate(None, _TOKEN_BYTES)`` is empty exactly
# when every byte of ``name`` is a token character (one C call, not a set).
_TOKEN_BYTES = bytes(sorted(_TOKEN_CHARS))
# What of a refused line a log line or a 400 quotes.
_SHOWN = 60


_VISIBLE_BYTES = bytes(range(0x21, 0x7F))


def _is_token(name: bytes) -> bool:
    """Whether every byte of ``name`` is a token character (vacuously true for b"")."""
    return not name.translate(None, _TOKEN_BYTES)


def _shown(line: bytes) -> str:
    return ascii(line[:_SHOWN]) + ("..." if len(line) > _SHOWN else "")


def request_line_problem(line: bytes) -> str | None:
    """Why ``line`` (without its line end) is no HTTP/1.0 or 1.1 request line, or None.

    RFC 9112 §3: ``method SP request-target SP HTTP-version``, single spaces.
    The target's syntax is left to aiohttp (it answers 400 for a bad one).
    """
    parts = line.split(b" ")
    if len(parts) == 2 and parts[0] and _is_token(parts[0]) and parts[1]:
        return f"request line has no HTTP version: {_shown(line)}"
    if len(parts) != 3 or not all(parts):
        return f"malformed request line: {_shown(line)}"
    method, target, version = parts
    if not _is_token(method):
        return f"malformed request method: {_shown(line)}"
    if target.translate(None, _VISIBLE_BYTES):  # a byte <= 0x20 or >= 0x7F
        return f"malformed request target: {_shown(line)}"
    if version not in _VERSIONS:
        return f"unsupported HTTP version {_shown(version)} (HTTP/1.0 or HTTP/1.1 only)"
    return None


@dataclass(frozen=True, slots=True)
class RequestRefused:
    """A request line that is no HTTP/1.0 or 1.1 one: answer 400 in its place, then close."""

    reason: str


Segment = bytes | RequestRefused
"""What the re-framer hands on: one request's bytes (or the start of one), or a refusal."""


@dataclass(frozen=True, slots=True)
class Head:
    """The parts of one request head the re-framer acts on."""

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
        """The head as a chunked request, the declared length kept aside."""
        drop = (b"content-length", DECLARED_LENGTH_HEADER.lower().encode())
        lines = [self.request_line]
        lines += [line for name, line in self.fields if name not in drop]
        lines.append(b"Transfer-Encoding: chunked")
        lines.append(b"%s: %d" % (DECLARED_LENGTH_HEADER.encode(), self.content_length))
        return b"\r\n".join(lines) + b"\r\n\r\n"


def parse_head(head: bytes) -> Head | None:
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
        if not colon or not name or not _is_token(name):
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
    return Head(
        request_line=lines[0],
        fields=fields,
        method=parts[0],
        content_length=int(lengths[0]) if lengths and not opaque else 0,
        opaque=opaque,
        dime=len(content_types) == 1 and media_type == _DIME_MEDIA_TYPE and bool(lengths),
    )
