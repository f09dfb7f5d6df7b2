"""Checking that a rebuilt file is exactly one bzip2 stream, on every core.

A large file arrives as 8 MB blocks in seconds, but one thread decompresses
bzip2 at only a few MB/s of input: checked by one thread, a 500 MB file
would wait minutes before reaching ``inbox/``. So :class:`StreamCheck` is fed
the concatenation as the reassembler writes it, cuts it into runs of whole
bzip2 blocks (:class:`~concentrador.protocol.bzip2_segments.StreamSegmenter`)
and decompresses the runs in a shared thread pool (by ``lbzip2`` processes
when installed, else ``bz2``, which releases the GIL: see ``runcheck``),
while the reassembler goes on reading, hashing and writing.

The verdict is always the sequential checker's
(:class:`~concentrador.protocol.bzip2.SingleStreamChecker`): a file that the
runs prove valid is valid for it, and whenever a run fails, or the stream
cannot be cut, the file is checked again sequentially, so a refusal reads as
it always did. The exception is the decompression budget (the bomb defence):
it is shared by all runs of a file and, once spent, refuses the file at once
instead of spending it a second time.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from concentrador.protocol import SingleStreamChecker, decompression_budget
from concentrador.protocol.bzip2 import DecompressionBudget
from concentrador.protocol.bzip2_segments import BlockRun, StreamSegmenter
from concentrador.spool.durable import READ_SIZE
from concentrador.spool.inbound.runcheck import run_checker
from concentrador.spool.outbound.compress import available_cores

__all__ = ["RUN_BYTES", "StreamCheck", "read_pieces"]

log = logging.getLogger(__name__)

RUN_BYTES = 1 << 20
"""Compressed bytes per run: ~16 blocks of metering text, ~0.2 s of one core."""

_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _shared_pool() -> ThreadPoolExecutor:
    """One pool for every check in the process: rebuilds running at once
    share the cores instead of each taking all of them."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(available_cores(), thread_name_prefix="bz2check")
        return _pool


class _SharedBudget(DecompressionBudget):
    """A budget spent from several threads at once."""

    def __init__(self, limit: int | None) -> None:
        super().__init__(limit)
        self._lock = threading.Lock()

    def spend(self, size: int) -> bool:
        with self._lock:
            return super().spend(size)


def read_pieces(paths: list[Path]) -> Iterator[bytes]:
    """The concatenation of ``paths``, in ``READ_SIZE`` pieces."""
    for path in paths:
        with open(path, "rb") as handle:
            while chunk := handle.read(READ_SIZE):
                yield chunk


class StreamCheck:
    """Checks a concatenation of files, fed to it piece by piece in order.

    Call :meth:`feed` with every piece, then :meth:`verdict` once with the
    files. ``expected_size`` is the compressed size, or an estimate when the
    check starts before every block has arrived (see ``precheck``): the
    budget is set from it, and settled at the end from the real size.
    """

    def __init__(self, expected_size: int, *, threads: int | None = None) -> None:
        self._expected_limit = decompression_budget(expected_size)
        self._budget = _SharedBudget(self._expected_limit)
        threads = threads or available_cores()
        self._window = 2 * threads  # runs in flight: bounds memory to a few MB
        self._pending: deque[Future[str | None]] = deque()
        self._segmenter: StreamSegmenter | None = None
        self._sequential: SingleStreamChecker | None = None
        # Too small to cut in several runs, or one core: the sequential checker.
        if threads > 1 and expected_size >= 4 * RUN_BYTES:
            self._segmenter = StreamSegmenter(RUN_BYTES)
        else:
            self._sequential = SingleStreamChecker(budget=self._budget)
        self._undecided: str | None = None  # why the runs could not decide
        self._check_run = run_checker()

    def feed(self, piece: bytes) -> None:
        if self._sequential is not None:
            self._sequential.feed(piece)
        elif self._segmenter is not None and self._undecided is None:
            self._submit(self._segmenter.feed(piece))

    def verdict(self, paths: list[Path]) -> str | None:
        """None when the concatenation of ``paths`` (all fed) is exactly one valid
        bzip2 stream, else why not. ``paths`` are read again only when the
        sequential checker must decide."""
        limit = decompression_budget(sum(path.stat().st_size for path in paths))
        if self._segmenter is not None and self._undecided is None:
            self._submit(self._segmenter.finish())
            while self._pending and self._undecided is None:
                self._collect(self._pending.popleft())
        self.abandon()
        if self._budget.spent > limit:
            self._budget.limit = limit
            return self._budget.refusal()
        if self._budget.exceeded:  # refused against an estimate below the real budget
            self._undecided = "the estimated budget was too small"
        if self._undecided is not None:
            log.info("checking the bzip2 stream sequentially: %s", self._undecided)
            self._sequential = SingleStreamChecker(budget=DecompressionBudget(limit))
            for piece in read_pieces(paths):
                self._sequential.feed(piece)
        elif self._sequential is None:
            return None  # every run checked clean
        checker = self._sequential
        assert checker is not None
        checker.finish()
        if checker.ok:
            return None
        return checker.error or "data after the end of the bzip2 stream"

    # -- internals ---------------------------------------------------------------------
    def _submit(self, runs: list[BlockRun]) -> None:
        assert self._segmenter is not None
        if self._segmenter.failed is not None:
            self._undecided = self._segmenter.failed
            return
        pool = _shared_pool()
        for run in runs:
            while len(self._pending) >= self._window and self._undecided is None:
                self._collect(self._pending.popleft())
            if self._undecided is not None:
                return
            self._pending.append(pool.submit(self._check_run, run, self._budget))

    def _collect(self, future: Future[str | None]) -> None:
        error = future.result()
        if error is not None:
            self._undecided = f"a run of blocks failed: {error}"

    def abandon(self) -> None:
        """Drop the runs not started; those running end within one run's time."""
        for future in self._pending:
            future.cancel()
        self._pending.clear()
