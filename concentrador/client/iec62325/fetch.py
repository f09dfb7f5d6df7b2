"""A 504 ``get`` answer, streamed: the base64 to a temp file, the XML kept apart.

A 50 MiB file arrives as some 67 MB of base64 inside one element, so the body
is never held in memory: :class:`~concentrador.protocol.iec62325.streaming.CompressedSplitter`
cuts it as it arrives into the XML around ``Payload/Compressed`` (small, with a
placeholder where the content was) and the content, which goes to a temp file
of base64 text in the peer's ``.work/`` (written off the event loop in ~1 MiB
batches; the daemon empties ``.work/`` at start-up, so a kill -9 leaves nothing
behind). Then, in worker threads, the signature is checked over that file
(pass 1) and the file is decoded into the spool (pass 2, :meth:`FetchedMessage.decode_into`).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from lxml import etree

from concentrador.client.deadline import CallDeadline
from concentrador.client.errors import PeerProtocolError
from concentrador.protocol import DEFAULT_MAX_ENVELOPE, ProtocolError
from concentrador.protocol.iec62325.models import Response
from concentrador.protocol.iec62325.streaming import Base64Decoder, CompressedSplitter
from concentrador.protocol.iec62325.wire import MAX_FILE_SIZE, PayloadFormat

__all__ = [
    "BATCH",
    "MAX_CONTENT",
    "Base64File",
    "FetchedMessage",
    "PayloadRefused",
    "stream_answer",
]

BATCH = 1024 * 1024
"""Base64 bytes gathered before one write hop to a worker thread."""
READ_SIZE = 1024 * 1024
MAX_CONTENT = (MAX_FILE_SIZE + 2) // 3 * 4 * 103 // 100 + 4096
"""The base64 of a 50 MiB file, plus 3 % for line breaks some encoders add."""
MAX_XML = DEFAULT_MAX_ENVELOPE


class PayloadRefused(PeerProtocolError):
    """The message is well signed but its content cannot be stored (bad base64,
    too large, no name, unknown format): fetching it again would not help."""


class Base64File:
    """A temp file of base64 text in ``work_dir``; blocking methods (call in a thread)."""

    def __init__(self, work_dir: Path) -> None:
        work_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=work_dir, prefix="iec-get-", suffix=".b64")
        self.path = Path(name)
        self._handle = os.fdopen(fd, "wb")
        self.size = 0

    def write(self, data: bytes) -> None:
        self._handle.write(data)
        self.size += len(data)

    def close(self) -> None:
        if not self._handle.closed:
            self._handle.close()

    def chunks(self) -> Iterator[bytes]:
        self.close()
        with open(self.path, "rb") as handle:
            while chunk := handle.read(READ_SIZE):
                yield chunk

    def discard(self) -> None:
        self.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


async def stream_answer(
    response: aiohttp.ClientResponse,
    content: Base64File,
    *,
    peer_id: str,
    operation: str,
    deadline: CallDeadline,
    on_bytes: Callable[[int], None] | None = None,
) -> bytes:
    """Read the whole answer: its base64 content into ``content``; returns the XML."""
    loop = asyncio.get_running_loop()
    splitter = CompressedSplitter(MAX_XML, MAX_CONTENT)
    pending: list[bytes] = []
    pending_size = 0
    try:
        while chunk := await response.content.readany():
            deadline.advance(len(chunk))
            pieces = splitter.feed(chunk)
            if not pieces:
                continue
            pending.extend(pieces)
            pending_size += sum(len(p) for p in pieces)
            if on_bytes is not None:
                on_bytes(sum(len(p) for p in pieces) * 3 // 4)
            if pending_size >= BATCH:
                data, pending, pending_size = b"".join(pending), [], 0
                await loop.run_in_executor(None, content.write, data)
        if pending:
            await loop.run_in_executor(None, content.write, b"".join(pending))
        xml = splitter.close()
    except ProtocolError as exc:  # StreamingError: bad markup, not base64, too large
        raise PeerProtocolError(peer_id, f"{operation}: {exc}") from None
    await loop.run_in_executor(None, content.close)
    return xml


@dataclass
class FetchedMessage:
    """A verified ``get`` answer waiting to be stored: call :meth:`decode_into`, then
    :meth:`discard` (both blocking)."""

    peer_id: str
    code: int
    name: str
    response: Response
    content: Base64File | None
    """The base64 text of ``Payload/Compressed`` (None: an inline XML document)."""
    signer: str | None = None
    """The signer's subject DN, when the signature was checked."""

    @property
    def format(self) -> str:
        return self.response.format or PayloadFormat.BINARY

    def decode_into(self, sink: Callable[[bytes], object]) -> int:
        """Write the file's bytes to ``sink`` in one pass; returns how many."""
        if self.content is None:
            return self._write_document(sink)
        decoder = Base64Decoder()
        inflate = zlib.decompressobj(wbits=31) if self.format == PayloadFormat.XML else None
        written = 0
        try:
            for chunk in self.content.chunks():
                data = decoder.feed(chunk)
                if inflate is not None:
                    data = inflate.decompress(data, MAX_FILE_SIZE + 1 - written)
                written += len(data)
                if written > MAX_FILE_SIZE:
                    raise self._refused(f"the file is larger than {MAX_FILE_SIZE} bytes")
                sink(data)
            decoder.finish()
            if inflate is not None and not inflate.eof:
                raise self._refused("the gzip of the XML document is truncated")
        except ProtocolError as exc:  # Base64Error
            raise self._refused(f"the Compressed payload is not valid base64: {exc}") from None
        except zlib.error as exc:
            raise self._refused(f"the XML payload is not valid gzip: {exc}") from None
        return written

    def _write_document(self, sink: Callable[[bytes], object]) -> int:
        document = self.response.payload
        if document is None:
            raise self._refused("the answer has no payload (HAND-011)")
        # The document as its own document (namespaces it uses declared on it).
        data = etree.tostring(
            etree.ElementTree(copy.deepcopy(document)), xml_declaration=True, encoding="UTF-8"
        )
        if len(data) > MAX_FILE_SIZE:
            raise self._refused(f"the document is larger than {MAX_FILE_SIZE} bytes")
        sink(data)
        return len(data)

    def _refused(self, why: str) -> PayloadRefused:
        return PayloadRefused(self.peer_id, f"get code {self.code} ({self.name}): {why}")

    def discard(self) -> None:
        if self.content is not None:
            self.content.discard()
