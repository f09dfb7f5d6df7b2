"""Blocks: cutting a compressed file into ``NAME.k_n`` pieces and back.

CPCSCC.md §6: a compressed file larger than the per-call limit travels as
blocks ``NAME.1_n`` … ``NAME.n_n``; every block but the last has the same
size. Blocks are ordinary files for listing, fetching and pushing; only the
collector/receiver knows to put them back together.

Naming rules this module enforces (the spec only shows examples, so these are
the project's decisions, written down in docs/protocol.md):

* ``k`` and ``n`` are plain decimal numbers with no leading zeros, ``1 <= k <=
  n`` and ``n >= 2``. A single-block file is never split, so ``X.1_1`` is an
  ordinary file called ``X.1_1``. ``X.01_3`` or ``X.0_3`` are ordinary files
  too. This keeps ``parse → str`` an exact round trip, so no two wire names
  denote the same block.
* ``n`` is at most :data:`MAX_BLOCK_COUNT` (99,999 blocks, ~800 GB at the
  default size): a hostile listing cannot make us parse or allocate for
  absurd counts. A longer number makes the name an ordinary file name.
* The original is everything before the *last* ``.k_n`` suffix, so
  ``P1_20031120.1.1_3`` is block 1 of 3 of ``P1_20031120.1``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from concentrador.protocol.errors import ProtocolError

MIN_BLOCK_SIZE = 1_048_576
"""Smallest configurable block size (1 MiB: the spec's "1 MB", larger reading)."""

MAX_BLOCK_SIZE = 8_000_000
"""Largest configurable block size (8 MB, smaller reading, so both readings hold)."""

DEFAULT_BLOCK_SIZE = 8_000_000

MAX_RECEIVE_SIZE = 8_388_608
"""A receiver accepts a file or block up to 8 MiB and answers code 5 above."""

MAX_BLOCK_COUNT = 99_999
"""Upper bound on ``n``; names claiming more are not treated as blocks."""

# Up to 5 digits, no leading zero. Greedy ``.+`` makes the suffix the last one.
# DOTALL: a hostile name with a newline must still be judged by its suffix.
_BLOCK_RE = re.compile(
    r"(?P<original>.+)\.(?P<index>[1-9][0-9]{0,4})_(?P<count>[1-9][0-9]{0,4})", re.DOTALL
)


class BlockError(ProtocolError):
    """A block name, split request or block set is not valid."""


class BlockSizeError(BlockError):
    """A configured block size is outside [MIN_BLOCK_SIZE, MAX_BLOCK_SIZE]."""


class ReassemblyError(BlockError):
    """A set of blocks cannot be put back together into one file."""


class NotABlockError(ReassemblyError):
    """A name handed to reassembly is not a ``NAME.k_n`` block name."""


class MixedOriginalsError(ReassemblyError):
    """Blocks of more than one original file were handed over together."""


class InconsistentBlockCountError(ReassemblyError):
    """Blocks of one original disagree on the total count ``n``."""


class DuplicateBlockError(ReassemblyError):
    """The same block index appears more than once."""


class MissingBlocksError(ReassemblyError):
    """Some block indexes of the file are absent."""


@dataclass(frozen=True, slots=True)
class BlockName:
    """Block ``index`` of ``count`` of the file ``original``; ``str()`` is the wire name."""

    original: str
    index: int
    count: int

    def __post_init__(self) -> None:
        if not self.original:
            raise BlockError("a block needs a non-empty original file name")
        if not 2 <= self.count <= MAX_BLOCK_COUNT:
            raise BlockError(f"block count {self.count} is outside 2..{MAX_BLOCK_COUNT}")
        if not 1 <= self.index <= self.count:
            raise BlockError(f"block index {self.index} is outside 1..{self.count}")

    def __str__(self) -> str:
        return f"{self.original}.{self.index}_{self.count}"


def block_name(original: str, index: int, count: int) -> str:
    """The wire name of block ``index`` of ``count`` of ``original`` (``NAME.k_n``)."""
    return str(BlockName(original, index, count))


def parse_block_name(name: str) -> BlockName | None:
    """The block that ``name`` denotes, or None when it is an ordinary file name."""
    match = _BLOCK_RE.fullmatch(name)
    if match is None:
        return None
    index, count = int(match["index"]), int(match["count"])
    if count < 2 or index > count:
        return None
    return BlockName(match["original"], index, count)


@dataclass(frozen=True, slots=True)
class BlockSpan:
    """One call's worth of a file: bytes ``[offset, offset + length)`` sent as ``name``."""

    name: str
    index: int
    count: int
    offset: int
    length: int

    @property
    def end(self) -> int:
        return self.offset + self.length


def check_block_size(block_size: int) -> int:
    """Return ``block_size`` if it is a valid configured block size, else raise."""
    if isinstance(block_size, bool) or not isinstance(block_size, int):
        raise BlockSizeError(f"block size must be an integer, not {type(block_size).__name__}")
    if not MIN_BLOCK_SIZE <= block_size <= MAX_BLOCK_SIZE:
        raise BlockSizeError(
            f"block size {block_size} is outside {MIN_BLOCK_SIZE}..{MAX_BLOCK_SIZE} bytes"
        )
    return block_size


def block_count(size: int, block_size: int = DEFAULT_BLOCK_SIZE) -> int:
    """How many calls a compressed file of ``size`` bytes takes (1 means not split)."""
    check_block_size(block_size)
    if size < 0:
        raise BlockError(f"file size cannot be negative ({size})")
    count = max(1, -(-size // block_size))
    if count > MAX_BLOCK_COUNT:
        raise BlockError(
            f"a {size}-byte file needs {count} blocks of {block_size} bytes,"
            f" more than the {MAX_BLOCK_COUNT} a block name can carry"
        )
    return count


def split_plan(name: str, size: int, block_size: int = DEFAULT_BLOCK_SIZE) -> list[BlockSpan]:
    """The spans to send ``name`` (``size`` compressed bytes) in, in order.

    A file of at most ``block_size`` bytes is not split: one span under its own
    name. Otherwise every span is exactly ``block_size`` bytes but the last,
    which holds the 1..block_size remaining bytes.
    """
    if not name:
        raise BlockError("cannot plan blocks for an empty file name")
    count = block_count(size, block_size)
    if count == 1:
        return [BlockSpan(name, 1, 1, 0, size)]
    return [
        BlockSpan(
            block_name(name, k, count),
            k,
            count,
            (k - 1) * block_size,
            min(block_size, size - (k - 1) * block_size),
        )
        for k in range(1, count + 1)
    ]


@dataclass(frozen=True, slots=True)
class IncompleteFile:
    """A split file of which only some blocks are listed."""

    original: str
    count: int
    present: tuple[int, ...]
    missing: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class BlockListing:
    """A peer's file listing sorted into whole files and split files.

    * ``whole``: names that are not blocks, sorted, without duplicates.
    * ``complete``: original → its block names in order 1..n, all present.
    * ``incomplete``: original → which indexes are present and missing.
    * ``inconsistent``: original → its block names (sorted) when they disagree
      on ``n``; such a file can never be rebuilt and needs an operator.

    Every field is independent of the order of the input names.
    """

    whole: tuple[str, ...] = ()
    complete: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    incomplete: Mapping[str, IncompleteFile] = field(default_factory=dict)
    inconsistent: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def group_listing(names: Iterable[str]) -> BlockListing:
    """Sort a listing's names into whole, complete, incomplete and inconsistent files.

    Repeated names (a server may list one file under two types) count once.
    """
    whole: set[str] = set()
    by_original: dict[str, set[BlockName]] = {}
    for name in names:
        block = parse_block_name(name)
        if block is None:
            whole.add(name)
        else:
            by_original.setdefault(block.original, set()).add(block)

    complete: dict[str, tuple[str, ...]] = {}
    incomplete: dict[str, IncompleteFile] = {}
    inconsistent: dict[str, tuple[str, ...]] = {}
    for original in sorted(by_original):
        blocks = by_original[original]
        counts = {b.count for b in blocks}
        if len(counts) > 1:
            inconsistent[original] = tuple(sorted(str(b) for b in blocks))
            continue
        (count,) = counts
        present = sorted(b.index for b in blocks)
        if len(present) == count:
            complete[original] = tuple(block_name(original, k, count) for k in present)
        else:
            missing = sorted(set(range(1, count + 1)) - set(present))
            incomplete[original] = IncompleteFile(original, count, tuple(present), tuple(missing))

    return BlockListing(
        whole=tuple(sorted(whole)),
        complete=MappingProxyType(complete),
        incomplete=MappingProxyType(incomplete),
        inconsistent=MappingProxyType(inconsistent),
    )


def reassembly_plan(names: Iterable[str]) -> list[str]:
    """The block names of one split file in the order to concatenate them.

    Raises a :class:`ReassemblyError` subclass naming the problem when the set
    is empty, holds a non-block name, mixes originals, disagrees on ``n``,
    repeats an index or misses one.
    """
    blocks: list[BlockName] = []
    for name in names:
        block = parse_block_name(name)
        if block is None:
            raise NotABlockError(f"{name!r} is not a block name (NAME.k_n)")
        blocks.append(block)
    if not blocks:
        raise MissingBlocksError("no blocks to reassemble")

    originals = sorted({b.original for b in blocks})
    if len(originals) > 1:
        raise MixedOriginalsError(f"blocks of different files mixed: {', '.join(originals)}")
    original = originals[0]
    counts = sorted({b.count for b in blocks})
    if len(counts) > 1:
        raise InconsistentBlockCountError(
            f"blocks of {original!r} disagree on the block count: {counts}"
        )
    count = counts[0]

    seen: set[int] = set()
    for block in blocks:
        if block.index in seen:
            raise DuplicateBlockError(f"block {block.index} of {original!r} appears twice")
        seen.add(block.index)
    missing = sorted(set(range(1, count + 1)) - seen)
    if missing:
        raise MissingBlocksError(
            f"{original!r} is missing block(s) {_index_summary(missing)} of {count}"
        )
    return [block_name(original, k, count) for k in range(1, count + 1)]


def _index_summary(indexes: list[int], limit: int = 10) -> str:
    """A short list of indexes for a one-line message (a hostile n can be 99,999)."""
    shown = ", ".join(str(k) for k in indexes[:limit])
    return shown if len(indexes) <= limit else f"{shown}, ... ({len(indexes)} in all)"


class BlockSplitter:
    """Tells which block each slice of a compressed stream belongs to.

    The publisher compresses and splits in one pass, so the total size (and
    therefore ``n``) is only known at the end. Feed the compressed output with
    :meth:`split_pieces`; each returned ``(index, slice)`` belongs to block
    ``index`` (1-based), and an index greater than the previous one means the
    previous block is complete (finalise its MD5). After :meth:`finish`,
    :attr:`count` is ``n``; ``count == 1`` means the file is sent unsplit under
    its original name.

    Slices are ``memoryview``\\ s of the piece passed in, so nothing is copied;
    consume them before reusing that buffer.
    """

    def __init__(self, block_size: int = DEFAULT_BLOCK_SIZE) -> None:
        self.block_size = check_block_size(block_size)
        self.total = 0
        self._finished = False

    def split_pieces(self, piece: bytes | bytearray | memoryview) -> list[tuple[int, memoryview]]:
        """Cut ``piece`` at block boundaries; empty pieces give an empty list."""
        if self._finished:
            raise BlockError("BlockSplitter.split_pieces() called after finish()")
        view = memoryview(piece).cast("B")
        out: list[tuple[int, memoryview]] = []
        pos = 0
        while pos < len(view):
            index, used = divmod(self.total, self.block_size)
            if index >= MAX_BLOCK_COUNT:
                raise BlockError(f"stream exceeds {MAX_BLOCK_COUNT} blocks of {self.block_size}")
            take = min(self.block_size - used, len(view) - pos)
            out.append((index + 1, view[pos : pos + take]))
            pos += take
            self.total += take
        return out

    def finish(self) -> int:
        """Close the stream and return the block count ``n`` (1: not split)."""
        self._finished = True
        return self.count

    @property
    def count(self) -> int:
        """Blocks so far (final once :meth:`finish` was called); at least 1."""
        return block_count(self.total, self.block_size)

    def plan(self, name: str) -> list[BlockSpan]:
        """The spans of the finished stream under ``name``, as :func:`split_plan` gives."""
        if not self._finished:
            raise BlockError("BlockSplitter.plan() needs finish() first")
        return split_plan(name, self.total, self.block_size)
