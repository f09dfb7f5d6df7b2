"""A file sent as the base64 text of a signed 504 answer, never held whole.

A ``get`` answers a published ``.bz2`` inline: ``Payload/Compressed`` holds
its base64 (a 50 MiB file is 67 MB of text). The answer is sent in two
passes over one open descriptor:

1. :func:`file_digest`, on a worker thread: the SHA-256 of the canonical
   message before the content, the base64 of the file, and the canonical
   message after it. That is the signature's reference digest, so the
   signature can be made before the first byte is sent. Skipped when the
   ledger keeps it for this file (``serving``: computed once per file);
2. :func:`stream_base64_answer`: the serialised envelope up to the content,
   the base64 read and encoded piece by piece, the rest; with a
   Content-Length, in writes of at most :data:`WRITE_SLICE` bytes (as
   :mod:`concentrador.server.responses` does, for the same peak-RSS reason).

The file is read in pieces of a multiple of 3 bytes, so the base64 of each
piece is final (no padding until the last) and the pieces of both passes are
the same bytes.
"""

from __future__ import annotations

import asyncio
from typing import BinaryIO

from aiohttp import web

# SIMD base64 (pybase64): the same bytes as the standard library's at about
# half the CPU; base64 of every file byte twice is the largest cost of a get.
from pybase64 import b64encode

from concentrador.server.responses import WRITE_SLICE, read_exactly
from concentrador.spool.outbound.answer_digests import answer_digest_of

__all__ = ["DIGEST_PIECE", "PIECE", "base64_length", "file_digest", "stream_base64_answer"]

PIECE = 192 * 1024
"""File bytes per read of pass 2 (a multiple of 3): 256 KiB of base64 per thread hop.

Each connection holds about two of these while it sends: kept small for the
peak RSS of many gets at once (bench/iec62325_rss_bench.py)."""

DIGEST_PIECE = 8 * PIECE
"""File bytes per read of pass 1 (1.5 MiB): fewer, larger reads and hashes cost
~0.4 s less CPU per GB than :data:`PIECE` (bench/iec62325_get_bench.py). Pass 1
runs on the executor's few threads, so the larger buffers don't add up per client."""


def base64_length(size: int) -> int:
    """Length of the base64 text (no line breaks) of ``size`` bytes."""
    return 4 * ((size + 2) // 3)


def file_digest(
    handle: BinaryIO, size: int, before: bytes, after: bytes, *, piece: int = DIGEST_PIECE
) -> bytes:
    """Pass 1 (blocking): the content digest of the answer; rewinds ``handle``.

    ``answer_digest_of``, the one computation the publish pass makes ahead of
    time too, over this handle.
    """
    handle.seek(0)
    try:
        return answer_digest_of(
            lambda wanted: read_exactly(handle, wanted), size, before, after, piece=piece
        )
    finally:
        handle.seek(0)


def _read_encoded(handle: BinaryIO, wanted: int, close: bool) -> bytes:
    return b64encode(read_exactly(handle, wanted, close=close))


async def stream_base64_answer(
    request: web.BaseRequest,
    prefix: bytes,
    handle: BinaryIO,
    size: int,
    suffix: bytes,
    *,
    content_type: str,
    piece: int = PIECE,
) -> web.StreamResponse:
    """Pass 2: send ``prefix``, the base64 of ``size`` bytes of ``handle``, ``suffix``.

    ``handle`` is positioned at the start of the file; it is closed here (by
    the hop that reads the last piece, or once a read in flight is done).
    Reads run one piece ahead of the writes, as in ``stream_dime_file``.
    """
    if piece % 3:
        raise ValueError("the piece size must be a multiple of 3")
    loop = asyncio.get_running_loop()
    remaining = size
    pending: asyncio.Future[bytes] | None = None

    def read_next() -> asyncio.Future[bytes] | None:
        nonlocal remaining
        if not remaining:
            return None
        wanted = min(piece, remaining)
        remaining -= wanted
        return loop.run_in_executor(None, _read_encoded, handle, wanted, not remaining)

    try:
        response = web.StreamResponse(status=200, headers={"Content-Type": content_type})
        response.content_length = len(prefix) + base64_length(size) + len(suffix)
        pending = read_next()
        await response.prepare(request)
        await _write(response, prefix)
        while pending is not None:
            encoded = await pending
            pending = read_next()
            await _write(response, encoded)
        await _write(response, suffix)
        await response.write_eof()
        return response
    finally:
        _close_after(handle, pending)


async def _write(response: web.StreamResponse, data: bytes) -> None:
    view = memoryview(data)
    for start in range(0, len(view), WRITE_SLICE):
        await response.write(view[start : start + WRITE_SLICE])


def _close_after(handle: BinaryIO, pending: asyncio.Future[bytes] | None) -> None:
    """Close ``handle`` now, or after the read still running on it."""
    if pending is None or pending.done():
        if pending is not None and not pending.cancelled():
            pending.exception()  # retrieved: nobody else will look at it
        handle.close()
        return

    def close(finished: asyncio.Future[bytes]) -> None:
        if not finished.cancelled():
            finished.exception()
        handle.close()

    pending.add_done_callback(close)
