"""``get``: a published file, by code or by identification (+ version), streamed.

Only what the ledger lists as ``published`` for this peer is served, as for
recogerFichero (whose lookup, open and size check are reused): anything else
is GET-006, so a peer cannot probe what exists for others. The answer is the
file's ``.bz2`` bytes as base64 in ``Payload/Compressed`` (Format BINARY,
``Reply/ID idType="name"`` its name), signed with the digest of pass 1 and
streamed in pass 2 (:mod:`.stream`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import BinaryIO

from aiohttp import web

from concentrador.config.model import PeerConfig
from concentrador.protocol import SoapVersion
from concentrador.protocol.iec62325.envelope import build_504_envelope, split_at_placeholder
from concentrador.protocol.iec62325.errors import ErrorCode, Iec62325Error
from concentrador.protocol.iec62325.models import GetRequest
from concentrador.protocol.iec62325.response import binary_get_response
from concentrador.protocol.iec62325.signature import canonical_parts, sign
from concentrador.server.iec62325.answers import our_signing_key
from concentrador.server.iec62325.stream import file_digest, stream_base64_answer
from concentrador.server.operations.recoger import (
    FileNotPublished,
    FileToServe,
    open_published_file,
)
from concentrador.server.state import ServerState
from concentrador.spool.ledger.codes import CodedEntry

__all__ = ["PreparedGet", "prepare_get"]


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


def _open(
    state: ServerState, peer: PeerConfig, request: GetRequest, remote: str | None
) -> FileToServe:
    """Look the message up and open its file (blocking)."""
    entry = _find(state, peer, request)
    if entry is None:
        raise _not_found(request)
    try:
        return open_published_file(state.ledger, state.peer_spool(peer), entry.name, remote=remote)
    except FileNotPublished:
        raise _not_found(request) from None


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
    served = await asyncio.to_thread(_open, state, peer, request, http.remote)
    handle = served.handle
    try:
        message = binary_get_response(served.name, state.now())
        if key is not None:
            before, after = canonical_parts(message)
            try:
                digest = await asyncio.to_thread(file_digest, handle, served.size, before, after)
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
