"""The outbox → published/sending pipeline (compress, checksum once, split, commit).

For each settled, classified file in ``outbox/`` (or ``outbox/<TYPE>/``):

1. **produce**: compress it to one bzip2 stream (or copy it when it already
   is one), cutting the output into ``part-k`` files in a private staging
   folder ``.work/publish-<id>/`` as it streams, MD5 and size computed while
   writing. Nothing is read back, nothing is held whole in memory. A file
   renamed in (mtime already old) is compressed during its settle time.
2. **manifest**: once the file is settled and still unchanged after it was
   read (on a :class:`CommitLine` thread, beside the next compression),
   ``manifest.json`` in the staging folder, written durably, says what the
   parts are and where they go. From here on the publication can be
   completed after a crash.
3. **ledger**: one ``record_published`` transaction. This is the commit
   point: before it the publication never happened, after it it must finish.
4. **move** the parts into ``published/`` (``sending/`` for a push peer) under
   their final names, each an atomic no-overwrite rename.
5. **archive** the operator's original (never deleted), then drop the staging
   folder.

:meth:`Publisher.recover` runs at start-up, **before**
``PeerSpool.clear_work()``: a staging folder without a manifest, or whose
manifest the ledger does not know, is rolled back (the original is still in
the outbox and is published again); one the ledger knows is rolled forward
(steps 4-5). So a file is never half-published and never lost.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from concentrador.protocol import (
    DEFAULT_BLOCK_SIZE,
    TypeClassifier,
    check_block_size,
    looks_like_bzip2,
)
from concentrador.spool.layout import PeerSpool, SpoolState
from concentrador.spool.ledger import Ledger
from concentrador.spool.locks import peer_lock
from concentrador.spool.outbound.commit import (
    STAGING_PREFIX,
    BlockInfo,
    BlockSink,
    Committer,
    Staged,
    file_signature,
)
from concentrador.spool.outbound.compress import Compressor, available_cores
from concentrador.spool.outbound.names import block_names_problem, published_name_problem
from concentrador.spool.outbound.pipeline import CommitLine
from concentrador.spool.outbound.produce import produce_publishable
from concentrador.spool.outbound.scan import (
    OutboxFile,
    SettleTracker,
    classify_outbox_file,
    outbox_file,
    scan_outbox,
)

__all__ = ["BlockInfo", "PublishResult", "Publisher", "RecoveryReport"]

log = logging.getLogger(__name__)

_R = TypeVar("_R")


@dataclass(frozen=True, slots=True)
class PublishResult:
    """What one outbox file became."""

    original_name: str  # the operator's file name in outbox/
    published_name: str  # NAME.bz2, or NAME for a file that already was bzip2
    file_type: str
    blocks: list[BlockInfo]  # one entry (the whole file) when not split
    state: SpoolState  # PUBLISHED, or SENDING for a push peer


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    rolled_back: int  # staging folders discarded; their originals get published again
    completed: int  # publications finished after the ledger had committed them


class Publisher:
    """Publishes one peer's outbox. Sync and thread-safe; call it off the event loop.

    ``deliver`` is ``"publish"`` (files wait in ``published/`` to be collected)
    or ``"push"`` (they go to ``sending/`` for the push cycle).
    ``settle_seconds``: a file is published only once its size, mtime and
    inode have not changed for that long, measured across scans (0: at once).
    ``max_parallel_files``: files compressed at once; by default as many as
    the compressor's threads leave cores for (one, with every core, normally).
    """

    def __init__(
        self,
        peer_spool: PeerSpool,
        ledger: Ledger,
        *,
        classifier: TypeClassifier,
        block_size: int = DEFAULT_BLOCK_SIZE,
        deliver: str = "publish",
        compressor: Compressor,
        settle_seconds: float = 2.0,
        max_parallel_files: int | None = None,
    ) -> None:
        if deliver not in ("publish", "push"):
            raise ValueError(f"deliver must be 'publish' or 'push', not {deliver!r}")
        self.spool = peer_spool
        self.ledger = ledger
        self.classifier = classifier
        self.block_size = check_block_size(block_size)
        self.deliver = deliver
        self.destination = SpoolState.SENDING if deliver == "push" else SpoolState.PUBLISHED
        self.compressor = compressor
        self.max_parallel_files = max_parallel_files or max(
            1, available_cores() // compressor.threads
        )
        self._settle = SettleTracker(settle_seconds)
        self._lock = threading.Lock()
        self._busy_paths: set[Path] = set()
        self._reserved_names: set[str] = set()
        self._warned: dict[Path, str] = {}
        self._active_staging: set[Path] = set()
        self._committer = Committer(peer_spool, ledger, self._step)
        # Test seam: called with a step name at each commit step; a test makes
        # it raise to simulate a crash there (see tests/spool/test_publisher_recovery.py).
        self._on_step: Callable[[str], None] | None = None

    @property
    def peer(self) -> str:
        return self.spool.peer

    # -- public API ------------------------------------------------------------
    def publish_pending(self) -> list[PublishResult]:
        """Publish every outbox file that may start (see :meth:`SettleTracker.may_start`).

        Compressed ``max_parallel_files`` at a time, committed on a
        :class:`CommitLine` as each settles. A failure of one file (disk
        full, compressor crash) is logged and leaves that file in the outbox
        for the next scan; the others go on.
        """
        self._resume_committed()
        candidates = scan_outbox(self.spool.dir(SpoolState.OUTBOX))
        self._forget_vanished(candidates)
        with self._lock:
            starts = [(c, t) for c in candidates if (t := self._settle.may_start(c)) is not None]
        if not starts:
            return []
        line: CommitLine[Staged, PublishResult]
        workers = min(self.max_parallel_files, len(starts))
        with (
            CommitLine(self._commit_logged, name=f"publish-commit-{self.peer}") as line,
            ThreadPoolExecutor(workers, thread_name_prefix="publish") as pool,
        ):
            futures = [pool.submit(self._logged, c.relative, self._stage, c, t) for c, t in starts]
            for future in as_completed(futures):
                if staged := future.result():
                    line.put(staged)
        return line.results

    def publish_file(self, path: Path) -> PublishResult | None:
        """Publish one outbox file; None if it is not (yet) publishable.

        None when: not an outbox candidate (temp name, symlink, too deep),
        not settled yet, unclassifiable or otherwise refused (ledger note +
        one WARNING), being published by another thread, or changed while it
        was compressed. Storage and compressor failures raise.
        """
        candidate = outbox_file(self.spool.dir(SpoolState.OUTBOX), Path(path))
        if candidate is None:
            return None
        with self._lock:
            if not self._settle.is_settled(candidate):
                return None
        staged = self._stage(candidate, commit_after=time.monotonic())
        return None if staged is None else self._commit(staged)

    def recover(self) -> RecoveryReport:
        """Finish or undo what a crash left in ``.work/``.

        Call at start-up, before anything publishes and before
        ``PeerSpool.clear_work()`` (which would throw away committed parts).
        """
        rolled_back = completed = 0
        with peer_lock(self.spool):
            for staging in self._committer.staging_dirs():
                manifest = self._committer.read_manifest(staging)
                if manifest is not None and self._committer.is_committed(manifest):
                    log.info("completing the publication of %s", manifest["published_name"])
                    self._committer.finish(staging, manifest)
                    completed += 1
                else:
                    self._committer.discard(staging)
                    rolled_back += 1
        return RecoveryReport(rolled_back, completed)

    def _resume_committed(self) -> None:
        """Finish committed publications whose moves failed earlier (e.g. disk full).

        Only the ledger-committed ones, and not those in progress here:
        anything else may belong to a publication still being staged.
        """
        for staging in self._committer.staging_dirs():
            with self._lock:
                if staging in self._active_staging:
                    continue
            manifest = self._committer.read_manifest(staging)
            if manifest is None or not self._committer.is_committed(manifest):
                continue
            try:
                with peer_lock(self.spool):
                    self._committer.finish(staging, manifest)
            except Exception as exc:
                log.error("completing %s failed again: %s", manifest["published_name"], exc)

    # -- one file: stage (compress), then commit -------------------------------------
    def _logged(self, relative: str, work: Callable[..., _R | None], *args: object) -> _R | None:
        """``work(*args)``, an error logged: one bad file must not stop the batch."""
        try:
            return work(*args)
        except Exception as exc:
            log.error("publishing %s for %s failed: %s", relative, self.peer, exc)
            return None

    def _commit_logged(self, staged: Staged) -> PublishResult | None:
        return self._logged(staged.candidate.relative, self._commit, staged)

    def _stage(self, candidate: OutboxFile, commit_after: float) -> Staged | None:
        """Claim and compress ``candidate``; None if refused or taken by another thread.

        The claim (path, published name, staging folder) is held until
        :meth:`_commit` (or a failure here) releases it.
        """
        file_type, problem = classify_outbox_file(candidate, self.classifier)
        if file_type is None:
            self._refuse(candidate, problem or "unclassified")
            return None
        try:
            with open(candidate.path, "rb") as handle:
                already_bzip2 = looks_like_bzip2(handle.read(4))
        except FileNotFoundError:
            return None
        published_name = candidate.name if already_bzip2 else candidate.name + ".bz2"
        problem = published_name_problem(self.ledger, self.spool, self.destination, published_name)
        if problem is not None:
            self._refuse(candidate, problem)
            return None
        staging = self.spool.staging_dir / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
        with self._lock:
            if candidate.path in self._busy_paths or published_name in self._reserved_names:
                return None  # another thread has it (or a file that maps to the same name)
            self._busy_paths.add(candidate.path)
            self._reserved_names.add(published_name)
            self._active_staging.add(staging)
        staged = Staged(candidate, file_type, published_name, staging, [], commit_after)
        try:
            blocks = self._produce(candidate, published_name, already_bzip2, staging)
        except BaseException:
            self._release(staged)
            raise
        if blocks is None:
            self._release(staged)
            return None
        return replace(staged, blocks=blocks)

    def _produce(
        self, candidate: OutboxFile, published_name: str, already_bzip2: bool, staging: Path
    ) -> list[tuple[str, BlockInfo]] | None:
        """Step 1: durable parts in ``staging``; None if the content is refused."""
        staging.mkdir(parents=True)
        sink = BlockSink(staging, self.block_size)
        try:
            problem = produce_publishable(candidate, already_bzip2, sink, self.compressor)
            blocks = sink.finish(published_name) if problem is None else []
            problem = problem or block_names_problem(blocks)
            if problem is not None:
                self._committer.discard(staging)
                self._refuse(candidate, problem)
                return None
            self._step("staged")
        except Exception:
            sink.abort()
            self._committer.discard(staging)
            raise
        return blocks

    def _commit(self, staged: Staged) -> PublishResult | None:
        """Steps 2-5 once the file has settled; None if it changed meanwhile."""
        candidate, staging = staged.candidate, staged.staging
        try:
            if (wait := staged.commit_after - time.monotonic()) > 0:
                time.sleep(wait)
            # After the settle time and after the compressor read it: any write
            # since the first sighting changed the mtime (or size, or inode).
            if file_signature(candidate.path) != candidate.signature:
                log.info("%s changed while being published; will retry", candidate.relative)
                self._committer.discard(staging)
                with self._lock:
                    self._settle.forget(candidate.path)
                return None
            manifest = staged.manifest(self.peer, self.destination)
            try:
                self._committer.write_manifest(staging, manifest)
            except Exception:
                self._committer.discard(staging)
                raise
            self._step("manifest")
            with peer_lock(self.spool):
                try:
                    self._committer.record(manifest)
                except Exception:
                    # Not committed: undo now, or a later recovery would have
                    # to tell this staging from a newer publication.
                    if not self._committer.is_committed(manifest):
                        self._committer.discard(staging)
                    raise
                self._committer.finish(staging, manifest)
        finally:
            self._release(staged)
        self.ledger.clear_unclassified(self.peer, candidate.relative)
        with self._lock:
            self._warned.pop(candidate.path, None)
            self._settle.forget(candidate.path)
        blocks = [block for _part, block in staged.blocks]
        log.info(
            "published %s for %s as %s (%s, %d block(s)) in %s/",
            candidate.relative,
            self.peer,
            staged.published_name,
            staged.file_type,
            len(blocks),
            self.destination,
        )
        return PublishResult(
            candidate.name, staged.published_name, staged.file_type, blocks, self.destination
        )

    def _release(self, staged: Staged) -> None:
        with self._lock:
            self._busy_paths.discard(staged.candidate.path)
            self._reserved_names.discard(staged.published_name)
            self._active_staging.discard(staged.staging)

    # -- operator feedback -----------------------------------------------------------
    def _refuse(self, candidate: OutboxFile, reason: str) -> None:
        """Tell the operator once per file and reason (log + ledger note)."""
        with self._lock:
            if self._warned.get(candidate.path) == reason:
                return
            self._warned[candidate.path] = reason
        log.warning("not publishing %s for %s: %s", candidate.relative, self.peer, reason)
        self.ledger.note_unclassified(self.peer, candidate.relative, reason)

    def _forget_vanished(self, candidates: list[OutboxFile]) -> None:
        present = {c.relative for c in candidates}
        with self._lock:
            self._settle.keep_only(c.path for c in candidates)
            for path in [p for p in self._warned if p not in {c.path for c in candidates}]:
                del self._warned[path]
        for note in self.ledger.unclassified(self.peer):
            if note.path.startswith(f"{SpoolState.OUTBOX.value}/") and note.path not in present:
                self.ledger.clear_unclassified(self.peer, note.path)

    def _step(self, name: str) -> None:
        if self._on_step is not None:
            self._on_step(name)
