"""Asking for a block set to be rebuilt: the one interface the server and the collector see.

A stored block may complete its set; rebuilding it (up to hundreds of MB of
reads) is :class:`~concentrador.spool.inbound.reassembly.Reassembler`'s job,
but *when* and *on which thread* is decided in one place per process:

* in the daemon, :meth:`concentrador.daemon.services.SpoolServices.rebuild`
  (coalesced per peer, on the bounded spool thread pool, like every sweep);
* in a process without the daemon (the one-shot ``concentrador collect``, a
  server app built alone by a test), :class:`LocalRebuilds`, in a worker
  thread of the default executor.

Either way a rebuild runs under the peer's ``rebuild`` claim
(:mod:`concentrador.spool.claims`): the per-peer ``flock`` of
:mod:`concentrador.spool.locks` only excludes processes on one host, and
with replicas on a shared spool the claim (a PostgreSQL advisory lock) is
what makes a block set uploaded half to each replica rebuilt once.

Both are a :data:`RebuildSet`: ``await rebuild(peer_id, original)`` returns
once a rebuild attempt of that set has run *after* the call. It never raises
for a failed attempt (that is logged, and the next sweep or cycle tries
again): the caller reads the outcome from the folders and the ledger.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from concentrador.config.model import PeerConfig
from concentrador.spool.claims import ClaimBusy, Claims, open_claims
from concentrador.spool.inbound.reassembly import Reassembler
from concentrador.spool.layout import Spool
from concentrador.spool.ledger import Ledger

__all__ = ["LocalRebuilds", "RebuildSet"]

log = logging.getLogger(__name__)

RebuildSet = Callable[[str, str], Awaitable[None]]
"""``rebuild(peer_id, original)``: try to rebuild that set now; see the module docstring."""


# While another process holds the peer's rebuild claim, ask again this often,
# for at most this long (it is rebuilding; ours is then usually done by it).
BUSY_RETRY_SECONDS = 0.5
BUSY_GIVE_UP_SECONDS = 60.0


class LocalRebuilds:
    """A :data:`RebuildSet` for a process without the daemon's ``SpoolServices``.

    ``peer_by_id`` is asked at every call (e.g. ``Config.peer_by_id``, or a
    lambda over a config that is swapped on reload): it gives the peer's
    ``decompress``, and None for a peer whose sets are not ours to rebuild.

    Each rebuild holds the peer's ``rebuild`` claim, from ``claims`` (not
    closed here), else from claims opened for the call that match the ledger:
    lock files in the spool for SQLite, advisory locks in ``ledger_url`` for
    PostgreSQL (then ``ledger_url`` is required). A claim held elsewhere is
    waited for, up to ``busy_timeout`` seconds, then the call gives up (logged;
    the caller reads the outcome from the folders, and a later sweep retries).
    """

    def __init__(
        self,
        spool: Spool,
        ledger: Ledger,
        peer_by_id: Callable[[str], PeerConfig | None],
        *,
        claims: Claims | None = None,
        ledger_url: str | None = None,
        busy_timeout: float = BUSY_GIVE_UP_SECONDS,
    ) -> None:
        if claims is None and ledger_url is None and ledger.dialect != "sqlite":
            raise ValueError(
                "LocalRebuilds on a PostgreSQL ledger needs its claims or its ledger_url: "
                "a rebuild must be claimed across replicas"
            )
        self.spool = spool
        self.ledger = ledger
        self._peer_by_id = peer_by_id
        self._claims = claims
        self._ledger_url = ledger_url
        self.busy_timeout = busy_timeout

    def rebuild_now(self, peer_id: str, original: str) -> Path | None:
        """Blocking: rebuild ``original`` of ``peer_id`` if complete (None: not stored,
        or the rebuild claim stayed busy for ``busy_timeout`` seconds)."""
        peer = self._peer_by_id(peer_id)
        if peer is None:
            return None
        reassembler = Reassembler(self.spool.peer(peer_id), self.ledger, decompress=peer.decompress)
        claims = self._claims or open_claims(
            self.spool, self._ledger_url, cycle_log=self.ledger, replica=self.spool.replica
        )
        deadline = time.monotonic() + self.busy_timeout
        try:
            while True:
                try:
                    with claims.hold(peer_id, "rebuild"):
                        return reassembler.try_complete(original)
                except ClaimBusy as busy:
                    if time.monotonic() >= deadline:
                        log.warning("%s: %s not rebuilt here: %s", peer_id, original, busy.reason)
                        return None
                time.sleep(BUSY_RETRY_SECONDS)
        finally:
            if claims is not self._claims:
                claims.close()

    async def __call__(self, peer_id: str, original: str) -> None:
        try:
            await asyncio.to_thread(self.rebuild_now, peer_id, original)
        except Exception:
            log.exception("%s: rebuilding %s failed; it is tried again later", peer_id, original)
