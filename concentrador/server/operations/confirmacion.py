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
from concentrador.spool.layout import PeerSpool, SpoolState
from concentrador.spool.ledger.events import EventKind
from concentrador.spool.locks import PerPeerFolder, peer_lock

if TYPE_CHECKING:
    from concentrador.spool.ledger import Ledger

__all__ = ["DeliveryGroup", "confirm_reception"]

log = logging.getLogger(__name__)

_PUBLISHED = SpoolState.PUBLISHED.value


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
    code = request.cod_confirmacion
    if code == ConfirmationCode.RECEIVED:
        # No read before the group commit: it checks and marks in one
        # transaction under the peer lock (a check out here could be stale).
        result = _delivery_group(peer_spool).deliver(ledger, name)
        if result != ConfirmationResult.ACCEPTED:
            _log_not_published(ledger, peer, name)
        return _answer(result)
    if code not in (ConfirmationCode.CHECKSUM_FAILED, ConfirmationCode.GENERIC_ERROR):
        log.warning("%s sent codConfirmacion %d for %s, which means nothing", peer, code, name)
        return _answer(ConfirmationResult.ERROR)
    if not any(e.state == _PUBLISHED for e in ledger.entries_of(peer, name)):
        _log_not_published(ledger, peer, name)
        return _answer(ConfirmationResult.ERROR)
    what = "a checksum failure" if code == ConfirmationCode.CHECKSUM_FAILED else "an error"
    log.warning("%s reports %s for %s (code %d); it stays published", peer, what, name, code)
    ledger.note_event(
        peer, name, EventKind.PEER_CONFIRMATION, f"code {code} ({what}): stays published"
    )
    return _answer(ConfirmationResult.ACCEPTED)


def _log_not_published(ledger: Ledger, peer: str, name: str) -> None:
    """Say why ``name`` was answered 1 (only on that path: it costs a read)."""
    # A split file is confirmed once under its original name: the ledger
    # keeps the blocks as entries whose ``original`` is that name, so a
    # block name finds nothing to deliver and is answered 1 (§4.4 Decision).
    if parse_block_name(name) is not None and ledger.lookup(peer, name) is not None:
        log.warning("%s confirmed block %s alone; blocks are confirmed by original", peer, name)
    else:
        log.info("%s confirmed %r, which is not published for it (any more)", peer, name)


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
    transaction (the commit point), then the moves. Each is answered only
    once that transaction is durable and its files renamed.
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
        """Under the peer lock: the ledger first (the commit point), then the moves.

        Why no folder fsync before answering: the durable ledger commit
        (``synchronous=FULL``) is what the confirmation changes; from then
        on the file is neither listed nor served, whatever folder it is in.
        A rename that a power cut undoes leaves the file in ``published/``,
        marked delivered: the state a kill -9 between the commit and the
        moves leaves too, and :func:`~concentrador.spool.outbound.expiry.finish_deliveries`
        (at start-up, before serving, and on every expiry pass) moves it on.
        A rename is atomic, so the file is in one folder or the other, never
        lost, and a delivered name is never published again (``outbound/names.py``),
        so the file left behind cannot pass for a new one. The two folder
        fsyncs (a third of a small file's confirmation) bought nothing.
        """
        peer = self._spool.peer
        published = self._spool.dir(SpoolState.PUBLISHED)
        delivered = self._spool.dir(SpoolState.DELIVERED)
        detail = "confirmed by the peer with code 0"
        # Checked and marked in one transaction: an expiry run (or a
        # confirmation earlier in this batch) that moved a file since it was
        # listed leaves nothing to mark, and it is answered 1.
        accepted = ledger.deliver(peer, [d.name for d in batch], detail)
        answered: set[str] = set()
        for delivery in batch:
            if delivery.name in accepted and delivery.name not in answered:
                answered.add(delivery.name)  # a second one in the batch: 1
                delivery.result = ConfirmationResult.ACCEPTED
        if not accepted:
            return
        delivered.mkdir(parents=True, exist_ok=True)
        for original, names in accepted.items():
            for name in names:
                try:
                    # move_aside never overwrites: a clash (an operator re-used a
                    # name) keeps both files, the new one with a time stamp.
                    move_aside(published / name, delivered, sync=False)
                except FileNotFoundError:
                    log.info("%s was already gone from %s", name, published)
                except OSError:
                    # Committed already: finish_deliveries retries the move.
                    log.exception("%s: moving %s to %s failed; retried later", peer, name,
                                  delivered)  # fmt: skip
            log.info("%s confirmed %s (%d file(s) delivered)", peer, original, len(names))


_groups: PerPeerFolder[DeliveryGroup] = PerPeerFolder(
    lambda peer_spool, _lock_path: DeliveryGroup(peer_spool)
)


def _delivery_group(peer_spool: PeerSpool) -> DeliveryGroup:
    """The process-wide group of ``peer_spool`` (one per folder, like its lock)."""
    return _groups.get(peer_spool)
