"""One collection cycle and one push cycle per peer at a time, across processes.

The daemon's schedule and an operator's ``concentrador collect PEER`` must not
run the same cycle at once: both would fetch the same files and confirm them
twice. The mechanism (an ``flock`` file per peer and kind, or a PostgreSQL
advisory lock across replicas) lives in :mod:`concentrador.spool.claims`,
with the daemon's publish, rebuild and expiry passes; :class:`ClientRunner`
takes its claims from there. This module keeps the client's vocabulary over
the lock files: :class:`CycleBusy`, a :class:`~concentrador.client.errors.ClientError`.

Never blocking: a busy cycle is skipped (daemon) or reported (CLI), since
waiting behind a cycle that is about to do the same work is pointless.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from concentrador.client.errors import CycleBusy
from concentrador.spool.claims import ClaimBusy, flock_claim, lock_path
from concentrador.spool.layout import PeerSpool

__all__ = ["busy", "cycle_lock", "cycle_lock_path"]


def cycle_lock_path(peer_spool: PeerSpool, kind: str) -> Path:
    """``<spool>/<PEER>/.<kind>.lock`` (kind is ``collect`` or ``push``)."""
    return lock_path(peer_spool, kind)


@contextlib.contextmanager
def cycle_lock(peer_spool: PeerSpool, kind: str) -> Iterator[Path]:
    """Hold the ``kind`` cycle lock of this peer; raise :class:`CycleBusy` if taken."""
    with busy(), flock_claim(peer_spool, kind) as path:
        yield path


@contextlib.contextmanager
def busy() -> Iterator[None]:
    """Turn the spool's :class:`ClaimBusy` into the client's :class:`CycleBusy`."""
    try:
        yield
    except ClaimBusy as exc:
        raise CycleBusy(exc.peer, exc.reason) from None
