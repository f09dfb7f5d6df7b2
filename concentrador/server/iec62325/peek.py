"""Which profile a request body speaks, from its first bytes only.

The two profiles share one TLS listener. A request to the configured 504
path is 504 by definition; anywhere else, the body says: an IEC 61968-100
``msg:RequestMessage`` as the SOAP Body's first child is 504, anything else
is CPCSCC v2.3. A v2.3 request is a few hundred bytes and is read whole (as
before), so it pays nothing here unless it is bigger than :data:`PEEK_AFTER`;
a 504 put may be 67 MB of base64, so only its start is looked at
(:func:`message_kind`) and the rest is streamed on (:class:`BodySource`).

The peek is not the parse: it only reads start tags, with an lxml pull
parser that loads no DTD, resolves no entity and touches no network, over
at most :data:`PEEK_LIMIT` bytes. Whatever it decides, the message is later
parsed by the hardened parser (:mod:`concentrador.protocol.xmlparse`).
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator

from aiohttp import web
from lxml import etree

from concentrador.protocol import Envelope, SoapVersion
from concentrador.protocol.iec62325.wire import MSG_NAMESPACE
from concentrador.protocol.soap import SOAP11_NAMESPACE, SOAP12_NAMESPACE
from concentrador.server.body import BodyTooLarge

__all__ = [
    "PEEK_AFTER",
    "PEEK_LIMIT",
    "BodySource",
    "MessageKind",
    "Peek",
    "is_504_message",
    "message_kind",
    "read_or_peek",
]

PEEK_AFTER = 64 * 1024
"""A plain body up to this size is read whole before anything is decided."""
PEEK_LIMIT = 64 * 1024
"""At most this many bytes are parsed to find the Body's first child."""
_READ = 64 * 1024
_ENVELOPES = (SOAP11_NAMESPACE, SOAP12_NAMESPACE)
_REQUEST_MESSAGE = f"{{{MSG_NAMESPACE}}}RequestMessage"


class MessageKind(enum.Enum):
    IEC62325 = "iec62325-504"
    """The Body's first child is ``msg:RequestMessage``."""
    OTHER = "other"
    """The Body's first child is something else (or the body is no SOAP)."""
    UNDECIDED = "undecided"
    """The bytes seen end before the Body's first child starts."""


class Peek:
    """What the first bytes said: the kind and, if seen, the SOAP version."""

    __slots__ = ("kind", "version")

    def __init__(self, kind: MessageKind, version: SoapVersion | None) -> None:
        self.kind = kind
        self.version = version


def message_kind(head: bytes) -> Peek:
    """Look at the start tags of ``head`` (the first bytes of a body).

    Bytes that do not parse as the start of an XML document (or declare a
    DTD) are ``OTHER``: the v2.3 path then refuses them with its usual fault.
    """
    head = head[:PEEK_LIMIT]
    if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
        return Peek(MessageKind.OTHER, None)
    parser = etree.XMLPullParser(
        events=("start", "end"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
    )
    version: SoapVersion | None = None
    depth = 0
    in_body = False
    try:
        parser.feed(head)
        for event, element in parser.read_events():
            if not isinstance(element, etree._Element):
                continue
            tag = element.tag
            if not isinstance(tag, str):
                continue  # comments and processing instructions
            if event == "end":
                depth -= 1
                if in_body and depth == 1:  # the Body ended with no child
                    return Peek(MessageKind.OTHER, version)
                continue
            depth += 1
            namespace, _, local = tag[1:].partition("}") if tag[0] == "{" else ("", "", tag)
            if depth == 1:
                if local != "Envelope" or namespace not in _ENVELOPES:
                    return Peek(MessageKind.OTHER, None)
                version = SoapVersion.from_namespace(namespace)
            elif depth == 2:
                in_body = local == "Body" and namespace == (version.namespace if version else "")
            elif depth == 3 and in_body:
                kind = MessageKind.IEC62325 if tag == _REQUEST_MESSAGE else MessageKind.OTHER
                return Peek(kind, version)
    except etree.XMLSyntaxError:
        return Peek(MessageKind.OTHER, version)
    return Peek(MessageKind.UNDECIDED, version)


class BodySource:
    """A request body as pieces: the bytes already read, then the rest of the stream.

    Handed to the 504 handler so that a body whose start was read to choose
    the profile is not read twice, and never held whole.
    """

    def __init__(self, request: web.BaseRequest, head: list[bytes] | None = None) -> None:
        self._content = request.content
        self._head = head or []

    async def pieces(self) -> AsyncIterator[bytes]:
        head, self._head = self._head, []
        for piece in head:
            yield piece
        async for piece in self._content.iter_chunked(_READ):
            yield piece


async def read_or_peek(
    request: web.BaseRequest, limit: int
) -> tuple[bytes, None] | tuple[None, BodySource]:
    """A plain body read whole (``(body, None)``), or a 504 one to stream (``(None, source)``).

    The whole body is read (up to ``limit``, the envelope limit, as before)
    unless, past :data:`PEEK_AFTER` bytes, its start shows a 504
    ``RequestMessage``: then the bytes read so far and the rest are handed
    on. A body under the peek threshold is never peeked: the caller parses
    it anyway and looks at the Body's first child then.
    """
    declared = request.content_length
    parts: list[bytes] = []
    size = 0
    peeked = False
    async for piece in request.content.iter_chunked(_READ):
        parts.append(piece)
        size += len(piece)
        if not peeked and size > PEEK_AFTER:
            peeked = True
            if message_kind(b"".join(parts)).kind is MessageKind.IEC62325:
                return None, BodySource(request, parts)
            if declared is not None and declared > limit:
                raise BodyTooLarge(
                    f"request body of {declared} bytes is over the {limit}-byte limit"
                )
        if size > limit:
            raise BodyTooLarge(f"request body is over the {limit}-byte limit")
    return b"".join(parts), None


def is_504_message(envelope: Envelope) -> bool:
    """Whether a parsed envelope's first Body child is a ``msg:RequestMessage``."""
    first = envelope.first_body_element
    return first is not None and first.tag == _REQUEST_MESSAGE
