"""Where a file received from a peer goes, and what happens when it lands.

Used by the enviarFichero handler and by the collection cycle, so both
follow one policy:

* a block name (``NAME.k_n``) is stored in ``partial/``; this module only
  stores it. The caller then asks for a rebuild of ``writer.block.original``
  (the set may now be complete), which
  :mod:`concentrador.spool.inbound.reassembly` does: that module uses this
  one, never the reverse;
* a block that arrived outside the load window (code 6) is first noted in
  the ledger (:meth:`Ledger.note_outside_window`), then committed: its set
  is rebuilt into ``manual/``, even after a restart in between;
* a whole file is stored in ``inbox/``, or in ``manual/`` when it arrived
  outside the load window (code 6);
* every stored file is committed durably before the caller answers the peer;
* receiving an identical file again (same MD5) is a no-op success, so a peer
  that retries after a lost answer is fine;
* a *different* file under an existing name does not overwrite it: the old
  one is moved to ``archive/`` as ``NAME.<UTC timestamp>``, then the new one
  is stored (nothing a peer sent is ever deleted);
* complete files are recorded in the ledger (for confirmation) and, if
  configured, also kept decompressed beside the compressed one, named
  without ``.bz2`` (or ``NAME.txt`` when the name has no ``.bz2``).
"""

from __future__ import annotations

import bz2
import contextlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from concentrador.protocol import (
    MAX_NAME_BYTES,
    BlockName,
    decompression_budget,
    parse_block_name,
    validate_peer_filename,
)
from concentrador.spool.aside import move_aside
from concentrador.spool.durable import (
    READ_SIZE,
    DurableWriter,
    StorageError,
    file_md5,
    sync_folders,
)
from concentrador.spool.inbound.precheck import PRECHECKS
from concentrador.spool.layout import PeerSpool, SpoolState
from concentrador.spool.ledger import EventKind, Ledger
from concentrador.spool.ledger.received import StoredFile
from concentrador.spool.locks import peer_lock

__all__ = [
    "DEFAULT_MAX_DECOMPRESSED",
    "InboundStore",
    "InboundWriter",
    "decompressed_name",
]

log = logging.getLogger(__name__)

# How _place found or put a complete file.
_NEW, _RACED, _IDENTICAL = "new", "raced", "identical"

DEFAULT_MAX_DECOMPRESSED = 4 << 30
"""Cap on a decompressed copy (4 GiB): a bzip2 bomb must not fill the disk."""


def decompressed_name(name: str) -> str:
    """Name of the decompressed copy of the received file ``name``."""
    if name.lower().endswith(".bz2") and len(name) > 4:
        return name[:-4]
    return f"{name}.txt"


class InboundWriter(DurableWriter):
    """A :class:`DurableWriter` that remembers what it is receiving."""

    def __init__(self, work_dir: Path, *, name: str, manual: bool, block: BlockName | None):
        super().__init__(work_dir)
        self.name = name
        self.manual = manual
        self.block = block


