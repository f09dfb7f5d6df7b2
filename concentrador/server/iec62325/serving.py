"""``get``: a published file, by code or by identification (+ version), streamed.

Only what the ledger lists as ``published`` for this peer is served, as for
recogerFichero (whose lookup, open and size check are reused): anything else
is GET-006, so a peer cannot probe what exists for others. The answer is the
file's ``.bz2`` bytes as base64 in ``Payload/Compressed`` (Format BINARY,
``Reply/ID idType="name"`` its name), signed and streamed (:mod:`.stream`).

The answer is the stored message (Decision in docs/protocol.md): its Header
Timestamp is the publication time and its Source our node id, so its digest
is a function of the file, computed once
(:mod:`concentrador.spool.outbound.answer_digests`, by the publish pass or
by the first get) and kept in the ledger. A get that finds it, computed
around the very canonical bytes it builds now, signs it and reads the file
once; otherwise it computes it (pass 1, then stored) and streams (pass 2).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import BinaryIO

from aiohttp import web

from concentrador.config.model import PeerConfig
from concentrador.protocol import SoapVersion
from concentrador.protocol.iec62325.envelope import build_504_envelope, split_at_placeholder
from concentrador.protocol.iec62325.errors import ErrorCode, Iec62325Error
from concentrador.protocol.iec62325.models import GetRequest
from concentrador.protocol.iec62325.signature import canonical_parts, sign
from concentrador.server.iec62325.answers import our_signing_key
from concentrador.server.iec62325.stream import file_digest, stream_base64_answer
from concentrador.server.operations.recoger import (
    FileNotPublished,
    FileToServe,
    open_published_file,
)
from concentrador.server.state import ServerState
from concentrador.spool.ledger.answers import AnswerDigest
from concentrador.spool.ledger.codes import CodedEntry
from concentrador.spool.outbound.answer_digests import published_answer

__all__ = ["PreparedGet", "prepare_get"]

log = logging.getLogger(__name__)


def _not_found(request: GetRequest) -> Iec62325Error:
    if request.code is not None:
        what = f"code {request.code}"
    else:
        what = f"identification {(request.message_identification or '')[:80]!a}"
        if request.message_version is not None:
            what += f" version {request.message_version}"
    return Iec62325Error(ErrorCode.GET_NOT_FOUND, f"the requested message ({what}) does not exist")


def _find(state: ServerState, peer: PeerConfig, request: GetRequest) -> CodedEntry | None:
    ledger = state.ledger
    if request.code is not None:
        return ledger.coded_entry(peer.id, request.code)
    if request.message_version not in (None, 1):
        return None  # every message we publish has version 1
    if request.message_identification is None:
        return None
    return ledger.coded_entry_by_name(peer.id, request.message_identification)


@dataclass
class _Found:
    entry: CodedEntry
    served: FileToServe
    stored: AnswerDigest | None
    """The answer digest kept for this publication, if any (not yet checked
    against the canonical parts of the answer built now)."""


def _open(
    state: ServerState, peer: PeerConfig, request: GetRequest, remote: str | None, signed: bool
) -> _Found:
    """Look the message up, open its file, find its stored digest (blocking, one hop)."""
    entry = _find(state, peer, request)
    if entry is None:
        raise _not_found(request)
    ledger = state.ledger
    try:
        served = open_published_file(ledger, state.peer_spool(peer), entry.name, remote=remote)
    except FileNotPublished:
        raise _not_found(request) from None
    stored = None
    if signed and served.md5 == entry.md5:  # else: replaced since _find; compute anew
        try:
            stored = ledger.answer_digest(
                peer.id, entry.name, published_at=entry.published_at, md5=entry.md5
            )
        except BaseException:
            served.handle.close()
            raise
    return _Found(entry, served, stored)


def _store(state: ServerState, peer: PeerConfig, found: _Found, before: bytes,
           after: bytes, digest: bytes) -> None:  # fmt: skip
    """Keep the digest of pass 1, so that the next get of this file needs no pass 1."""
    entry = found.entry
    if found.served.md5 != entry.md5:
        return  # the file was replaced between the lookups: this digest is of neither
    row = AnswerDigest.of(peer.id, entry.name, entry.published_at, entry.md5, before, after, digest)
    try:
        state.ledger.record_answer_digest(row)
    except Exception:  # only a head start for the next get: this answer is fine
        log.warning("%s: answer digest of %s not stored", peer.id, entry.name, exc_info=True)


def _digest(
    state: ServerState, peer: PeerConfig, found: _Found, before: bytes, after: bytes
) -> bytes:
    """Pass 1 (blocking), then store its result."""
    served = found.served
    digest = file_digest(served.handle, served.size, before, after)
    _store(state, peer, found, before, after, digest)
    return digest


@dataclass
class PreparedGet:
    """A get answer ready to stream: the envelope around the content, the open file."""

    prefix: bytes
    handle: BinaryIO
    size: int
    suffix: bytes

    async def send(self, http: web.BaseRequest, version: SoapVersion) -> web.StreamResponse:
        """Pass 2 (closes the file). Past this point no fault can be answered."""
        return await stream_base64_answer(
            http, self.prefix, self.handle, self.size, self.suffix,
            content_type=version.content_type,
        )  # fmt: skip


async def prepare_get(
    http: web.BaseRequest,
    state: ServerState,
    peer: PeerConfig,
    request: GetRequest,
    version: SoapVersion,
) -> PreparedGet:
    """Find and open the file, sign the answer (pass 1); raises :class:`Iec62325Error`."""
    key = our_signing_key(state, peer)
    found = await asyncio.to_thread(_open, state, peer, request, http.remote, key is not None)
    served = found.served
    handle = served.handle
    try:
        entry = found.entry
        message = published_answer(entry.name, entry.published_at, state.config.node.id)
        if key is not None:
            before, after = canonical_parts(message)
            if found.stored is not None and found.stored.fits(before, after):
                digest = found.stored.digest  # one pass: the file is read only to send it
            else:
                try:
                    digest = await asyncio.to_thread(_digest, state, peer, found, before, after)
                except OSError as exc:
                    raise Iec62325Error(
                        ErrorCode.GET_FILE_READ_FAILED, "the file could not be read"
                    ) from exc
            sign(message, key, digest)
        prefix, suffix = split_at_placeholder(build_504_envelope(message, version))
    except BaseException:
        handle.close()
        raise
    return PreparedGet(prefix, handle, served.size, suffix)
