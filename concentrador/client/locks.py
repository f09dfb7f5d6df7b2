"""One collection cycle and one push cycle per peer at a time, across processes.

The daemon's schedule and an operator's ``concentrador collect PEER`` must not
run the same cycle at once: both would fetch the same files and confirm them
twice. ``fcntl.flock`` on a per-peer, per-kind lock file settles it across
processes; flock locks belong to an open file description, so a second
attempt from the *same* process on a fresh descriptor is refused too, which
covers two tasks of the daemon.

The lock file lives in the peer's folder (``<spool>/<PEER>/.collect.lock``),
not in ``.work/``: the daemon empties ``.work/`` at start-up, and unlinking a
lock file someone holds would let a third party lock a new inode.
Never blocking: a busy cycle is skipped (daemon) or reported (CLI), since
waiting behind a cycle that is about to do the same work is pointless.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from concentrador.client.errors import CycleBusy
from concentrador.spool.layout import PeerSpool

__all__ = ["cycle_lock", "cycle_lock_path"]


def cycle_lock_path(peer_spool: PeerSpool, kind: str) -> Path:
    """``<spool>/<PEER>/.<kind>.lock`` (kind is ``collect`` or ``push``)."""
    return peer_spool.base / f".{kind}.lock"


@contextlib.contextmanager
def cycle_lock(peer_spool: PeerSpool, kind: str) -> Iterator[Path]:
    """Hold the ``kind`` cycle lock of this peer; raise :class:`CycleBusy` if taken."""
    path = cycle_lock_path(peer_spool, kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            holder = _read_holder(fd)
            raise CycleBusy(
                peer_spool.peer, f"a {kind} cycle is already running{holder}; try again later"
            ) from None
        # Who holds it, for the message above (best effort, never trusted).
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # also releases the flock


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return f" (pid {text})" if text.isdigit() else ""
