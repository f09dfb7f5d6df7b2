"""The body of a 504 ``put``: a signed envelope around a file streamed as base64.

Two passes over the local file, never the whole file in memory:

1. (worker thread) the base64 of the file is digested between the canonical
   bytes before and after the placeholder, and the message is signed with
   that digest (skipped when the peer's signatures are ``off``);
2. (while sending) the serialized envelope is cut at the placeholder and sent
   as ``prefix + base64(file) + suffix`` with a Content-Length computed up
   front (``4 * ceil(size / 3)`` for the base64), so the request is never
   chunked and a peer's stack can bound it.

The file is one path or several: a file published in ``NAME.k_n`` blocks (the
v2.3 publisher cuts at 8 MB) is put whole, its blocks read one after the
other (they are byte ranges of the compressed file), since 504 has no blocks.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from concentrador.client.iec62325.signatures import Signatures
from concentrador.protocol import SoapVersion
from concentrador.protocol.iec62325.envelope import build_504_envelope, split_at_placeholder
from concentrador.protocol.iec62325.signature import canonical_parts, content_digest
from concentrador.protocol.iec62325.streaming import Base64Encoder

__all__ = ["UPLOAD_PIECE", "SignedUpload", "base64_length"]

UPLOAD_PIECE = 3 * 128 * 1024
"""File bytes per read: a multiple of 3, so each piece encodes without carry."""


def base64_length(size: int) -> int:
    return (size + 2) // 3 * 4


def _file_pieces(paths: Sequence[Path], sizes: Sequence[int]) -> Iterator[bytes]:
    """The concatenated bytes of ``paths``; refuses a file whose size changed."""
    for path, size in zip(paths, sizes, strict=True):
        remaining = size
        with open(path, "rb") as handle:
            while remaining:
                piece = handle.read(min(UPLOAD_PIECE, remaining))
                if not piece:
                    raise OSError(f"{path} shrank while being sent")
                remaining -= len(piece)
                yield piece
            if handle.read(1):
                raise OSError(f"{path} grew while being sent")


def _base64_pieces(pieces: Iterator[bytes]) -> Iterator[bytes]:
    encoder = Base64Encoder()
    for piece in pieces:
        if encoded := encoder.feed(piece):
            yield encoded
    if tail := encoder.finish():
        yield tail


@dataclass(frozen=True)
class SignedUpload:
    """A prepared put body: ``prefix``, the base64 of ``paths``, ``suffix``."""

    prefix: bytes
    suffix: bytes
    paths: tuple[Path, ...]
    sizes: tuple[int, ...]

    @property
    def size(self) -> int:
        """The file's size (before base64)."""
        return sum(self.sizes)

    @property
    def content_length(self) -> int:
        return len(self.prefix) + base64_length(self.size) + len(self.suffix)

    @classmethod
    def prepare(
        cls,
        message: etree._Element,
        paths: Sequence[Path],
        signatures: Signatures,
        version: SoapVersion,
    ) -> SignedUpload:
        """Pass 1 (blocking): sign ``message`` over the streamed content of ``paths``."""
        sizes = tuple(os.stat(path).st_size for path in paths)
        if signatures.enabled and signatures.key is not None:
            before, after = canonical_parts(message)
            digest = content_digest(before, _base64_pieces(_file_pieces(paths, sizes)), after)
            signatures.sign(message, digest)
        prefix, suffix = split_at_placeholder(build_504_envelope(message, version))
        return cls(prefix, suffix, tuple(paths), sizes)

    async def body(self, on_bytes: Callable[[int], None] | None = None) -> AsyncIterator[bytes]:
        """Pass 2: the bytes to send, the file read in a worker thread as it goes."""
        loop = asyncio.get_running_loop()
        yield self.prefix
        encoder = Base64Encoder()
        pieces = _file_pieces(self.paths, self.sizes)
        done = object()
        while True:
            piece = await loop.run_in_executor(None, next, pieces, done)
            if piece is done:
                break
            assert isinstance(piece, bytes)
            if encoded := encoder.feed(piece):
                yield encoded
            if on_bytes is not None:
                on_bytes(len(piece))
        if tail := encoder.finish():
            yield tail
        yield self.suffix
