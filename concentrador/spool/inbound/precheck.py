"""Checking a block set's bzip2 stream while its blocks are still arriving.

The blocks of a large file arrive one after the other (the collector fetches
them in order; a peer pushing them usually sends them in order too). Checking
the stream only once the set is complete would leave the cores idle during
the whole transfer, so :class:`Prechecks` starts a
:class:`~concentrador.spool.inbound.streamcheck.StreamCheck` when block 1 of
a large set is stored, and a feeder thread reads each next block as soon as
it is stored. When the set is rebuilt, the reassembler :meth:`~Prechecks.take`\\ s
the check and feeds it only what it has not seen yet.

Only files that are provably the ones the check read are skipped: each
block is remembered by its device, inode, size and mtime (blocks are stored
by rename, never rewritten in place), and a rebuild whose files differ (a
re-sent or hand-copied block) starts a fresh check. At most
:data:`MAX_SETS` sets are followed at once; the oldest is dropped beyond.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path

from concentrador.protocol import BlockName, block_name
from concentrador.spool.durable import READ_SIZE
from concentrador.spool.inbound import streamcheck
from concentrador.spool.inbound.streamcheck import StreamCheck

__all__ = ["MAX_SETS", "PRECHECKS", "Precheck", "Prechecks"]

log = logging.getLogger(__name__)

MAX_SETS = 2
"""Sets followed at once (each holds a few MB and a feeder thread)."""

Identity = tuple[int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns


def _identity(stat: os.stat_result) -> Identity:
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


class Precheck:
    """The check of one set, fed block by block by its own thread."""

    def __init__(self, partial: Path, block: BlockName, first_size: int) -> None:
        self.partial = partial
        self.original = block.original
        self.count = block.count
        # Blocks of a set are cut to one size, the last shorter: an upper bound.
        self.check = StreamCheck(first_size * block.count)
        self.fed: list[Identity] = []  # blocks 1..len(fed), as they were read
        self._torn = False  # a block was read in part: the check is of no use
        self._arrived: set[int] = set()
        self._closing = False
        self._abandoned = False
        self._wakeup = threading.Condition()
        self._thread = threading.Thread(
            target=self._feed_arrivals, name=f"precheck {self.original}", daemon=True
        )
        self._thread.start()

    def arrived(self, index: int) -> None:
        with self._wakeup:
            self._arrived.add(index)
            self._wakeup.notify()

    def close(self, *, drain: bool = True) -> None:
        """Stop the thread, once it has fed the blocks that arrived in order
        (``drain``) or right after the block it is reading (the check is dropped)."""
        with self._wakeup:
            self._closing = True
            self._abandoned = not drain
            self._wakeup.notify()
        self._thread.join()
        if not drain:
            self.check.abandon()

    def resume_at(self, paths: list[Path]) -> int | None:
        """How many leading ``paths`` the check has read, if they are still those
        files; None when any differs (the check is then of no use)."""
        if self._torn:
            return None
        for path, identity in zip(paths, self.fed, strict=False):
            try:
                if _identity(path.stat()) != identity:
                    return None
            except FileNotFoundError:
                return None
        return len(self.fed)

    def _ready(self, index: int, path: Path) -> bool:
        return index in self._arrived or path.is_file()

    def _feed_arrivals(self) -> None:
        index = 1
        while index <= self.count:
            path = self.partial / block_name(self.original, index, self.count)
            with self._wakeup:
                # A block stored before block 1 (out of order) is there already.
                while not self._abandoned and not self._ready(index, path):
                    if self._closing:
                        return
                    self._wakeup.wait()
                if self._abandoned:
                    return
            try:
                with open(path, "rb") as handle:
                    identity = _identity(os.fstat(handle.fileno()))
                    while piece := handle.read(READ_SIZE):
                        self.check.feed(piece)
            except OSError:  # moved meanwhile, or unreadable: the rebuild checks it itself
                self._torn = True
                return
            self.fed.append(identity)
            index += 1


class Prechecks:
    """The sets of this process being checked as their blocks arrive."""

    def __init__(self, max_sets: int = MAX_SETS) -> None:
        self._max_sets = max_sets
        self._lock = threading.Lock()
        self._sets: OrderedDict[tuple[Path, str, int], Precheck] = OrderedDict()

    def block_stored(self, partial: Path, block: BlockName, path: Path) -> None:
        """A block is now in ``partial/`` (as ``path``): feed it to its set's check."""
        key = (partial, block.original, block.count)
        dropped: list[Precheck] = []
        with self._lock:
            precheck = self._sets.get(key)
            if block.index == 1:
                if precheck is not None:  # block 1 again: what was read may be stale
                    dropped.append(self._sets.pop(key))
                size = path.stat().st_size
                if block.count < 2 or size * block.count < 4 * streamcheck.RUN_BYTES:
                    precheck = None  # small: checked in a moment at the rebuild
                else:
                    precheck = self._sets[key] = Precheck(partial, block, size)
                    while len(self._sets) > self._max_sets:
                        dropped.append(self._sets.popitem(last=False)[1])
            if precheck is not None:
                precheck.arrived(block.index)
        for stale in dropped:
            stale.close(drain=False)

    def take(self, partial: Path, original: str, count: int) -> Precheck | None:
        """The check of that set, no longer followed here (its thread stopped)."""
        with self._lock:
            precheck = self._sets.pop((partial, original, count), None)
        if precheck is not None:
            precheck.close()
        return precheck


PRECHECKS = Prechecks()
"""The process's registry: the inbound store feeds it, the reassembler takes from it."""
