"""``put``: a file a peer sends, stored through the same checks as enviarFichero.

By the time this runs the body is split (:mod:`.upload`: the base64 text in a
temporary file) and the signature is verified over the text exactly as sent.
Then one pass decodes the text into the :class:`InboundStore`'s writer, and
the checks shared with enviarFichero (:mod:`concentrador.server.operations.enviar`:
``admit``, ``refusal``, ``store_received``) decide, in the same order: size
(at most ``MAX_FILE_SIZE``, PUT-018), name safety (PUT-010), participant
(PUT-008), type (PUT-005), then storage (``inbox/``, or ``manual/`` outside
the load window; PUT-009 when it fails). A name refused by the checks that
need only the name is decoded (for the size check and base64 validity) but
never written.

Payloads (Decisions): Format BINARY is the file itself (a ``.bz2`` as
published); Format XML with ``Compressed`` is a gzip-compressed XML
document, stored decompressed; an XML document inline (``Payload/any``) is
stored as the document, UTF-8. The name of an XML document is its
``Request/ID idType="name"``, else its ``MessageIdentification`` (+
``.xml``), else one made from the noun and the time.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from lxml import etree

from concentrador.config.model import PeerConfig
from concentrador.protocol import PushResult
from concentrador.protocol.iec62325.errors import ErrorCode, Iec62325Error
from concentrador.protocol.iec62325.models import PutRequest
from concentrador.protocol.iec62325.streaming import Base64Decoder, Base64Error
from concentrador.protocol.iec62325.wire import MAX_FILE_SIZE, PayloadFormat
from concentrador.protocol.xmlparse import local_name
from concentrador.server.iec62325.upload import Upload
from concentrador.server.operations.enviar import (
    Admission,
    ReceiveContext,
    admit,
    receive_context,
    refusal,
    store_received,
)
from concentrador.server.state import ServerState
from concentrador.spool.inbound.store import InboundWriter

__all__ = ["PutOutcome", "receive_put", "xml_document_name"]

log = logging.getLogger(__name__)

_REFUSALS: dict[PushResult, tuple[str, str]] = {
    PushResult.GENERIC_ERROR: (ErrorCode.PUT_BAD_NAME, "the file name is not acceptable"),
    PushResult.CHECKSUM_MISMATCH: (ErrorCode.PUT_REJECTED, "the checksum does not match"),
    PushResult.PARTICIPANT_NOT_ALLOWED: (
        ErrorCode.PUT_IDENTITY,
        "this peer may not send files of that participant",
    ),
    PushResult.TYPE_NOT_ALLOWED: (
        ErrorCode.PUT_TYPE_NOT_ALLOWED,
        "this peer may not send files of that type",
    ),
}


@dataclass(frozen=True)
class PutOutcome:
    """A stored put: its name, whether it went to ``manual/``, the block set to rebuild."""

    name: str
    outside_window: bool
    block_original: str | None = None


_GUNZIP_PIECE = 1024 * 1024


class _TooLarge(Exception):
    pass


def xml_document_name(request: PutRequest, now_text: str) -> str:
    """The name an inline or gzip XML document is stored under (see the module doc)."""
    if request.name:
        return request.name
    document = request.document
    if document is not None:
        for element in document.iter():
            if isinstance(element.tag, str) and local_name(element) == "MessageIdentification":
                value = (element.get("v") or element.text or "").strip()
                if value:
                    return f"{value}.xml"
    noun = "".join(c for c in request.header.noun if c.isalnum())[:40] or "document"
    return f"{noun}_{now_text}.xml"


def _pieces(request: PutRequest, upload: Upload) -> Iterable[bytes]:
    if request.document is not None:
        # The document taken as its own one: the namespaces it uses come along.
        own = copy.deepcopy(request.document)
        yield etree.tostring(own, xml_declaration=True, encoding="UTF-8")
        return
    decoder = Base64Decoder()
    gzip = zlib.decompressobj(wbits=31) if request.format is PayloadFormat.XML else None
    for text in upload.content():
        data = decoder.feed(text)
        if gzip is None:
            yield data
            continue
        # Bounded output per call: a gzip bomb is stopped by the size check.
        out = gzip.decompress(data, _GUNZIP_PIECE)
        yield out
        while gzip.unconsumed_tail:
            yield gzip.decompress(gzip.unconsumed_tail, _GUNZIP_PIECE)
    decoder.finish()
    if gzip is not None:
        yield gzip.flush()
    if gzip is not None and not gzip.eof:
        raise Base64Error("the gzip data is truncated")


def _decode(request: PutRequest, upload: Upload, writer: InboundWriter | None) -> int:
    """The one decoding pass (blocking); returns the size. Raises PUT-011 / PUT-018."""
    size = 0
    try:
        for data in _pieces(request, upload):
            size += len(data)
            if size > MAX_FILE_SIZE:
                raise _TooLarge()
            if writer is not None and data:
                writer.write(data)
    except _TooLarge:
        raise Iec62325Error(
            ErrorCode.PUT_TOO_LARGE,
            f"the file is larger than the {MAX_FILE_SIZE} bytes allowed",
        ) from None
    except (Base64Error, zlib.error) as exc:
        raise Iec62325Error(ErrorCode.PUT_BAD_BINARY, f"invalid payload: {exc}") from None
    return size


def _open_writer(context: ReceiveContext, name: str, admission: Admission) -> InboundWriter | None:
    if not admission.storable:
        return None
    try:
        return context.store.open(name, manual=context.outside_window)
    except OSError as exc:
        log.error("%s: could not store %s: %s", context.peer.id, name, exc)
        raise Iec62325Error(ErrorCode.PUT_STORE_FAILED, "the file could not be stored") from None


async def receive_put(
    state: ServerState,
    peer: PeerConfig,
    request: PutRequest,
    upload: Upload,
    remote: str | None,
    *,
    now_text: Callable[[], str],
) -> PutOutcome:
    """Decode, check and store the put; raises :class:`Iec62325Error` (nothing stored)."""
    binary = request.document is None
    if binary and upload.content_length == 0:
        raise Iec62325Error(ErrorCode.PUT_NO_PAYLOAD, "Payload/Compressed is empty")
    name = request.name if request.format is PayloadFormat.BINARY and binary else None
    name = name or xml_document_name(request, now_text())
    context = receive_context(state, peer, remote)
    admission = admit(context, name)
    writer = await asyncio.to_thread(_open_writer, context, name, admission)
    try:
        await asyncio.to_thread(_decode, request, upload, writer)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    result = refusal(context, name, admission, None, writer.md5 if writer else None)
    if result is not None or writer is None:
        if writer is not None:
            writer.abort()
        code, text = _REFUSALS.get(
            result or PushResult.GENERIC_ERROR, _REFUSALS[PushResult.GENERIC_ERROR]
        )
        raise Iec62325Error(code, f"{text}: {name[:80]!a}")
    outcome = await store_received(context, writer, name)
    if not outcome.result.delivered:
        raise Iec62325Error(ErrorCode.PUT_STORE_FAILED, "the file could not be stored")
    return PutOutcome(name, context.outside_window, outcome.block_original)
