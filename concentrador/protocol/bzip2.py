"""Bit-level bzip2 plumbing: joining blocks into one stream, checking a stream.

Why this exists: CPCSCC receivers (Java ``BZip2CompressorInputStream`` in its
default mode, old Axis-era tools) read only the *first* bzip2 stream of a file.
Compressing chunks independently and concatenating the results (what
``pbzip2`` does) gives a multi-stream file that such a reader silently
truncates. So the parallel thread compressor compresses each chunk as its own
one-block stream and then splices the *blocks* into a single stream:

* a stream is ``"BZh" level`` + blocks + end-of-stream marker + combined CRC,
  bit-packed with no byte alignment between blocks;
* every block carries the CRC of its own uncompressed bytes, and the stream
  CRC is ``combined = rotl(combined, 1) ^ block_crc`` over the blocks.

Everything here is pure computation on bytes (no I/O).
"""

from __future__ import annotations

import bz2
import zlib
from dataclasses import dataclass

__all__ = [
    "BZIP2_MAGIC",
    "Bzip2Block",
    "Bzip2FormatError",
    "DecompressionBudget",
    "SingleStreamChecker",
    "StreamJoiner",
    "combine_crc",
    "crc32_bzip2",
    "extract_single_block",
    "looks_like_bzip2",
    "stream_end",
]

BZIP2_MAGIC = b"BZh"

_BLOCK_MAGIC = 0x314159265359  # BCD of pi: starts every compressed block
_EOS_MAGIC = 0x177245385090  # BCD of sqrt(pi): end of stream
_MASK32 = 0xFFFFFFFF
_MASK48 = 0xFFFFFFFFFFFF
_HEADER_BITS = 32  # "BZh" + level digit
_EOS_BITS = 48 + 32  # marker + combined CRC

# zlib computes the bit-reflected CRC-32; bzip2 uses the same polynomial
# unreflected. Reflecting every input byte and the result converts one into
# the other, and keeps the work in C (translate + crc32) instead of Python.
_REVERSED_BYTES = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


class Bzip2FormatError(ValueError):
    """Bytes that are not the bzip2 stream they were expected to be."""


def looks_like_bzip2(head: bytes) -> bool:
    """True when ``head`` starts with a bzip2 stream header ``BZh1``..``BZh9``.

    The spec names the magic ``BZh``; requiring the level digit as well keeps
    a text file that happens to start with "BZh" from being taken for bzip2.
    """
    return len(head) >= 4 and head[:3] == BZIP2_MAGIC and 0x31 <= head[3] <= 0x39


def combine_crc(combined: int, block_crc: int) -> int:
    """The stream CRC after one more block: ``rotl(combined, 1) ^ block_crc``."""
    return (((combined << 1) | (combined >> 31)) & _MASK32) ^ block_crc


def _reverse32(value: int) -> int:
    return int(f"{value:032b}"[::-1], 2)


def crc32_bzip2(data: bytes | bytearray | memoryview) -> int:
    """CRC-32/BZIP2 (unreflected CRC-32) of ``data``: the CRC a bzip2 block stores."""
    return _reverse32(zlib.crc32(bytes(data).translate(_REVERSED_BYTES)))


@dataclass(frozen=True, slots=True)
class Bzip2Block:
    """One compressed block as a bit string: ``bits`` holds ``nbits`` bits, MSB first."""

    bits: int
    nbits: int
    crc: int


def extract_single_block(stream: bytes, expected_crc: int) -> Bzip2Block | None:
    """The block of a one-block bzip2 stream whose data has CRC ``expected_crc``.

    Returns None when ``stream`` holds more (or fewer) than one block of that
    data: bzip2 starts a new block when run-length coding expands a chunk past
    the block size, and the caller then compresses smaller chunks. One block
    is certain when the first block's CRC equals the CRC of the whole chunk
    *and* the stream CRC equals that block CRC (a second block would need two
    independent 32-bit coincidences).
    """
    total_bits = len(stream) * 8
    if len(stream) < 4 + 10 + 10 or not looks_like_bzip2(stream):
        return None
    value = int.from_bytes(stream, "big")
    if (value >> (total_bits - _HEADER_BITS - 48)) & _MASK48 != _BLOCK_MAGIC:
        return None
    block_crc = (value >> (total_bits - _HEADER_BITS - 80)) & _MASK32
    if block_crc != expected_crc:
        return None
    end = stream_end(value, total_bits)
    if end is None or end[1] != block_crc:
        return None
    eos_bit, _ = end
    nbits = eos_bit - _HEADER_BITS
    if nbits <= 48:
        return None
    return Bzip2Block((value >> (total_bits - eos_bit)) & ((1 << nbits) - 1), nbits, block_crc)


def stream_end(value: int, total_bits: int) -> tuple[int, int] | None:
    """Where the end-of-stream marker starts, and the combined CRC after it.

    ``value`` holds the last ``total_bits`` bits of a stream, MSB first; the
    position returned counts from its first bit. A stream ends with the
    marker and CRC, then 0-7 zero bits of padding; None when it does not.
    """
    for pad in range(8):
        tail = value >> pad
        if value & ((1 << pad) - 1) == 0 and (tail >> 32) & _MASK48 == _EOS_MAGIC:
            return total_bits - pad - _EOS_BITS, tail & _MASK32
    return None