class InboundStore:
    """The receiving side of one peer's spool."""

    def __init__(
        self,
        peer_spool: PeerSpool,
        ledger: Ledger,
        *,
        decompress: bool,
        max_decompressed: int = DEFAULT_MAX_DECOMPRESSED,
        remote: str | None = None,
    ) -> None:
        self.spool = peer_spool
        self.ledger = ledger
        self.decompress = decompress
        self.max_decompressed = max_decompressed
        # The sender's address (an enviarFichero's remote), for the blocks' trail.
        self.remote = remote
        # The process-wide lock of this folder, looked up once (a dict and an
        # abspath per file otherwise).
        self._lock = peer_lock(peer_spool)

    # -- receiving -----------------------------------------------------------
    def open(self, name: str, *, manual: bool) -> InboundWriter:
        """Start receiving ``name``; raises ``InvalidFileName`` for unsafe names."""
        validate_peer_filename(name)
        return InboundWriter(
            self.spool.work_dir, name=name, manual=manual, block=parse_block_name(name)
        )

    def commit(self, writer: InboundWriter, name: str, *, cursor: int | None = None) -> Path:
        """Store what ``writer`` received, durably; returns where it was stored.

        A block only lands in ``partial/``: when ``writer.block`` is set, its
        set (``writer.block.original``) may now be complete, and rebuilding it
        is the caller's next request (to whoever schedules rebuilds).
        ``cursor`` (a whole file from a 504 peer): see :meth:`store_complete`.
        """
        if writer.name != name:
            raise ValueError(f"writer was opened for {writer.name!r}, not {name!r}")
        if writer.block is None:
            return self.store_complete(writer, name, manual=writer.manual, cursor=cursor)
        if cursor is not None:
            raise ValueError("a 504 message code cursor only goes with a whole file")
        return self._store_block(writer, name)

    def _store_block(self, writer: InboundWriter, name: str) -> Path:
        target = self.spool.dir(SpoolState.PARTIAL) / name
        with self._lock:
            if writer.manual:
                # Before the commit: a crash between the two must not leave the
                # block in partial/ with the code-6 answer forgotten.
                self.ledger.note_outside_window(self.spool.peer, name)
            if target.exists():
                if file_md5(target)[0] == writer.md5:
                    writer.abort()
                    return target
                move_aside(target, self.spool.dir(SpoolState.ARCHIVE), stamp=True)
            try:
                stored = writer.commit(target)
            except FileExistsError:
                # Another replica stored the same block meanwhile (our lock is
                # per host): the same bytes are a duplicate, not an error.
                if file_md5(target)[0] != writer.md5:
                    raise
                writer.abort()
                return target
        assert writer.block is not None  # a block writer (see commit)
        late = ", outside the load window" if writer.manual else ""
        sender = f" from {self.remote}" if self.remote else ""
        detail = (
            f"block {writer.block.index}/{writer.block.count} ({writer.size} bytes{late}){sender}"
        )
        # Not durable: the block file is the record; the event only tells the story.
        self.ledger.note_event(
            self.spool.peer, writer.block.original, EventKind.BLOCK_RECEIVED, detail, durable=False
        )
        try:  # start checking the set's bzip2 stream while the other blocks arrive
            PRECHECKS.block_stored(stored.parent, writer.block, stored)
        except OSError:
            log.warning("%s: cannot check %s on arrival", self.spool.peer, name, exc_info=True)
        return stored

    # -- complete files (also used by the reassembler) -------------------------
    def store_complete(
        self,
        writer: DurableWriter,
        name: str,
        *,
        manual: bool,
        blocks: int | None = None,
        cursor: int | None = None,
    ) -> Path:
        """Commit a complete compressed file into ``inbox/`` (or ``manual/``).

        ``blocks``: it was rebuilt from that many blocks (for its audit trail).
        ``cursor``: the 504 message code it was fetched as; the peer's cursor
        advances in the transaction that records the file (exactly once).

        Idempotent: when an identical file is already in ``inbox/`` or
        ``manual/`` the writer is discarded and that file is (re)recorded.
        That is also how an interrupted reassembly finishes exactly once.
        """
        with self._lock:
            path, how = self._place(writer, name, manual=manual, sync=True)
            self._copy(path, name, how)
            self.ledger.record_received(
                self.spool.peer, name, writer.md5, writer.size, path, blocks=blocks, cursor=cursor
            )
        return path

    def commit_group(self, writers: Sequence[InboundWriter]) -> list[Path]:
        """:meth:`commit` of several whole files (``writer.name`` each), as one group.

        Each file is fsynced and renamed as :meth:`store_complete` does, then
        each destination folder is fsynced once and the files are recorded in
        one ledger transaction: two flushes for the group instead of two per
        file. Nothing is durable before this returns, so the caller must not
        confirm any of them before.

        A failure stops the group and is raised; the files already renamed
        are still made durable and recorded (the next cycle confirms them
        without fetching them again), the others' temp files are dropped.
        """
        if any(writer.block is not None for writer in writers):
            raise ValueError("a group commit is for whole files, not blocks")
        placed: list[tuple[InboundWriter, Path, str]] = []
        failure: BaseException | None = None
        try:
            with self._lock:
                try:
                    for writer in writers:
                        path, how = self._place(
                            writer, writer.name, manual=writer.manual, sync=False
                        )
                        placed.append((writer, path, how))
                except BaseException as exc:
                    failure = exc
                if placed:
                    try:
                        self._finish_group(placed)
                    except BaseException:
                        if failure is None:
                            raise
                        log.exception("%s: finishing a failed group commit", self.spool.peer)
        finally:
            for writer in writers:
                writer.abort()  # a no-op for the committed ones
        if failure is not None:
            raise failure
        return [path for _, path, _ in placed]

    def _finish_group(self, placed: list[tuple[InboundWriter, Path, str]]) -> None:
        """Fsync the folders of ``placed``, write the copies, record them all at once."""
        created = [path for _, path, how in placed if how == _NEW]
        try:
            sync_folders(*(path.parent for path in created))
        except StorageError:
            # The names are visible but not durable: take back the ones we made,
            # as DurableWriter.commit does (not confirmed; fetched again).
            for path in created:
                with contextlib.suppress(OSError):
                    os.unlink(path)
            raise
        for writer, path, how in placed:
            self._copy(path, writer.name, how)
        self.ledger.record_received_group(
            self.spool.peer,
            [StoredFile(w.name, w.md5, w.size, path) for w, path, _ in placed],
        )

    def _place(
        self, writer: DurableWriter, name: str, *, manual: bool, sync: bool
    ) -> tuple[Path, str]:
        """Under the peer lock: where ``name`` now is, and how it got there.

        ``_IDENTICAL``: the same file was already in ``inbox/`` or ``manual/``
        (the writer is discarded); ``_RACED``: another replica stored it
        meanwhile; ``_NEW``: committed by us (folder fsynced only with ``sync``).
        """
        md5 = writer.md5
        if (placed := self._place_new(writer, name, manual=manual, sync=sync)) is not None:
            return placed
        existing = self._find_identical(name, md5)
        if existing is not None:
            writer.abort()
            return existing, _IDENTICAL
        folder = self.spool.dir(SpoolState.MANUAL if manual else SpoolState.INBOX)
        target = folder / name
        if target.exists():
            log.warning("%s: %s replaced by a different file", self.spool.peer, target)
            move_aside(target, self.spool.dir(SpoolState.ARCHIVE), stamp=True)
        try:
            return writer.commit(target, sync=sync), _NEW
        except FileExistsError:
            # Stored by another replica meanwhile (our lock is per host):
            # the same file is recorded as a duplicate, a different one refused.
            if self._find_identical(name, md5) != target:
                raise
            writer.abort()
            return target, _RACED

    def _place_new(
        self, writer: DurableWriter, name: str, *, manual: bool, sync: bool
    ) -> tuple[Path, str] | None:
        """The common case of :meth:`_place` in one stat and one rename: ``name`` is
        in neither folder. None (nothing done, the temp kept) sends the caller down
        the full path: the other folder has that name, or the target already exists.

        Equivalent to the full path: an identical file can only be found in a
        folder that has the name, and ``rename_noreplace`` refuses an existing
        target (the check and the rename are one atomic step, not two).
        """
        folder = self.spool.dir(SpoolState.MANUAL if manual else SpoolState.INBOX)
        other = self.spool.dir(SpoolState.INBOX if manual else SpoolState.MANUAL)
        if os.path.lexists(os.path.join(other, name)):
            return None
        try:
            return writer.commit(folder / name, sync=sync), _NEW
        except FileExistsError:
            return None  # the temp is kept (fsynced): the full path decides

    def _copy(self, path: Path, name: str, how: str) -> None:
        """The decompressed copy, if configured (an identical file's only if it has none)."""
        if self.decompress and (how != _IDENTICAL or _copy_missing(path, name)):
            self._write_decompressed_copy(path, name)

    def _find_identical(self, name: str, md5: str) -> Path | None:
        for state in (SpoolState.INBOX, SpoolState.MANUAL):
            candidate = self.spool.dir(state) / name
            if candidate.is_file() and file_md5(candidate)[0] == md5:
                return candidate
        return None

    def _write_decompressed_copy(self, compressed: Path, name: str) -> Path | None:
        """Keep a decompressed copy beside ``compressed``; None if it is not bzip2.

        Handles multi-stream files (``pbzip2`` output) like ``bunzip2`` does.
        Storage errors propagate: the caller answers "could not store" and the
        peer's retry (same MD5) lands in the idempotent branch that redoes it.
        """
        copy_name = decompressed_name(name)
        if len(copy_name.encode("utf-8")) > MAX_NAME_BYTES:
            # ``NAME.txt`` of a valid 252-255 byte name is too long for the file
            # system; failing here would leave the received file unrecorded and
            # answer the peer "could not store" on every retry. The copy is optional.
            why = f"the copy name would be over {MAX_NAME_BYTES} bytes"
            log.warning("%s: no decompressed copy of %s: %s", self.spool.peer, name, why)
            return None
        target = compressed.parent / copy_name
        known = self.ledger.received(self.spool.peer, copy_name)
        if known is not None and Path(known.stored_path) == target:
            why = f"{copy_name} is itself a received file"
            log.warning("%s: no decompressed copy of %s: %s", self.spool.peer, name, why)
            return None
        with DurableWriter(self.spool.work_dir, hash=False) as writer:
            limit = min(self.max_decompressed, decompression_budget(compressed.stat().st_size))
            error = _decompress_into(compressed, writer, limit)
            if error is not None:
                log.warning("%s: no decompressed copy of %s: %s", self.spool.peer, name, error)
                return None
            if target.exists():  # a stale copy, e.g. of a replaced file
                move_aside(target, self.spool.dir(SpoolState.ARCHIVE), stamp=True)
            return writer.commit(target)


