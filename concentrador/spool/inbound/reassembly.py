"""Rebuilding a split file from its blocks: the one code path for it.

Blocks ``NAME.k_n`` wait in ``partial/``, stored there by
:class:`~concentrador.spool.inbound.store.InboundStore` (this module uses
that one, never the reverse). When all ``n`` of a set are there (whoever
brought them: enviarFichero, the collector, an operator copying by hand,
noticed by the watcher or a sweep), and whoever asked for the rebuild (in
the daemon, :class:`~concentrador.daemon.services.SpoolServices` schedules
every one):

1. concatenate them in order into a :class:`DurableWriter` (1 MiB reads,
   the MD5 computed on the way), feeding the same bytes to a bzip2 check
   that must see exactly one complete stream and nothing after it (on every
   core, :mod:`~concentrador.spool.inbound.streamcheck`; usually begun as the
   blocks arrived, :mod:`~concentrador.spool.inbound.precheck`);
2. store the result as ``inbox/NAME`` through
   :meth:`InboundStore.store_complete`, which records it in the ledger and
   keeps a decompressed copy if configured; as ``manual/NAME`` instead when
   the ledger says any block of the set arrived outside the load window (the
   peer was answered code 6 for it), then forget those marks;
3. move the blocks to ``archive/``.

A set that is not one valid bzip2 stream goes to ``failed/`` with a
``.reason`` file per block (and its outside-window marks are forgotten, as
they are when an incomplete set expires).

Exactly once: everything runs under the peer's lock (threads and processes)
and re-reads the folder after taking it. Crash safety: if we stop after step
2, the next sweep rebuilds the same bytes, finds the identical file already
stored (in ``inbox/`` or ``manual/``, wherever it went) and only does step 3;
if we stop in the middle of step 3, the blocks already archived are found in
``archive/`` and the rest follows them.

A set whose siblings never come would wait forever (and be rescanned at
every block push): :meth:`Reassembler.expire_incomplete` escalates a set to
``failed/`` once its *newest* block is older than the publication window.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

from concentrador.protocol import (
    block_name,
    parse_block_name,
    reassembly_plan,
)
from concentrador.spool.aside import move_aside, move_with_reason
from concentrador.spool.durable import DurableWriter, file_md5
from concentrador.spool.inbound.precheck import PRECHECKS
from concentrador.spool.inbound.store import DEFAULT_MAX_DECOMPRESSED, InboundStore
from concentrador.spool.inbound.streamcheck import StreamCheck, read_pieces
from concentrador.spool.layout import PeerSpool, SpoolState, is_temp_name
from concentrador.spool.ledger import EventKind, Ledger
from concentrador.spool.locks import peer_lock

__all__ = ["Reassembler"]

log = logging.getLogger(__name__)


# original → count → index → path: blocks that disagree on n are different
# cuts of the file (say a re-send with another block size), so each
# (original, count) is its own set.
BlockSets = dict[str, dict[int, dict[int, Path]]]


def _group_blocks(paths: Iterable[Path], original: str | None = None) -> BlockSets:
    """Group block files into sets; only those of ``original`` if given."""
    groups: BlockSets = {}
    for path in paths:
        block = parse_block_name(path.name)
        if block is None or (original is not None and block.original != original):
            continue
        groups.setdefault(block.original, {}).setdefault(block.count, {})[block.index] = path
    return groups


def _missing_ranges(present: Iterable[int], count: int) -> str:
    """Indexes in 1..count not in ``present``, as ``"2, 4-7"``: one short line
    even for a hostile ``NAME.1_99999``."""
    gaps = []
    expected = 1
    for k in [*sorted(present), count + 1]:
        if k > expected:
            gaps.append(str(expected) if k - 1 == expected else f"{expected}-{k - 1}")
        expected = max(expected, k + 1)
    return ", ".join(gaps)


class Reassembler:
    """Rebuilds the complete block sets in one peer's ``partial/``."""

    def __init__(
        self,
        peer_spool: PeerSpool,
        ledger: Ledger,
        *,
        decompress: bool,
        max_decompressed: int = DEFAULT_MAX_DECOMPRESSED,
    ) -> None:
        self.spool = peer_spool
        self.ledger = ledger
        self.store = InboundStore(
            peer_spool, ledger, decompress=decompress, max_decompressed=max_decompressed
        )

    def _partial_groups(self, original: str | None = None) -> BlockSets:
        """Block sets now in ``partial/`` (of ``original`` only, if given)."""
        return _group_blocks(self.spool.files(SpoolState.PARTIAL), original)

    def _partial_sets(self, original: str) -> dict[int, dict[int, Path]]:
        """Blocks of ``original`` now in ``partial/``: count → index → path."""
        return self._partial_groups(original).get(original, {})

    def try_complete(self, original: str) -> Path | None:
        """Rebuild ``original`` if all of its blocks are here; returns the stored file.

        The result goes to ``manual/`` when any of its blocks is marked in the
        ledger as received outside the load window, else to ``inbox/``.
        Returns None when the set is incomplete, was already handled by
        someone else, or went to ``failed/``.
        """
        with peer_lock(self.spool):
            sets = self._partial_sets(original)
            for count, blocks in sorted(sets.items()):
                if len(blocks) == count:
                    return self._rebuild(original, count, blocks)
            for count, blocks in sorted(sets.items()):
                done = self._finish_interrupted(original, count, blocks)
                if done is not None:
                    return done
            return None

    def sweep(self) -> list[Path]:
        """Try every set in ``partial/``; returns the files stored by this sweep.

        A storage error on one set is logged and does not stop the others.
        """
        originals = sorted(self._partial_groups())
        stored = []
        for original in originals:
            try:
                path = self.try_complete(original)
            except OSError:
                log.exception("%s: reassembly of %s failed", self.spool.peer, original)
                continue
            if path is not None:
                stored.append(path)
        return stored

    def expire_incomplete(self, *, now: datetime, max_age: timedelta) -> list[str]:
        """Escalate to ``failed/`` every incomplete set whose newest block is too old.

        A set is "too old" when the newest modification time among its blocks
        is before ``now - max_age`` (normally ``publish_days``): the peer had a
        whole publication window to send the rest. Complete sets are left to
        :meth:`sweep` (run it first). Each block gets a ``.reason``; nothing is
        deleted. Returns the originals escalated (sorted); a second call finds
        nothing to do. ``now`` must be timezone-aware.
        """
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        if max_age < timedelta(0):
            raise ValueError(f"max_age must not be negative, got {max_age}")
        cutoff = (now - max_age).timestamp()
        expired: set[str] = set()
        # Scan without the lock (cheap, read-only), then re-check each
        # candidate under it: a block may have arrived or a sweep run meanwhile.
        for original, sets in sorted(self._partial_groups().items()):
            for count, blocks in sorted(sets.items()):
                try:
                    if not self._is_stale(count, blocks, cutoff):
                        continue
                    if self._expire_set(original, count, cutoff, now):
                        expired.add(original)
                except OSError:
                    # One unreadable or unmovable set must not stop the others.
                    log.exception(
                        "%s: could not escalate the blocks of %s", self.spool.peer, original
                    )
        return sorted(expired)

    # -- the steps -----------------------------------------------------------
    def _rebuild(self, original: str, count: int, blocks: dict[int, Path]) -> Path | None:
        # Block file names are exactly the wire names (parse/str round-trips),
        # so the plan's names are the file names, in concatenation order.
        names = reassembly_plan(path.name for path in blocks.values())
        paths = [self.spool.dir(SpoolState.PARTIAL) / name for name in names]
        late = self.ledger.marked_outside_window(self.spool.peer, names)
        compressed_size = sum(path.stat().st_size for path in paths)
        # The check runs on every core while this thread copies and hashes;
        # usually it began as the blocks arrived, and has only the rest to see.
        check, checked = self._stream_check(original, count, paths, compressed_size)
        with DurableWriter(self.spool.work_dir) as writer:
            for index, path in enumerate(paths):
                for chunk in read_pieces([path]):
                    writer.write(chunk)
                    if index >= checked:
                        check.feed(chunk)
            why = check.verdict(paths)
            if why is not None:
                writer.abort()
                self._fail_set(original, paths, why)
                return None
            stored = self.store.store_complete(writer, original, manual=bool(late), blocks=count)
        # Forgotten before the blocks move: if we stop in between, the rerun
        # finds the identical file already stored, wherever it went.
        self.ledger.clear_outside_window(self.spool.peer, names)
        self._archive_blocks(paths)
        where = f"{stored.parent.name}/"
        if late:
            where += f" ({len(late)} block(s) arrived outside the load window)"
        log.info("%s: rebuilt %s from %d blocks into %s", self.spool.peer, original, count, where)
        return stored

    def _stream_check(
        self, original: str, count: int, paths: list[Path], size: int
    ) -> tuple[StreamCheck, int]:
        """The check of the set and how many of ``paths`` it has read: the one
        begun as the blocks arrived if it read these very files, else a new one."""
        precheck = PRECHECKS.take(self.spool.dir(SpoolState.PARTIAL), original, count)
        if precheck is not None:
            checked = precheck.resume_at(paths)
            if checked is not None:
                log.debug("%s: %s: %d of %d blocks checked on arrival",
                          self.spool.peer, original, checked, count)  # fmt: skip
                return precheck.check, checked
            precheck.check.abandon()
        return StreamCheck(size), 0

    def _archive_blocks(self, paths: list[Path]) -> None:
        archive = self.spool.dir(SpoolState.ARCHIVE)
        for path in paths:
            move_aside(path, archive)

    def _fail_set(self, original: str, paths: list[Path], why: str) -> None:
        log.error("%s: blocks of %s do not rebuild: %s", self.spool.peer, original, why)
        reason = f"reassembly of {original} from {len(paths)} blocks failed: {why}"
        for path in paths:
            move_with_reason(path, self.spool.dir(SpoolState.FAILED), self.spool.work_dir, reason)
        # After the moves: a stop in between leaves a mark too many (a later
        # copy of the set goes to manual/, for a person), never one too few.
        self.ledger.clear_outside_window(self.spool.peer, [path.name for path in paths])
        self.ledger.note_event(self.spool.peer, original, EventKind.REBUILD_FAILED, reason)

    def _finish_interrupted(
        self, original: str, count: int, blocks: dict[int, Path]
    ) -> Path | None:
        """Finish a set whose blocks were partly archived when we last stopped.

        Only when the blocks missing from ``partial/`` are in ``archive/`` under
        their own names *and* the whole concatenation equals a stored file: a
        genuinely new copy of the set keeps waiting for its other blocks.
        """
        archive = self.spool.dir(SpoolState.ARCHIVE)
        ordered: list[Path] = []
        for k in range(1, count + 1):
            path = blocks.get(k) or archive / block_name(original, k, count)
            if not path.is_file() or is_temp_name(path.name):
                return None
            ordered.append(path)
        stored = [
            self.spool.dir(state) / original for state in (SpoolState.INBOX, SpoolState.MANUAL)
        ]
        stored = [p for p in stored if p.is_file()]
        if not stored:
            return None
        digest = hashlib.md5(usedforsecurity=False)
        size = 0
        for chunk in read_pieces(ordered):
            digest.update(chunk)
            size += len(chunk)
        for path in stored:
            md5, stored_size = file_md5(path)
            if md5 == digest.hexdigest() and stored_size == size:
                if self.ledger.received(self.spool.peer, original) is None:
                    self.ledger.record_received(self.spool.peer, original, md5, size, path)
                self.ledger.clear_outside_window(self.spool.peer, [p.name for p in ordered])
                self._archive_blocks(list(blocks.values()))
                log.info("%s: finished interrupted reassembly of %s", self.spool.peer, original)
                return path
        return None

    # -- expiry of incomplete sets ---------------------------------------------
    @staticmethod
    def _newest_mtime(blocks: dict[int, Path]) -> float | None:
        """The newest block's mtime; None if a block vanished (someone else moved it)."""
        try:
            return max(path.stat(follow_symlinks=False).st_mtime for path in blocks.values())
        except FileNotFoundError:
            return None

    def _is_stale(self, count: int, blocks: dict[int, Path], cutoff: float) -> bool:
        if len(blocks) >= count:
            return False  # complete: the sweep's business, never expired here
        newest = self._newest_mtime(blocks)
        return newest is not None and newest < cutoff

    def _expire_set(self, original: str, count: int, cutoff: float, now: datetime) -> bool:
        with peer_lock(self.spool):
            blocks = self._partial_sets(original).get(count, {})
            if not blocks or not self._is_stale(count, blocks, cutoff):
                return False
            newest = self._newest_mtime(blocks)
            assert newest is not None  # _is_stale just saw every block
            idle_days = int((now.timestamp() - newest) // 86400)
            missing = _missing_ranges(blocks, count)
            why = (
                f"incomplete block set: {len(blocks)} of {count} blocks "
                f"(missing {missing}) arrived, none for {idle_days} days"
            )
            log.error("%s: blocks of %s expired: %s", self.spool.peer, original, why)
            failed = self.spool.dir(SpoolState.FAILED)
            for _, path in sorted(blocks.items()):
                move_with_reason(path, failed, self.spool.work_dir, why, now=now)
            names = [path.name for path in blocks.values()]
            self.ledger.clear_outside_window(self.spool.peer, names)
            self.ledger.note_event(self.spool.peer, original, EventKind.REBUILD_FAILED, why)
            return True
