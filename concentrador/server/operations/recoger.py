"""recogerFichero: find the published file a peer asks for (CPCSCC.md §4.3).

Only names the ledger lists as ``published`` *for this peer* are served;
everything else (unknown, confirmed, expired, another peer's, an unsafe name)
is the same ``Client.Fichero`` answer, so a peer cannot probe what exists for
others. The checksum is the one computed once at publication: serving never
re-hashes a file.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from concentrador.protocol import (
    Fault,
    FaultCode,
    Fichero,
    InvalidFileName,
    RecogerFicheroResponse,
    validate_peer_filename,
)
from concentrador.server.responses import open_for_serving, read_exactly
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
    """A published file, ready to stream. The handle is the caller's to close.

    ``head`` holds the first bytes when they were read along with the open
    (see :func:`open_published_file`); when it is the whole file the handle
    is already closed and nothing is left to read.
    """

    name: str
    md5: str
    size: int
    handle: BinaryIO
    head: bytes = b""

    @property
    def complete(self) -> bool:
        """True when ``head`` is the whole file (and the handle is closed)."""
        return len(self.head) == self.size

    def response(self) -> RecogerFicheroResponse:
        return RecogerFicheroResponse(Fichero(self.name, self.md5))


def _not_published(name: str) -> FileNotPublished:
    shown = ascii(name[:80])
    return FileNotPublished(f"the file {shown} is not available")


@functools.lru_cache(maxsize=256)
def _published_dir(peer_spool: PeerSpool) -> str:
    """The peer's ``published/`` as a string, once per :class:`PeerSpool` (the
    server keeps one per peer): two ``Path`` joins a request were ~0.5 % of a
    small file's server CPU. Keyed by the object, so a swapped spool misses."""
    return os.fspath(peer_spool.dir(SpoolState.PUBLISHED))


def open_published_file(
    ledger: Ledger,
    peer_spool: PeerSpool,
    name: str,
    *,
    read_ahead: int = 0,
    remote: str | None = None,
) -> FileToServe:
    """Open ``name`` if it is published for this peer (blocking: run off the loop).

    ``read_ahead`` bytes (at most) are read right away into ``head``, in the
    same thread hop as the lookup and the open: most published files are a
    few KB, and serving them then needs no further hop at all.

    Raises :class:`FileNotPublished` for anything else. A file whose size no
    longer matches the ledger is refused too (and logged): its recorded MD5
    would be a lie, and the collector would fetch it again and again.
    A file served gets a ``fetched`` event (with ``remote``) in its audit trail.
    """
    try:
        validate_peer_filename(name)
    except InvalidFileName as exc:
        log.warning("%s asked for an unsafe name: %s", peer_spool.peer, exc)
        raise _not_published(name) from None
    entry = ledger.lookup(peer_spool.peer, name)
    if entry is None or entry.state != SpoolState.PUBLISHED.value:
        raise _not_published(name)
    path = os.path.join(_published_dir(peer_spool), name)
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
    head = b""
    if read_ahead > 0:
        try:
            head = read_exactly(handle, min(read_ahead, size), close=read_ahead >= size)
        except BaseException:
            handle.close()
            raise
    ledger.note_fetched(peer_spool.peer, name, remote, (entry.original, entry.size))
    return FileToServe(name, entry.md5, size, handle, head)
