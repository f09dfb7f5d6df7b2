"""The 504 get answer of a published file, and its digest computed once, like its MD5.

Decision (docs/protocol.md, 504 "Server and client behaviour"): the answer to
a ``get`` of a published file is the stored message. Its Header Timestamp is
the file's publication time and its Source our node id, so the whole answer
but the SignatureValue is a function of the file, and so is the reference
digest of its signature: SHA-256 of the canonical message before the content,
the base64 of the file, and the canonical message after it.

Computing that digest reads and base64-encodes the whole file before the
first byte of the answer can go out (the signature sits in the Header, ahead
of the payload). So it is computed once and kept in the ledger
(:mod:`concentrador.spool.ledger.answers`): ahead of time by
:func:`warm_answer_digests`, the follow-up step of a 504 peer's publish pass
(on the spool's thread pool, under the publish claim; the file was just
written, so it is read from the page cache), or else by the first get. A get
that finds it signs it and streams the file once.

The answer is built here (not in the server) so that the server and this
pass build the very same bytes; the server still checks the stored hashes of
``before``/``after`` against the answer it builds, and computes the digest
itself when they differ.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from datetime import datetime

from lxml import etree

# SIMD base64 (pybase64): the same bytes as the standard library's at about
# half the CPU; the base64 of every byte of the file is most of this cost.
from pybase64 import b64encode

from concentrador.config.model import Config, PeerConfig
from concentrador.protocol.iec62325.response import binary_get_response
from concentrador.protocol.iec62325.signature import canonical_parts
from concentrador.spool.layout import PeerSpool, SpoolState
from concentrador.spool.ledger import Ledger
from concentrador.spool.ledger.answers import AnswerDigest
from concentrador.spool.outbound.publisher import PublishResult

__all__ = [
    "DIGEST_PIECE",
    "answer_digest_of",
    "answer_parts",
    "published_answer",
    "warm_answer_digests",
]

log = logging.getLogger(__name__)

DIGEST_PIECE = 1536 * 1024
"""File bytes per read and hash (a multiple of 3, so each piece's base64 is
final): fewer, larger hashes cost ~0.4 s less CPU per GB than 192 KiB pieces."""


def published_answer(name: str, published_at: datetime, node_id: str) -> etree._Element:
    """The (unsigned) ResponseMessage answering a get of published ``name``;
    ``Payload/Compressed`` holds the placeholder for the streamed base64."""
    return binary_get_response(name, published_at, source=node_id)


def answer_parts(name: str, published_at: datetime, node_id: str) -> tuple[bytes, bytes]:
    """The canonical bytes before and after the content of :func:`published_answer`."""
    return canonical_parts(published_answer(name, published_at, node_id))


def answer_digest_of(
    read: Callable[[int], bytes],
    size: int,
    before: bytes,
    after: bytes,
    *,
    piece: int = DIGEST_PIECE,
) -> bytes:
    """SHA-256 of ``before`` + base64 of ``size`` bytes from ``read`` + ``after``.

    ``read(n)`` must return exactly ``n`` bytes (or raise). The same digest as
    ``signature.content_digest`` without its checks, which look for line ends
    and non-base64 bytes in text a peer sent: our own base64 (no line breaks)
    is already its canonical form.
    """
    if piece <= 0 or piece % 3:
        raise ValueError("the piece size must be a positive multiple of 3")
    digest = hashlib.sha256(before)
    remaining = size
    while remaining:
        wanted = min(piece, remaining)
        digest.update(b64encode(read(wanted)))
        remaining -= wanted
    digest.update(after)
    return digest.digest()


def _signed_504(config: Config, peer: PeerConfig) -> bool:
    return peer.iec62325 and peer.signatures != "off" and config.signing is not None


def _compute(ledger: Ledger, peer_spool: PeerSpool, name: str, node_id: str) -> AnswerDigest | None:
    entry = ledger.lookup(peer_spool.peer, name)
    if entry is None or entry.state != SpoolState.PUBLISHED.value:
        return None  # a push peer's file, or gone already: never served by a get
    before, after = answer_parts(name, entry.published_at, node_id)
    stored = ledger.answer_digest(
        peer_spool.peer, name, published_at=entry.published_at, md5=entry.md5
    )
    if stored is not None and stored.fits(before, after):
        return None  # a get got there first
    path = peer_spool.dir(SpoolState.PUBLISHED) / name
    with open(path, "rb") as handle:

        def read(wanted: int) -> bytes:
            data = handle.read(wanted)
            if len(data) != wanted:
                raise OSError(f"{path}: expected {wanted} more bytes, got {len(data)}")
            return data

        digest = answer_digest_of(read, entry.size, before, after)
    row = AnswerDigest.of(
        peer_spool.peer, name, entry.published_at, entry.md5, before, after, digest
    )
    ledger.record_answer_digest(row)
    return row


def warm_answer_digests(
    config: Config, ledger: Ledger, peer_spool: PeerSpool, results: Iterable[PublishResult]
) -> int:
    """Compute and store the get answer digests of what a publish pass just
    published for ``peer_spool``'s peer; returns how many. Blocking (the
    spool's threads).

    Only for a 504 peer whose answers we sign (``signatures`` not ``off``, a
    signing key configured): for anyone else a get needs no digest. Never
    raises: the digest is only a head start, and a get without it computes
    it (logged; the publish pass goes on).
    """
    peer = config.peer_by_id(peer_spool.peer)
    if peer is None or not _signed_504(config, peer):
        return 0
    names = [b.name for r in results if r.state == SpoolState.PUBLISHED for b in r.blocks]
    if not names:
        return 0
    done = 0
    for name in names:
        try:
            if _compute(ledger, peer_spool, name, config.node.id) is not None:
                done += 1
        except FileNotFoundError:
            continue  # fetched and confirmed already, or expired
        except Exception:
            log.exception("%s: answer digest of %s not computed", peer.id, name)
    # Rows of files since re-published, replaced or gone: a tidy table, not a
    # correctness matter (a get only uses the row of the current publication).
    try:
        ledger.forget_stale_answer_digests(peer.id)
    except Exception:
        log.exception("%s: stale answer digests not deleted", peer.id)
    return done
