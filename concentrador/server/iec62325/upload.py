"""Receiving a 504 request body: the XML in memory, the base64 content on disk.

The body goes through the core's :class:`CompressedSplitter`: the XML
around ``Payload/Compressed`` (bounded by the envelope limit) stays in
memory with the placeholder where the content was, and the content (the
base64 of up to a 50 MiB file, ~67 MB) goes to a temporary file in the
peer's ``.work/``, bounded too. Nothing is decoded yet: the signature must
be checked over the text exactly as sent before a byte of it is stored.

Disk writes leave the event loop in batches of about 1 MiB, as enviarFichero
does (one thread hop per batch, not per received piece).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import BinaryIO

from concentrador.protocol.iec62325.errors import ErrorCode, Iec62325Error
from concentrador.protocol.iec62325.streaming import CompressedSplitter, StreamingError
from concentrador.protocol.iec62325.wire import MAX_FILE_SIZE
from concentrador.server.iec62325.stream import base64_length
from concentrador.server.operations.enviar import BATCH_BYTES

__all__ = ["MAX_CONTENT", "Upload", "receive_body"]

# The base64 of the largest file, with room for a line break every 64
# characters (MIME-style writers) and a little surrounding white space. The
# decoded size is checked exactly afterwards (PUT-018 either way).
MAX_CONTENT = base64_length(MAX_FILE_SIZE) * 66 // 64 + 4096
_READ = 64 * 1024


class Upload:
    """A received body: ``xml`` (with the placeholder if there was content) and
    the content's temporary file. :meth:`discard` removes the file; always call it."""

    def __init__(self, xml: bytes, path: Path | None, content_length: int) -> None:
        self.xml = xml
        self.path = path
        self.content_length = content_length

    @property
    def has_content(self) -> bool:
        return self.path is not None

    def content(self, piece: int = 256 * 1024) -> Iterator[bytes]:
        """The content as sent, in pieces (blocking: run on a worker thread)."""
        if self.path is None:
            return
        with open(self.path, "rb") as handle:
            while chunk := handle.read(piece):
                yield chunk

    def discard(self) -> None:
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            self.path = None


class _Spill:
    """The temporary file, created at the first content byte."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.path: Path | None = None
        self._handle: BinaryIO | None = None

    def write_many(self, pieces: list[bytes]) -> None:
        if self._handle is None:
            fd, name = tempfile.mkstemp(prefix="iec62325-", suffix=".b64", dir=self.work_dir)
            self.path = Path(name)
            self._handle = os.fdopen(fd, "wb")
        for piece in pieces:
            self._handle.write(piece)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def remove(self) -> None:
        self.close()
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            self.path = None


async def receive_body(
    pieces: AsyncIterator[bytes],
    work_dir: Path,
    *,
    max_xml: int,
    max_content: int | None = None,
) -> Upload:
    """Read the whole body; raises :class:`Iec62325Error` (nothing left on disk).

    ``max_content`` defaults to :data:`MAX_CONTENT`.
    """
    if max_content is None:
        max_content = MAX_CONTENT
    splitter = CompressedSplitter(max_xml=max_xml, max_content=max_content)
    spill = _Spill(work_dir)
    batch: list[bytes] = []
    batched = 0
    try:
        async for piece in pieces:
            content = splitter.feed(piece)
            for part in content:
                batch.append(part)
                batched += len(part)
            if batched >= BATCH_BYTES:
                await asyncio.to_thread(spill.write_many, batch)
                batch, batched = [], 0
        xml = splitter.close()
        if batch:
            await asyncio.to_thread(spill.write_many, batch)
        await asyncio.to_thread(spill.close)
    except StreamingError as exc:
        spill.remove()
        if splitter.content_length > max_content:
            raise Iec62325Error(
                ErrorCode.PUT_TOO_LARGE,
                f"the payload is over {max_content} bytes of base64 "
                f"(files up to {MAX_FILE_SIZE} bytes are accepted)",
            ) from None
        raise Iec62325Error(ErrorCode.SCHEMA, str(exc)) from None
    except BaseException:
        spill.remove()
        raise
    path = spill.path
    if splitter.found and path is None:
        # An empty Compressed: an empty file, still a file.
        await asyncio.to_thread(spill.write_many, [])
        await asyncio.to_thread(spill.close)
        path = spill.path
    return Upload(xml, path, splitter.content_length)
