"""Asking for a block set to be rebuilt: the one interface the server and the collector see.

A stored block may complete its set; rebuilding it (up to hundreds of MB of
reads) is :class:`~concentrador.spool.inbound.reassembly.Reassembler`'s job,
but *when* and *on which thread* is decided in one place per process:

* in the daemon, :meth:`concentrador.daemon.services.SpoolServices.rebuild`
  (coalesced per peer, on the bounded spool thread pool, like every sweep);
* in a process without the daemon (the one-shot ``concentrador collect``, a
  server app built alone by a test), :class:`LocalRebuilds`, in a worker
  thread of the default executor.

Both are a :data:`RebuildSet`: ``await rebuild(peer_id, original)`` returns
once a rebuild attempt of that set has run *after* the call. It never raises
for a failed attempt (that is logged, and the next sweep or cycle tries
again): the caller reads the outcome from the folders and the ledger.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from concentrador.config.model import PeerConfig
from concentrador.spool.inbound.reassembly import Reassembler
from concentrador.spool.layout import Spool
from concentrador.spool.ledger import Ledger

__all__ = ["LocalRebuilds", "RebuildSet"]

log = logging.getLogger(__name__)

RebuildSet = Callable[[str, str], Awaitable[None]]
"""``rebuild(peer_id, original)``: try to rebuild that set now; see the module docstring."""


class LocalRebuilds:
    """A :data:`RebuildSet` for a process without the daemon's ``SpoolServices``.

    ``peer_by_id`` is asked at every call (e.g. ``Config.peer_by_id``, or a
    lambda over a config that is swapped on reload): it gives the peer's
    ``decompress``, and None for a peer whose sets are not ours to rebuild.
    """

    def __init__(
        self, spool: Spool, ledger: Ledger, peer_by_id: Callable[[str], PeerConfig | None]
    ) -> None:
        self.spool = spool
        self.ledger = ledger
        self._peer_by_id = peer_by_id

    def rebuild_now(self, peer_id: str, original: str) -> Path | None:
        """Blocking: rebuild ``original`` of ``peer_id`` if complete (None: not stored)."""
        peer = self._peer_by_id(peer_id)
        if peer is None:
            return None
        reassembler = Reassembler(self.spool.peer(peer_id), self.ledger, decompress=peer.decompress)
        return reassembler.try_complete(original)

    async def __call__(self, peer_id: str, original: str) -> None:
        try:
            await asyncio.to_thread(self.rebuild_now, peer_id, original)
        except Exception:
            log.exception("%s: rebuilding %s failed; it is tried again later", peer_id, original)
