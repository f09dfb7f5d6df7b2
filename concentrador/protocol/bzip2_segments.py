"""Cutting one bzip2 stream at its block boundaries, so its pieces check in parallel.

A bzip2 stream is ``"BZh" level``, then blocks, each starting with the 48-bit
magic ``0x314159265359`` at any bit offset, then the end-of-stream marker and
the combined CRC. No state crosses a block boundary except that CRC, so a run
of whole blocks, shifted to a byte boundary behind the stream's header and
closed by an end-of-stream marker with *its* combined CRC, is a valid stream
on its own (the same splice :class:`~concentrador.protocol.bzip2.StreamJoiner`
does for the publisher). Checking every run, then the file's own combined CRC
against the block CRCs, checks the whole stream.

Why that is sound: a decompressor needs the next 48 bits after a block's last
symbol to be a block magic or the end marker. A run decodes cleanly only if
each of its blocks really ends where the next run (or the end marker) starts,
so the runs tile the stream exactly as a sequential reader reads it. A magic
that merely appears inside compressed data (2^-48 per bit) cuts a block in
two and makes a run fail: the caller then checks the file sequentially, which
also gives every refusal its usual wording. So does anything unusual here: a
second stream, data after the end, no blocks at all.

Pure computation on bytes (no I/O, no threads).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from concentrador.protocol.bzip2 import (
    _BLOCK_MAGIC,  # the format's constants, shared with the joiner
    _HEADER_BITS,
    _MASK48,
    DecompressionBudget,
    SingleStreamChecker,
    StreamJoiner,
    combine_crc,
    looks_like_bzip2,
    stream_end,
)

__all__ = ["BlockRun", "StreamSegmenter", "check_run"]

_MIN_BLOCK_BITS = 48 + 32 + 1 + 24  # magic, CRC, randomised bit, origPtr


def _shifted_magics() -> list[tuple[int, bytes]]:
    """For each bit shift ``s``: the 5 bytes lying wholly inside a magic that
    starts ``s`` bits into a byte (bytes 1..5 of its 7-byte window)."""
    return [(s, (_BLOCK_MAGIC << (8 - s)).to_bytes(7, "big")[1:6]) for s in range(8)]


_NEEDLES = _shifted_magics()


@dataclass(slots=True)
class BlockRun:
    """Consecutive whole blocks of a stream of ``level``, cut out of it with the
    bytes around them: block ``i`` spans bits ``bounds[i]`` to ``bounds[i + 1]``
    of ``data`` and stores the CRC ``crcs[i]``."""

    level: int
    data: bytes
    bounds: list[int]
    crcs: list[int] = field(default_factory=list)

    def to_stream(self) -> bytes:
        """This run as a standalone bzip2 stream."""
        joiner = StreamJoiner(self.level)
        start, end = self.bounds[0], self.bounds[-1]
        bits = (int.from_bytes(self.data, "big") >> (len(self.data) * 8 - end)) & (
            (1 << (end - start)) - 1
        )
        return joiner.add_run(bits, end - start, self.crcs) + joiner.finish()


def check_run(run: BlockRun, budget: DecompressionBudget) -> str | None:
    """Decompress ``run`` (output discarded, counted in ``budget``); None when clean."""
    if budget.exceeded:
        return budget.refusal()
    checker = SingleStreamChecker(budget=budget)
    checker.feed(run.to_stream())
    checker.finish()
    if checker.ok:
        return None
    return checker.error or "a block run ends before its last block"


class StreamSegmenter:
    """Fed a bzip2 stream in order, hands out runs of whole blocks to check.

    :meth:`feed` and :meth:`finish` return the runs now complete (each about
    ``run_bytes`` compressed bytes). Once :attr:`failed` is set (a reason,
    for the log) the stream cannot be cut here and must be checked
    sequentially; nothing more is returned. After :meth:`finish` without a
    failure, the stream's combined CRC matched its blocks' CRCs.
    """

    def __init__(self, run_bytes: int = 1 << 20) -> None:
        self.run_bits = run_bytes * 8
        self.failed: str | None = None
        self.blocks = 0
        self._level = 0
        self._buffer = bytearray()
        self._buffer_byte = 0  # stream byte offset of _buffer[0]
        self._scanned = 0  # index in _buffer from which needles were not looked for
        self._starts: list[int] = []  # stream bit offsets of blocks not yet handed out
        self._combined_crc = 0

    def feed(self, data: bytes | memoryview) -> list[BlockRun]:
        if self.failed is not None or not data:
            return []
        self._buffer += data
        if not self._level:
            if len(self._buffer) < 4:
                return []
            if not looks_like_bzip2(bytes(self._buffer[:4])):
                return self._fail("no bzip2 header")
            self._level = self._buffer[3] - 0x30
        self._scan()
        if not self.blocks and self._starts and self._starts[0] != _HEADER_BITS:
            return self._fail("the first block does not follow the header")
        runs = []
        while len(self._starts) > 1 and self._starts[-1] - self._starts[0] >= self.run_bits:
            # Cut at the last start at most run_bits past the first (at least one block).
            cut = next(
                (i for i in range(len(self._starts) - 1, 0, -1)
                 if self._starts[i] - self._starts[0] <= self.run_bits),
                1,
            )  # fmt: skip
            run = self._take(cut, self._starts[cut])
            if run is None:
                return []
            runs.append(run)
        return runs

    def finish(self) -> list[BlockRun]:
        """The last run, up to the end-of-stream marker, which must end the data."""
        if self.failed is not None:
            return []
        if not self._starts:
            return self._fail("no block found")
        tail = bytes(self._buffer)
        end = stream_end(int.from_bytes(tail, "big"), len(tail) * 8)
        if end is None:
            return self._fail("no end-of-stream marker at the end of the data")
        run = self._take(len(self._starts), self._buffer_byte * 8 + end[0])
        if run is None:
            return []
        if end[1] != self._combined_crc:
            return self._fail("the stream CRC does not match its blocks' CRCs")
        return [run]

    # -- internals -----------------------------------------------------------------------
    def _fail(self, why: str) -> list[BlockRun]:
        self.failed = why
        self._buffer.clear()
        self._starts.clear()
        return []

    def _scan(self) -> None:
        """Find the block magics whose 7-byte window now lies wholly in the buffer."""
        buffer = self._buffer
        end = len(buffer) - 1  # needle at j (bytes j..j+4) is verified on bytes j-1..j+5
        begin = max(1, self._scanned)
        found = []
        for shift, needle in _NEEDLES:
            j = buffer.find(needle, begin, end)
            while j >= 0:
                window = int.from_bytes(buffer[j - 1 : j + 6], "big")
                if (window >> (8 - shift)) & _MASK48 == _BLOCK_MAGIC:
                    found.append((self._buffer_byte + j - 1) * 8 + shift)
                j = buffer.find(needle, j + 1, end)
        self._scanned = max(begin, end - 4)
        if found:
            self._starts.extend(sorted(found))

    def _take(self, count: int, end_bit: int) -> BlockRun | None:
        """Hand out the first ``count`` pending blocks, the last ending at ``end_bit``."""
        first_byte = self._starts[0] // 8 - self._buffer_byte
        base = (self._buffer_byte + first_byte) * 8
        bounds = [start - base for start in self._starts[:count]] + [end_bit - base]
        if any(b - a < _MIN_BLOCK_BITS for a, b in itertools.pairwise(bounds)):
            self._fail("two block boundaries too close together")
            return None
        data = bytes(self._buffer[first_byte : -(-end_bit // 8) - self._buffer_byte])
        crcs = [_bits(data, start + 48, 32) for start in bounds[:-1]]
        for crc in crcs:
            self._combined_crc = combine_crc(self._combined_crc, crc)
        self.blocks += count
        # Keep the buffer from the byte where the next block starts.
        del self._starts[:count]
        drop = end_bit // 8 - self._buffer_byte
        del self._buffer[:drop]
        self._buffer_byte += drop
        self._scanned = max(0, self._scanned - drop)
        return BlockRun(self._level, data, bounds, crcs)


def _bits(data: bytes, at: int, width: int) -> int:
    """``width`` bits of ``data`` from bit ``at``, MSB first."""
    first, last = at // 8, -(-(at + width) // 8)
    chunk = int.from_bytes(data[first:last], "big")
    return (chunk >> (last * 8 - at - width)) & ((1 << width) - 1)