def _copy_missing(compressed: Path, name: str) -> bool:
    """True when ``compressed`` should have a decompressed copy but has none."""
    copy_name = decompressed_name(name)
    if len(copy_name.encode("utf-8")) > MAX_NAME_BYTES:
        return False  # never made (see _write_decompressed_copy); stat would fail
    return not (compressed.parent / copy_name).exists()


def _decompress_into(source: Path, writer: DurableWriter, limit: int) -> str | None:
    """Stream ``source`` through bzip2 into ``writer``; returns an error text or None."""
    decompressor = bz2.BZ2Decompressor()
    seen_input = False
    with open(source, "rb") as handle:
        pending = b""
        while True:
            if not pending:
                pending = handle.read(READ_SIZE)
                if not pending:
                    break
                seen_input = True
            try:
                if decompressor.eof:  # the next stream of a multi-stream file
                    decompressor = bz2.BZ2Decompressor()
                out = decompressor.decompress(pending, READ_SIZE)
                pending = b""
                while True:
                    writer.write(out)
                    if writer.size > limit:
                        return f"decompressed size is over the {limit}-byte limit"
                    if decompressor.eof:
                        pending = decompressor.unused_data
                        break
                    if decompressor.needs_input:
                        break
                    out = decompressor.decompress(b"", READ_SIZE)
            except (OSError, EOFError, ValueError) as exc:
                if isinstance(exc, OSError) and exc.errno is not None:
                    raise  # a storage error from the writer, not bad data
                return f"not valid bzip2 data ({exc})"
    if not seen_input:
        return "the file is empty"
    if not decompressor.eof:
        return "the bzip2 data is truncated"
    return None
