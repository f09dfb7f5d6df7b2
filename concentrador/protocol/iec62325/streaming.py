"""Streaming the one big element of a 504 message: ``Payload/Compressed``.

A 50 MiB file travels as 67 MB of base64 in one element, so it is never held in
memory. :class:`CompressedSplitter` cuts an incoming SOAP body into the XML around
that element (small; parsed afterwards by the hardened parser, with
:data:`~concentrador.protocol.iec62325.signature.PLACEHOLDER` where the content
was) and the content itself, handed out piece by piece as it arrives.

Decision: the Compressed content must be plain base64 (base64 alphabet and XML
white space). Entity or character references, CDATA sections, comments and
child elements are refused: nobody needs them, and refusing keeps the streamed
bytes identical to the element's text, which the signature digest relies on.

The scanner is a small tokenizer, not an XML parser: it tracks start and end
tags (with their namespace declarations, to know which element is
``msg:Payload/msg:Compressed``), comments, CDATA sections and processing
instructions, so a ``Compressed`` inside a comment or an attribute value is not
taken for the element. Everything else (well-formedness, DOCTYPE) is left to the
hardened parser that reads the XML afterwards. The markup must be in an
ASCII-compatible encoding (UTF-8, as every 504 peer sends).
"""

from __future__ import annotations

import binascii
import re

import pybase64

from concentrador.protocol.errors import ProtocolError
from concentrador.protocol.iec62325.signature import PLACEHOLDER
from concentrador.protocol.iec62325.wire import MSG_NAMESPACE

__all__ = [
    "Base64Decoder",
    "Base64Encoder",
    "Base64Error",
    "CompressedSplitter",
    "StreamingError",
]

