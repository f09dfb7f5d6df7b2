"""One lock per peer spool, good across threads *and* processes.

The daemon and the CLI may both act on the same peer (``concentrador
collect`` storing blocks of a set while the daemon rebuilds another one).
A ``threading`` lock alone does not see the other process; ``fcntl.flock``
alone does not stop two threads of one process (they share nothing, but a
second ``flock`` on a fresh descriptor from the same process would just
block on itself when nested). So: a re-entrant thread lock, and an ``flock``
on ``<peer>/.work/peer.lock`` held while the outermost holder is inside.

Locks are shared per lock file within a process (see :func:`peer_lock`), so
every ``InboundStore``/``Reassembler`` instance for a peer agrees.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Generic, TypeVar

from concentrador.spool.layout import PeerSpool

__all__ = ["PeerLock", "PerPeerFolder", "peer_lock"]

T = TypeVar("T")


class PeerLock:
    """Re-entrant, inter-thread and inter-process exclusive lock on one file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    def acquire(self) -> None:
        self._thread_lock.acquire()
        if self._depth == 0:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)  # blocks until the other process is done
                except BaseException:
                    os.close(fd)
                    raise
            except BaseException:
                self._thread_lock.release()
                raise
            self._fd = fd
        self._depth += 1

    def release(self) -> None:
        if self._depth <= 0:
            raise RuntimeError(f"release of an unheld lock {self.path}")
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)  # closing also drops the flock, even if UN failed
        self._thread_lock.release()

    def __enter__(self) -> PeerLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class PerPeerFolder(Generic[T]):
    """One ``T`` per peer folder in this process: every :class:`PeerSpool` of
    the same folder (however it was spelt) gets the same object."""

    def __init__(self, make: Callable[[PeerSpool, Path], T]) -> None:
        self._make = make
        self._objects: dict[str, T] = {}
        self._lock = threading.Lock()

    def get(self, peer_spool: PeerSpool) -> T:
        key = os.path.abspath(peer_spool.lock_path)
        with self._lock:
            found = self._objects.get(key)
            if found is None:
                found = self._objects[key] = self._make(peer_spool, Path(key))
            return found


_locks: PerPeerFolder[PeerLock] = PerPeerFolder(lambda _spool, lock_path: PeerLock(lock_path))


def peer_lock(peer_spool: PeerSpool) -> PeerLock:
    """The process-wide lock of ``peer_spool`` (same object for the same folder)."""
    return _locks.get(peer_spool)