class StreamJoiner:
    """Splices blocks into one bzip2 stream, emitting whole bytes as it goes.

    At most 7 bits are held back between calls, so memory stays at one block.
    """

    def __init__(self, level: int = 9) -> None:
        if not 1 <= level <= 9:
            raise ValueError(f"bzip2 level must be 1..9, not {level}")
        self._header = BZIP2_MAGIC + str(level).encode("ascii")
        self._started = False
        self._acc = 0
        self._acc_bits = 0
        self._combined_crc = 0
        self.blocks = 0

    def _emit(self, value: int, nbits: int) -> bytes:
        acc = (self._acc << nbits) | value
        total = self._acc_bits + nbits
        keep = total % 8
        out = (acc >> keep).to_bytes(total // 8, "big")
        self._acc = acc & ((1 << keep) - 1)
        self._acc_bits = keep
        return out

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return self._header

    def add(self, block: Bzip2Block) -> bytes:
        """Append ``block``; returns the bytes now complete (may be empty)."""
        return self.add_run(block.bits, block.nbits, [block.crc])

    def add_run(self, bits: int, nbits: int, crcs: list[int]) -> bytes:
        """Append consecutive blocks given as one bit string (``nbits`` bits) and
        their CRCs in order; one shift for all of them instead of one each."""
        head = self._start()
        for crc in crcs:
            self._combined_crc = combine_crc(self._combined_crc, crc)
        self.blocks += len(crcs)
        return head + self._emit(bits, nbits)

    def finish(self) -> bytes:
        """The end-of-stream marker, combined CRC and zero padding."""
        head = self._start()
        body = self._emit((_EOS_MAGIC << 32) | self._combined_crc, _EOS_BITS)
        tail = b""
        if self._acc_bits:
            tail = bytes([(self._acc << (8 - self._acc_bits)) & 0xFF])
            self._acc = self._acc_bits = 0
        return head + body + tail


#: Real P.O. 10.11 text compresses roughly 10-50:1; bzip2 itself can reach
#: millions to one. Beyond this ratio (with a floor for small files) the input
#: is treated as a decompression bomb, not a file: a peer must not be able to
#: hold a worker and a peer lock for hours, or fill the disk with a copy.
MAX_EXPANSION_RATIO = 200
MIN_DECOMPRESSION_BUDGET = 256 * 1024 * 1024


def decompression_budget(compressed_size: int) -> int:
    """How many decompressed bytes ``compressed_size`` bytes may honestly make."""
    return max(MIN_DECOMPRESSION_BUDGET, compressed_size * MAX_EXPANSION_RATIO)


class DecompressionBudget:
    """Decompressed bytes one file may make, spent by every checker of its pieces.

    The bomb defence must hold for the sum over the pieces of a stream, not
    for each piece. Not thread-safe: checkers running in parallel share a
    subclass whose :meth:`spend` takes a lock (``spool.inbound.streamcheck``).
    """

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.spent = 0

    @property
    def exceeded(self) -> bool:
        return self.limit is not None and self.spent > self.limit

    def spend(self, size: int) -> bool:
        """Count ``size`` more bytes; False once the total is over the limit."""
        self.spent += size
        return not self.exceeded

    def refusal(self) -> str:
        return (
            f"decompresses to over {self.limit} bytes, more than"
            f" {MAX_EXPANSION_RATIO}:1 (a decompression bomb, not a metering file)"
        )


class SingleStreamChecker:
    """Feeds bytes through a decompressor to tell whether they are exactly one stream.

    Used on files the operator dropped already compressed: they are published
    as they are only when a reader of the first stream gets all the data.
    Decompressed output is discarded in bounded pieces, so a bzip2 bomb costs
    CPU but not memory. ``max_output`` (or a ``budget`` shared with other
    checkers) bounds the decompressed size.
    """

    _OUTPUT_LIMIT = 1 << 20

    def __init__(
        self, max_output: int | None = None, *, budget: DecompressionBudget | None = None
    ) -> None:
        if max_output is not None and budget is not None:
            raise ValueError("give max_output or budget, not both")
        self._decompressor = bz2.BZ2Decompressor()
        self._budget = budget or DecompressionBudget(max_output)
        self.decompressed_size = 0
        self.extra_data = False  # bytes after the first stream (a 2nd stream or garbage)
        self.error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not self.extra_data

    def feed(self, data: bytes | memoryview) -> None:
        if not data or self.error is not None or self.extra_data:
            return
        dec = self._decompressor
        if dec.eof:
            self.extra_data = True
            return
        try:
            chunk = dec.decompress(data, self._OUTPUT_LIMIT)
            while self._spend(len(chunk)) and not dec.eof and not dec.needs_input:
                chunk = dec.decompress(b"", self._OUTPUT_LIMIT)
            if self.error is not None:
                return
        except (OSError, EOFError, ValueError) as exc:
            self.error = f"not a valid bzip2 stream ({exc})"
            return
        if dec.eof and dec.unused_data:
            self.extra_data = True

    def _spend(self, size: int) -> bool:
        """Count ``size`` decompressed bytes; False (and the error set) over budget."""
        self.decompressed_size += size
        if self._budget.spend(size):
            return True
        self.error = self._budget.refusal()
        return False

    def finish(self) -> None:
        """Call at end of input; sets :attr:`error` for a truncated stream."""
        if self.error is None and not self._decompressor.eof:
            self.error = "the bzip2 stream is truncated (no end-of-stream marker)"
