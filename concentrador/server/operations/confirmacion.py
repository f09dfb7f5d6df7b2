"""confirmacionRecepcionFichero: the peer has the file (CPCSCC.md §4.4).

Code 0 on a published original moves it and all its blocks from
``published/`` to ``delivered/`` and marks them delivered in the ledger.
The ledger update comes first, as with the publisher: it is the commit point
(after it the file is no longer listed or served); the moves follow under the
peer lock, and a move that finds the file already gone is simply done.

Codes 1 and 2 are logged and answered 0; the file stays published. Anything
else (an unknown name, another peer's, an unsafe name, a single block, a
code outside 0-2) is answered codigo 1.
"""

from __future__ import annotations

import logging
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
from concentrador.spool.durable import move_aside, sync_folders
from concentrador.spool.layout import PeerSpool, SpoolState
from concentrador.spool.locks import peer_lock

if TYPE_CHECKING:
    from concentrador.spool.ledger import Ledger

__all__ = ["confirm_reception"]

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
        log.warning(
            "%s reports %s for %s (code %d); it stays published",
            peer,
            "a checksum failure" if code == ConfirmationCode.CHECKSUM_FAILED else "an error",
            name,
            code,
        )
        return _answer(ConfirmationResult.ACCEPTED)
    if code != ConfirmationCode.RECEIVED:
        log.warning("%s sent codConfirmacion %d for %s, which means nothing", peer, code, name)
        return _answer(ConfirmationResult.ERROR)

    published = peer_spool.dir(SpoolState.PUBLISHED)
    delivered = peer_spool.dir(SpoolState.DELIVERED)
    with peer_lock(peer_spool):
        # Re-read under the lock: an expiry run may have moved the file to
        # expired/ since the check above; marking it delivered then would
        # leave the ledger contradicting the folders.
        entries = [e for e in ledger.entries_of(peer, name) if e.state == _PUBLISHED]
        if not entries:
            log.info("%s confirmed %s, no longer published (expired or confirmed)", peer, name)
            return _answer(ConfirmationResult.ERROR)
        ledger.set_state(peer, name, _DELIVERED)
        delivered.mkdir(parents=True, exist_ok=True)
        moved = 0
        for entry in entries:
            source = published / entry.name
            try:
                # move_aside never overwrites: a clash (an operator re-used a
                # name) keeps both files, the new one with a time stamp.
                move_aside(source, delivered, sync=False)
                moved += 1
            except FileNotFoundError:
                log.info("%s was already gone from %s", entry.name, published)
        if moved:
            # One fsync per folder for all the blocks of the file, before we
            # answer: the moves are as durable as one durable_move each.
            sync_folders(delivered, published)
    log.info("%s confirmed %s (%d file(s) delivered)", peer, name, len(entries))
    return _answer(ConfirmationResult.ACCEPTED)
