"""The outbox → published/sending pipeline (compress, checksum once, split, commit).

For each settled, classified file in ``outbox/`` (or ``outbox/<TYPE>/``):

1. **produce**: compress it to one bzip2 stream (or copy it when it already
   is one), cutting the output into ``part-k`` files in a private staging
   folder ``.work/publish-<id>/`` as it streams, MD5 and size computed while
   writing. Nothing is read back, nothing is held whole in memory.
2. **manifest**: ``manifest.json`` in the staging folder, written durably,
   says what the parts are and where they go. From here on the publication
   can be completed after a crash.
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
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

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
    Manifest,
    file_signature,
)
from concentrador.spool.outbound.compress import Compressor, available_cores
from concentrador.spool.outbound.names import block_names_problem, published_name_problem
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
    ``settle_seconds``: a file is taken only once its size, mtime and inode
    have not changed for that long, measured across scans (0: at once).
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
        self.max_parallel_files = max_parallel_files or available_cores()
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
        """Publish every settled outbox file, several files at once.

        A failure of one file (disk full, compressor crash) is logged and
        leaves that file in the outbox for the next scan; the others go on.
        """
        self._resume_committed()
        candidates = scan_outbox(self.spool.dir(SpoolState.OUTBOX))
        self._forget_vanished(candidates)
        with self._lock:
            ready = [c for c in candidates if self._settle.is_settled(c)]
        if not ready:
            return []
        workers = min(self.max_parallel_files, len(ready))
        if workers == 1:
            results = [self._publish_logged(c) for c in ready]
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix="publish") as pool:
                results = list(pool.map(self._publish_logged, ready))
        return [r for r in results if r is not None]

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
        return self._publish(candidate)

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

    # -- one file ----------------------------------------------------------------
    def _publish_logged(self, candidate: OutboxFile) -> PublishResult | None:
        try:
            return self._publish(candidate)
        except Exception as exc:  # one bad file must not stop the batch
            log.error("publishing %s for %s failed: %s", candidate.relative, self.peer, exc)
            return None

    def _publish(self, candidate: OutboxFile) -> PublishResult | None:
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
        with self._lock:
            if candidate.path in self._busy_paths or published_name in self._reserved_names:
                return None  # another thread has it (or a file that maps to the same name)
            self._busy_paths.add(candidate.path)
            self._reserved_names.add(published_name)
        try:
            return self._publish_claimed(candidate, file_type, published_name, already_bzip2)
        finally:
            with self._lock:
                self._busy_paths.discard(candidate.path)
                self._reserved_names.discard(published_name)

    def _publish_claimed(
        self, candidate: OutboxFile, file_type: str, published_name: str, already_bzip2: bool
    ) -> PublishResult | None:
        staging = self.spool.work_dir / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
        with self._lock:
            self._active_staging.add(staging)
        try:
            manifest = self._stage(candidate, file_type, published_name, already_bzip2, staging)
            if manifest is None:
                return None
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
            with self._lock:
                self._active_staging.discard(staging)
        self.ledger.clear_unclassified(self.peer, candidate.relative)
        with self._lock:
            self._warned.pop(candidate.path, None)
            self._settle.forget(candidate.path)
        blocks = [BlockInfo(b["name"], b["size"], b["md5"]) for b in manifest["blocks"]]
        log.info(
            "published %s for %s as %s (%s, %d block(s)) in %s/",
            candidate.relative,
            self.peer,
            published_name,
            file_type,
            len(blocks),
            self.destination,
        )
        return PublishResult(candidate.name, published_name, file_type, blocks, self.destination)

    def _stage(
        self,
        candidate: OutboxFile,
        file_type: str,
        published_name: str,
        already_bzip2: bool,
        staging: Path,
    ) -> Manifest | None:
        """Steps 1-2: parts and a durable manifest in ``staging``; None if refused."""
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
            if file_signature(candidate.path) != candidate.signature:
                log.info("%s changed while being published; will retry", candidate.relative)
                self._committer.discard(staging)
                with self._lock:
                    self._settle.forget(candidate.path)
                return None
            self._step("staged")
            manifest: Manifest = {
                "version": 1,
                "peer": self.peer,
                "source": candidate.relative,
                "source_signature": list(candidate.signature),
                "original_name": candidate.name,
                "published_name": published_name,
                "file_type": file_type,
                "state": self.destination.value,
                "published_at": datetime.now(UTC).isoformat(),
                "blocks": [{"part": part, **block._asdict()} for part, block in blocks],
            }
            self._committer.write_manifest(staging, manifest)
            self._step("manifest")
        except Exception:
            sink.abort()
            self._committer.discard(staging)
            raise
        return manifest

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
