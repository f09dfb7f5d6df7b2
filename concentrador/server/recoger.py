"""recogerFichero: find the published file a peer asks for (CPCSCC.md §4.3).

Only names the ledger lists as ``published`` *for this peer* are served;
everything else (unknown, confirmed, expired, another peer's, an unsafe name)
is the same ``Client.Fichero`` answer, so a peer cannot probe what exists for
others. The checksum is the one computed once at publication: serving never
re-hashes a file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from concentrador.protocol.faults import Fault, FaultCode
from concentrador.protocol.messages import Fichero, RecogerFicheroResponse
from concentrador.protocol.names import InvalidFileName, validate_peer_filename
from concentrador.server.responses import open_for_serving
from concentrador.spool.layout import PeerSpool, SpoolState

if TYPE_CHECKING:
    from concentrador.spool.ledger import Ledger

__all__ = ["FileNotPublished", "FileToServe", "open_published_file"]

log = logging.getLogger(__name__)


class FileNotPublished(Exception):
    """Answered with ``Client.Fichero``; ``str()`` is the faultstring."""

    def fault(self) -> Fault:
        return Fault(FaultCode.FICHERO, str(self), detail=str(self))


@dataclass
class FileToServe:
    """An open published file, ready to stream. The handle is the caller's to close."""

    name: str
    md5: str
    size: int
    handle: BinaryIO

    def response(self) -> RecogerFicheroResponse:
        return RecogerFicheroResponse(Fichero(self.name, self.md5))


def _not_published(name: str) -> FileNotPublished:
    shown = ascii(name[:80])
    return FileNotPublished(f"the file {shown} is not available")


def open_published_file(ledger: Ledger, peer_spool: PeerSpool, name: str) -> FileToServe:
    """Open ``name`` if it is published for this peer (blocking: run off the loop).

    Raises :class:`FileNotPublished` for anything else. A file whose size no
    longer matches the ledger is refused too (and logged): its recorded MD5
    would be a lie, and the collector would fetch it again and again.
    """
    try:
        validate_peer_filename(name)
    except InvalidFileName as exc:
        log.warning("%s asked for an unsafe name: %s", peer_spool.peer, exc)
        raise _not_published(name) from None
    entry = ledger.lookup(peer_spool.peer, name)
    if entry is None or entry.state != SpoolState.PUBLISHED.value:
        raise _not_published(name)
    path = Path(peer_spool.dir(SpoolState.PUBLISHED)) / name
    try:
        handle, size = open_for_serving(path)
    except FileNotFoundError:
        # Confirmed or expired a moment ago, or not moved in yet by the
        # publisher (the ledger commits first): either way, not servable now.
        raise _not_published(name) from None
    if size != entry.size:
        handle.close()
        log.error(
            "%s/%s is %d bytes but was published as %d; not served",
            peer_spool.dir(SpoolState.PUBLISHED),
            name,
            size,
            entry.size,
        )
        raise _not_published(name)
    return FileToServe(name, entry.md5, size, handle)
