"""Claims on one host: an ``flock`` file per peer and kind.

``fcntl.flock`` on ``<spool>/<PEER>/.<kind>.lock`` settles it across
processes; flock locks belong to an open file description, so a second
attempt from the *same* process on a fresh descriptor is refused too, which
covers two tasks or threads of the daemon. The kernel drops the lock when the
holder exits, however it died.

The lock file lives in the peer's folder, not in ``.work/``: the daemon
empties ``.work/`` at start-up, and unlinking a lock file someone holds would
let a third party lock a new inode.

Not for replicas on several hosts: ``flock`` over NFS is either local to the
client or emulated with byte-range locks whose recovery after a client dies
depends on the server's lease; that is why a PostgreSQL ledger brings
advisory locks (:mod:`.advisory`) instead.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from concentrador.spool.claims.base import Claim, ClaimBusy, check_kind
from concentrador.spool.layout import PeerSpool, Spool

__all__ = ["LocalClaims", "default_replica", "flock_claim", "lock_path"]


def default_replica() -> str:
    """``host:pid``: unique among live processes of a deployment, readable in a log."""
    return f"{socket.gethostname()}:{os.getpid()}"


def lock_path(peer_spool: PeerSpool, kind: str) -> Path:
    """``<spool>/<PEER>/.<kind>.lock``."""
    return peer_spool.base / f".{check_kind(kind)}.lock"


@contextlib.contextmanager
def flock_claim(peer_spool: PeerSpool, kind: str) -> Iterator[Path]:
    """Hold the ``kind`` lock file of this peer; raise :class:`ClaimBusy` if taken."""
    path = lock_path(peer_spool, kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            raise ClaimBusy(peer_spool.peer, kind, _read_holder(fd)) from None
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


class LocalClaims:
    """:class:`~concentrador.spool.claims.base.Claims` by lock files in the spool."""

    def __init__(self, spool: Spool, *, replica: str | None = None) -> None:
        self.spool = spool
        self._replica = replica or default_replica()

    @property
    def replica(self) -> str:
        return self._replica

    @contextlib.contextmanager
    def hold(self, peer: str, kind: str) -> Iterator[Claim]:
        with flock_claim(self.spool.peer(peer), kind):
            yield Claim(peer, kind, self._replica)

    def close(self) -> None:
        """Nothing to release: every lock file is closed by its own ``with``."""
