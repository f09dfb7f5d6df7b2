"""Temp folders on a shared spool: one per replica, and sweeping the dead ones'.

On a shared spool (``[spool] shared = true``) every process writes its temp
files in ``<PEER>/.work/replicas/<REPLICA>/`` (:class:`~.layout.PeerSpool`),
and at start-up a replica empties only its own folder. The folders of
replicas that are gone (a crashed host, a restart under a new ``host:pid``)
are removed here once nothing in them has changed for :data:`MAX_IDLE`
seconds. A live replica cannot look that idle: every upload or download in
progress writes its temp file continually (the server's and client's
deadlines cut a stalled transfer within minutes), and the daemon touches its
own folders at every expiry pass (:func:`touch_work`), so even a replica with
no traffic for a peer keeps its folder fresh.

A stale folder is first renamed to a unique ``.dead-*`` name, then deleted:
a replica that writes into it after all (the bound was wrong) fails that one
transfer (the peer is never told it is stored), and nothing half-deleted is
ever taken for a live folder. An ``ENOENT`` when a replica creates a temp
file recreates its folder (:class:`~.durable.DurableWriter`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
import uuid
from pathlib import Path

from concentrador.config.model import Config
from concentrador.spool.claims.local import default_replica
from concentrador.spool.layout import PUBLISH_STAGING_PREFIX, REPLICAS_DIRNAME, PeerSpool, Spool

__all__ = [
    "MAX_IDLE", "keep_work_tidy", "replica_name", "spool_for", "sweep_work", "touch_work",
]  # fmt: skip

log = logging.getLogger(__name__)

MAX_IDLE = 3600.0
"""Seconds with no change under a replica's temp folder before it counts as dead."""

_DEAD_PREFIX = ".dead-"


def replica_name(config: Config) -> str:
    """This process's replica name: ``[node] replica``, else ``host:pid``."""
    return config.node.replica or default_replica()


def spool_for(config: Config) -> Spool:
    """The spool of ``config``: with this process's temp folder when it is shared."""
    return Spool(config.node.spool, replica_name(config) if config.spool.shared else None)


def touch_work(peer_spool: PeerSpool) -> None:
    """Mark this replica's temp folder alive (and create it if a sweep took it)."""
    if peer_spool.replica is None:
        return
    peer_spool.work_dir.mkdir(parents=True, exist_ok=True)
    os.utime(peer_spool.work_dir)  # no times given: the file server's clock on NFS


def sweep_work(
    peer_spool: PeerSpool, *, max_idle: float = MAX_IDLE, now: float | None = None
) -> int:
    """Remove other replicas' temp folders idle for over ``max_idle`` seconds.

    Also loose temp files directly in ``.work/`` that are as old (left by a
    process that ran before the spool was shared). Never this replica's own
    folder, the lock file or a publisher staging folder (only the publish
    claim's holder may judge those). A no-op on a spool that is not shared.
    Returns how many folders and files were removed.
    """
    if peer_spool.replica is None:
        return 0
    cutoff = (time.time() if now is None else now) - max_idle
    removed = 0
    replicas = peer_spool.staging_dir / REPLICAS_DIRNAME
    for entry in _entries(replicas):
        path = Path(entry.path)
        if path == peer_spool.work_dir:
            continue
        if entry.name.startswith(_DEAD_PREFIX) or _newest_mtime(path) < cutoff:
            removed += _bury(path, replicas)
    for entry in _entries(peer_spool.staging_dir):
        path = Path(entry.path)
        if (
            entry.name in (REPLICAS_DIRNAME, peer_spool.lock_path.name)
            or entry.name.startswith(PUBLISH_STAGING_PREFIX)
            or _newest_mtime(path) >= cutoff
        ):
            continue
        removed += _bury(path, peer_spool.staging_dir)
    if removed:
        log.info("%s: removed %d temp folder(s)/file(s) of replicas gone for over %g s",
                 peer_spool.peer, removed, max_idle)  # fmt: skip
    return removed


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    try:
        return list(os.scandir(folder))
    except FileNotFoundError:
        return []


def _newest_mtime(path: Path) -> float:
    """The newest mtime of ``path`` and everything under it (inf if it vanished)."""
    try:
        newest = path.stat(follow_symlinks=False).st_mtime
    except FileNotFoundError:
        return float("inf")  # someone else removed it: nothing to do
    if not path.is_dir():
        return newest
    for folder, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            with contextlib.suppress(FileNotFoundError):
                newest = max(newest, os.lstat(os.path.join(folder, name)).st_mtime)
    return newest


def _bury(path: Path, parent: Path) -> int:
    """Rename ``path`` out of the way, then delete it; 1 if it was ours to delete."""
    if path.is_dir() and not path.name.startswith(_DEAD_PREFIX):
        grave = parent / f"{_DEAD_PREFIX}{uuid.uuid4().hex}"
        try:
            # Atomic: two replicas sweeping at once never both delete it, and
            # its owner, if alive after all, sees it gone rather than half-emptied.
            os.rename(path, grave)
        except FileNotFoundError:
            return 0
        path = grave
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            return 0
    return 1


def keep_work_tidy(peer_spool: PeerSpool) -> None:
    """The daemon's periodic care of a shared spool's temp folders: keep ours
    alive, sweep the dead replicas'. Never raises (a sweep is retried next time)."""
    if peer_spool.replica is None:
        return
    try:
        touch_work(peer_spool)
        sweep_work(peer_spool)
    except OSError:
        log.exception("%s: tidying the temp folders in .work/ failed", peer_spool.peer)
