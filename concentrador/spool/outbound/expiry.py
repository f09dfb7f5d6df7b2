"""The end of a publication window: ``published/`` → ``expired/``.

CPCSCC.md §6: a published file leaves the listing when it is confirmed or
when its window of ``publish_days`` passes unconfirmed; either way it is
moved aside, never deleted. This module does the second half, and finishes
the first half when a crash cut it short (:func:`finish_deliveries`).

Order of work, for crash safety: move the files (all blocks of a split
file) first, then mark the ledger. A crash in between leaves names the
ledger still lists but whose files are already in ``expired/``; the next run
finds them there and finishes. The reverse order could strand files in
``published/`` that no ledger row points at any more.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

from concentrador.spool.aside import move_aside
from concentrador.spool.durable import durable_move
from concentrador.spool.layout import PeerSpool, SpoolState
from concentrador.spool.ledger import Ledger
from concentrador.spool.locks import peer_lock

__all__ = ["expire_published", "finish_deliveries"]

log = logging.getLogger(__name__)


def expire_published(
    peer_spool: PeerSpool, ledger: Ledger, *, now: datetime, publish_days: float
) -> list[str]:
    """Expire every original published before ``now - publish_days``.

    Returns the originals expired by this call (sorted). Idempotent: a second
    call finds nothing left to do. ``now`` must be timezone-aware.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if publish_days < 0:
        raise ValueError(f"publish_days must not be negative, got {publish_days}")
    peer = peer_spool.peer
    finish_deliveries(peer_spool, ledger)
    cutoff = now - timedelta(days=publish_days)
    expired: list[str] = []
    for original in ledger.published_before(peer, cutoff):
        # Under the peer lock and re-read: a confirmation may have won the race.
        with peer_lock(peer_spool):
            entries = [
                e
                for e in ledger.entries_of(peer, original)
                if e.state == SpoolState.PUBLISHED and e.published_at < cutoff
            ]
            if not entries:
                continue
            for entry in entries:
                _move_to_expired(peer_spool, entry.name)
            why = f"unconfirmed after {publish_days:g} days"
            ledger.set_state(peer, original, SpoolState.EXPIRED, detail=why)
        log.info("%s: publication of %s expired unconfirmed", peer, original)
        expired.append(original)
    return sorted(expired)


def _move_to_expired(peer_spool: PeerSpool, name: str) -> Path | None:
    source = peer_spool.dir(SpoolState.PUBLISHED) / name
    expired_dir = peer_spool.dir(SpoolState.EXPIRED)
    try:
        return durable_move(source, expired_dir)
    except FileNotFoundError:
        if (expired_dir / name).exists():
            return expired_dir / name  # moved by an earlier, interrupted run
        log.warning("%s: published %s is missing; marked expired anyway", peer_spool.peer, name)
        return None
    except FileExistsError:
        # An older publication of the same name expired before: keep both.
        return move_aside(source, expired_dir, stamp=True)


def finish_deliveries(peer_spool: PeerSpool, ledger: Ledger) -> list[str]:
    """Move to ``delivered/`` the files a confirmation committed but never moved.

    A confirmation marks the ledger first (its commit point) and moves the
    files after (``server/operations/confirmacion.py``): a kill -9 in between
    leaves a file in ``published/`` that is no longer listed. This finds such
    files (in ``published/``, not in the ledger's published listing, marked
    delivered) and finishes their move. Returns their names (sorted).
    """
    published_dir = peer_spool.dir(SpoolState.PUBLISHED)
    try:
        on_disk = {p.name for p in published_dir.iterdir() if p.is_file()}
    except FileNotFoundError:
        return []
    peer = peer_spool.peer
    # The usual case costs one listing query: every file on disk is listed.
    stray = on_disk - {row.name for row in ledger.listing(peer)}
    finished: list[str] = []
    for name in sorted(stray):
        # Under the peer lock, which the publisher's commit and the
        # confirmation hold too, re-read: a new publication of the same name
        # marks it published again before its file lands here.
        with peer_lock(peer_spool):
            entry = ledger.lookup(peer, name)
            if entry is None or entry.state != SpoolState.DELIVERED:
                continue  # being published right now, or not ours to judge
            if not (published_dir / name).is_file():
                continue
            delivered_dir = peer_spool.dir(SpoolState.DELIVERED)
            delivered_dir.mkdir(parents=True, exist_ok=True)
            move_aside(published_dir / name, delivered_dir)
        log.info("%s: finished the delivery of %s (its move was cut short)", peer, name)
        finished.append(name)
    return finished
