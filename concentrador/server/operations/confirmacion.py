"""confirmacionRecepcionFichero: the peer has the file (CPCSCC.md §4.4).

Code 0 on a published original moves it and all its blocks from
``published/`` to ``delivered/`` and marks them delivered in the ledger.
The ledger update comes first, as with the publisher: it is the commit point
(after it the file is no longer listed or served); the moves follow under the
peer lock, and a move that finds the file already gone is simply done.
Confirmations arriving together are committed together (:class:`DeliveryGroup`).

Codes 1 and 2 are logged and answered 0; the file stays published. Anything
else (an unknown name, another peer's, an unsafe name, a single block, a
code outside 0-2) is answered codigo 1.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from concentrador.protocol import (
    ConfirmacionRecepcionFichero,
    ConfirmacionRecepcionFicheroResponse,
    ConfirmationCode,
    ConfirmationResult,
    InvalidFileName,
    parse_block_name,
    validate_peer_filename,
)
from concentrador.spool.aside import move_aside
from concentrador.spool.durable import sync_folders
from concentrador.spool.layout import PeerSpool, SpoolState
from concentrador.spool.ledger.events import EventKind
from concentrador.spool.locks import PerPeerFolder, peer_lock

if TYPE_CHECKING:
    from concentrador.spool.ledger import Ledger, PublishedEntry

__all__ = ["DeliveryGroup", "confirm_reception"]

log = logging.getLogger(__name__)

_PUBLISHED = SpoolState.PUBLISHED.value
_DELIVERED = SpoolState.DELIVERED.value


def _answer(result: ConfirmationResult) -> ConfirmacionRecepcionFicheroResponse:
    return ConfirmacionRecepcionFicheroResponse(int(result))


def confirm_reception(
    ledger: Ledger, peer_spool: PeerSpool, request: ConfirmacionRecepcionFichero
) -> ConfirmacionRecepcionFicheroResponse:
    """Apply one confirmation (blocking: run off the event loop)."""
    peer = peer_spool.peer
    name = request.nombre_fichero
    try:
        validate_peer_filename(name)
    except InvalidFileName as exc:
        log.warning("%s confirmed an unsafe name: %s", peer, exc)
        return _answer(ConfirmationResult.ERROR)
    # A split file is confirmed once under its original name: the ledger
    # keeps the blocks as entries whose ``original`` is that name, so a
    # block name finds nothing here and is answered 1 (§4.4 Decision).
    entries = [e for e in ledger.entries_of(peer, name) if e.state == _PUBLISHED]
    if not entries:
        if parse_block_name(name) is not None and ledger.lookup(peer, name) is not None:
            log.warning("%s confirmed block %s alone; blocks are confirmed by original", peer, name)
        else:
            log.info("%s confirmed %r, which is not published for it", peer, name)
        return _answer(ConfirmationResult.ERROR)

    code = request.cod_confirmacion
    if code in (ConfirmationCode.CHECKSUM_FAILED, ConfirmationCode.GENERIC_ERROR):
        what = "a checksum failure" if code == ConfirmationCode.CHECKSUM_FAILED else "an error"
        log.warning("%s reports %s for %s (code %d); it stays published", peer, what, name, code)
        ledger.note_event(
            peer, name, EventKind.PEER_CONFIRMATION, f"code {code} ({what}): stays published"
        )
        return _answer(ConfirmationResult.ACCEPTED)
    if code != ConfirmationCode.RECEIVED:
        log.warning("%s sent codConfirmacion %d for %s, which means nothing", peer, code, name)
        return _answer(ConfirmationResult.ERROR)

    return _answer(_delivery_group(peer_spool).deliver(ledger, name))


@dataclass
class _Delivery:
    """One code-0 confirmation waiting for a group commit."""

    name: str
    result: ConfirmationResult = ConfirmationResult.ERROR
    done: bool = False
    failure: BaseException | None = None


class DeliveryGroup:
    """Group commit of one peer's code-0 confirmations.

    Confirmations arriving together (several connections) queue up for the
    peer lock; the first to get it commits every queued one: one ledger
    transaction, the moves, one fsync per folder. Each is answered only once
    that whole commit is durable, so nothing is acknowledged earlier than
    before; a confirmation alone costs what it always did.
    """

    def __init__(self, peer_spool: PeerSpool) -> None:
        self._spool = peer_spool
        self._queue_lock = threading.Lock()
        self._queue: list[_Delivery] = []

    def deliver(self, ledger: Ledger, name: str) -> ConfirmationResult:
        """Deliver ``name`` (blocking), maybe in another thread's commit."""
        mine = _Delivery(name)
        with self._queue_lock:
            self._queue.append(mine)
        with peer_lock(self._spool):
            if not mine.done:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                try:
                    self._commit(ledger, batch)
                except BaseException as exc:
                    for delivery in batch:
                        delivery.failure = exc
                    raise
                finally:
                    for delivery in batch:
                        delivery.done = True
        if mine.failure is not None:
            raise mine.failure
        return mine.result

    def _commit(self, ledger: Ledger, batch: list[_Delivery]) -> None:
        """Under the peer lock: the ledger first (the commit point), then the moves."""
        peer = self._spool.peer
        published = self._spool.dir(SpoolState.PUBLISHED)
        delivered = self._spool.dir(SpoolState.DELIVERED)
        accepted: dict[str, list[PublishedEntry]] = {}
        for delivery in batch:
            # Re-read under the lock: an expiry run (or a confirmation earlier
            # in this batch) may have moved the file since the first check;
            # marking it delivered then would contradict the folders.
            entries = [e for e in ledger.entries_of(peer, delivery.name) if e.state == _PUBLISHED]
            if not entries or delivery.name in accepted:
                log.info("%s confirmed %s, no longer published (expired or confirmed)", peer,
                         delivery.name)  # fmt: skip
                continue
            accepted[delivery.name] = entries
            delivery.result = ConfirmationResult.ACCEPTED
        if not accepted:
            return
        detail = "confirmed by the peer with code 0"
        ledger.set_states(peer, list(accepted), _DELIVERED, detail=detail)
        delivered.mkdir(parents=True, exist_ok=True)
        moved = 0
        for entry in (entry for entries in accepted.values() for entry in entries):
            try:
                # move_aside never overwrites: a clash (an operator re-used a
                # name) keeps both files, the new one with a time stamp.
                move_aside(published / entry.name, delivered, sync=False)
                moved += 1
            except FileNotFoundError:
                log.info("%s was already gone from %s", entry.name, published)
        if moved:
            # One fsync per folder for every file of the batch, before any of
            # them is answered: the moves are as durable as one durable_move each.
            sync_folders(delivered, published)
        for name, entries in accepted.items():
            log.info("%s confirmed %s (%d file(s) delivered)", peer, name, len(entries))


_groups: PerPeerFolder[DeliveryGroup] = PerPeerFolder(
    lambda peer_spool, _lock_path: DeliveryGroup(peer_spool)
)


def _delivery_group(peer_spool: PeerSpool) -> DeliveryGroup:
    """The process-wide group of ``peer_spool`` (one per folder, like its lock)."""
    return _groups.get(peer_spool)