_PLACEHOLDER = PLACEHOLDER.encode("ascii")
_XML_SPACE = b" \t\r\n"
_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_CONTENT_ALLOWED = _BASE64_ALPHABET + b"=" + _XML_SPACE
_NAME_RE = re.compile(rb"<([^\s/>]+)")
_ATTRIBUTE_RE = re.compile(rb"""\s+([^\s=/>]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_SPECIAL_STARTS = (b"<!--", b"<![CDATA[", b"<?")


class StreamingError(ProtocolError):
    """The body cannot be split: bad markup around Compressed, bad content, too large."""


class Base64Error(ProtocolError):
    """Not valid base64."""


class CompressedSplitter:
    """Split a message stream at ``msg:Payload/msg:Compressed``.

    ``feed(data)`` returns the content pieces found in ``data`` (validated, in
    order, possibly none); ``close()`` returns the XML with :data:`PLACEHOLDER`
    where the content was (or the whole body when there is no Compressed).
    At most ``max_xml`` bytes of XML and ``max_content`` bytes of content.
    """

    def __init__(self, max_xml: int, max_content: int) -> None:
        self._max_xml = max_xml
        self._max_content = max_content
        self._xml = bytearray()
        self._scan = 0  # first byte of self._xml not yet tokenized
        # One entry per open element: (namespace, local name, prefix map).
        self._stack: list[tuple[str | None, str, dict[bytes, bytes]]] = []
        self._in_content = False
        self._found = False
        self._content_ended = False  # the next token must be Compressed's end tag
        self._closed = False
        self.content_length = 0

    @property
    def found(self) -> bool:
        """Whether the message has a ``Payload/Compressed`` element."""
        return self._found

    def feed(self, data: bytes) -> list[bytes]:
        if self._closed:
            raise StreamingError("feed() after close()")
        pieces: list[bytes] = []
        while data:
            if self._in_content:
                end = data.find(b"<")
                piece = data if end < 0 else data[:end]
                if piece:
                    self._content(piece)
                    pieces.append(piece)
                if end < 0:
                    break
                self._in_content = False
                self._content_ended = True
                data = data[end:]
                self._xml += _PLACEHOLDER
                self._scan = len(self._xml)
                continue
            self._xml += data
            # When the Compressed start tag ends inside this chunk, what follows is content.
            data = self._tokenize() or b""
            if len(self._xml) > self._max_xml + len(_PLACEHOLDER):
                raise StreamingError(f"the XML around the payload exceeds {self._max_xml} bytes")
        return pieces

    def close(self) -> bytes:
        """The XML with the placeholder; refuses an unfinished Compressed or markup."""
        if self._in_content:
            raise StreamingError("the body ends inside Payload/Compressed")
        if self._scan < len(self._xml) and b"<" in self._xml[self._scan :]:
            raise StreamingError("the body ends inside markup")
        self._closed = True
        return bytes(self._xml)

    # -- internals ------------------------------------------------------------

    def _content(self, piece: bytes) -> None:
        bad = piece.translate(None, _CONTENT_ALLOWED)
        if bad:
            shown = chr(bad[0]) if 32 < bad[0] < 127 else f"byte 0x{bad[0]:02x}"
            raise StreamingError(
                f"Payload/Compressed must be plain base64; it holds {shown!r} "
                "(no references, CDATA, comments or elements)"
            )
        self.content_length += len(piece)
        if self.content_length > self._max_content:
            raise StreamingError(f"Payload/Compressed exceeds {self._max_content} bytes")

    def _tokenize(self) -> bytes | None:
        """Advance over complete tokens; return the bytes after a Compressed start tag."""
        xml = self._xml
        while True:
            start = xml.find(b"<", self._scan)
            if start < 0:
                self._scan = len(xml)
                return None
            self._scan = start
            head = bytes(xml[start : start + 9])
            if self._content_ended:
                if len(head) < 2:
                    return None
                if not head.startswith(b"</"):
                    raise StreamingError(
                        "Payload/Compressed must be plain base64: no CDATA, comments or elements"
                    )
                self._content_ended = False
            special = next((s for s in _SPECIAL_STARTS if head.startswith(s)), None)
            if special is None and any(s.startswith(head) for s in _SPECIAL_STARTS):
                return None  # too few bytes yet to tell a comment or CDATA from a tag
            if special is not None:
                terminator = {b"<!--": b"-->", b"<![CDATA[": b"]]>", b"<?": b"?>"}[special]
                end = xml.find(terminator, start + len(special))
                if end < 0:
                    return None
                self._scan = end + len(terminator)
                continue
            if head.startswith(b"<!"):
                raise StreamingError("a document type declaration is not allowed")
            end = _tag_end(xml, start)
            if end < 0:
                return None
            self._scan = end + 1
            if self._tag(start, end):
                rest = bytes(xml[self._scan :])
                del xml[self._scan :]
                return rest

    def _tag(self, start: int, end: int) -> bool:
        """Handle the tag ``xml[start:end+1]``; True when it opens the Compressed content."""
        tag = bytes(self._xml[start : end + 1])
        if tag.startswith(b"</"):
            if not self._stack:
                raise StreamingError("an end tag without a start tag")
            self._stack.pop()
            return False
        match = _NAME_RE.match(tag)
        if match is None:
            raise StreamingError(f"malformed tag {tag[:60]!r}")
        prefixes = dict(self._stack[-1][2]) if self._stack else {b"xml": b""}
        for attribute in _ATTRIBUTE_RE.finditer(tag, match.end()):
            name, value = attribute.group(1), attribute.group(2) or attribute.group(3) or b""
            if name == b"xmlns":
                prefixes[b""] = value
            elif name.startswith(b"xmlns:"):
                prefixes[name[6:]] = value
        prefix, _, local = match.group(1).rpartition(b":")
        namespace = prefixes.get(prefix)
        uri = namespace.decode("utf-8", "replace") if namespace else None
        name = local.decode("utf-8", "replace")
        empty = tag.endswith(b"/>")
        is_compressed = (
            uri == MSG_NAMESPACE
            and name == "Compressed"
            and bool(self._stack)
            and self._stack[-1][:2] == (MSG_NAMESPACE, "Payload")
        )
        if not empty:
            self._stack.append((uri, name, prefixes))
        if not is_compressed:
            return False
        if self._found:
            raise StreamingError("the message holds more than one Payload/Compressed")
        self._found = True
        if empty:
            # <msg:Compressed/>: same canonical form as an empty element with text.
            self._xml[end - 1 : end + 1] = b">" + _PLACEHOLDER + b"</" + match.group(1) + b">"
            self._scan = len(self._xml)
            return False
        self._in_content = True
        return True


def _tag_end(xml: bytearray, start: int) -> int:
    """Index of the ``>`` closing the tag at ``start`` (quotes respected), or -1."""
    position = start + 1
    while True:
        close = xml.find(b">", position)
        if close < 0:
            return -1
        quote = -1
        for mark in (b'"', b"'"):
            found = xml.find(mark, position, close)
            if found >= 0 and (quote < 0 or found < quote):
                quote = found
        if quote < 0:
            return close
        end_quote = xml.find(xml[quote : quote + 1], quote + 1)
        if end_quote < 0:
            return -1
        position = end_quote + 1


class Base64Decoder:
    """Incremental strict base64 decoder: XML white space skipped, anything else refused."""

    def __init__(self) -> None:
        self._pending = b""
        self._padded = False
        self.decoded_length = 0

    def feed(self, data: bytes) -> bytes:
        data = data.translate(None, _XML_SPACE)
        if not data:
            return b""
        if self._padded:
            raise Base64Error("base64 data after the padding")
        data = self._pending + data
        usable = len(data) - len(data) % 4
        self._pending = data[usable:]
        chunk = data[:usable]
        pad = chunk.find(b"=")
        if pad >= 0:
            # Padding may only end the last quantum ('=' or '=='), and nothing may follow.
            if pad < len(chunk) - 2 or self._pending:
                raise Base64Error("base64 padding in the middle of the data")
            self._padded = True
        try:
            out = pybase64.b64decode(chunk, validate=True)
        except binascii.Error as err:
            raise Base64Error(f"invalid base64: {err}") from None
        self.decoded_length += len(out)
        return out

    def finish(self) -> bytes:
        if self._pending:
            raise Base64Error("base64 data truncated: its length is not a multiple of 4")
        return b""


class Base64Encoder:
    """Incremental base64 encoder, one line (no line breaks), padded at finish()."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> bytes:
        data = self._pending + data
        usable = len(data) - len(data) % 3
        self._pending = data[usable:]
        return pybase64.b64encode(data[:usable]) if usable else b""

    def finish(self) -> bytes:
        tail, self._pending = self._pending, b""
        return pybase64.b64encode(tail) if tail else b""
