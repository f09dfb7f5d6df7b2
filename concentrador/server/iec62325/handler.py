"""One IEC 62325-504 request, from the TLS peer to the (signed) answer.

Order, so that a stranger or a wrong peer gets nothing parsed or stored:
the certificate names the peer (HAND-001 otherwise) and the peer must be
configured for this profile (HAND-003: a v2.3 peer calling 504 is told so);
the body is split (XML in memory, base64 in ``.work/``, both bounded); the
envelope is parsed by the hardened parser; the RequestMessage is read
(every problem an error code from the core's table); the header ``Source``
must name the peer; the signature is checked per the peer's policy and must
be the peer's; only then does the operation run. Each refusal is a SOAP
fault (HTTP 500) with ``FaultMessage/Reply`` FAILED and its code; the
temporary base64 file is always removed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiohttp import web
from lxml import etree

from concentrador.config.model import PeerConfig
from concentrador.protocol import ProtocolError, SoapVersion, parse_envelope
from concentrador.protocol.iec62325.envelope import message_from_body
from concentrador.protocol.iec62325.errors import ErrorCode, Iec62325Error
from concentrador.protocol.iec62325.models import (
    GetRequest,
    ListRequest,
    PutRequest,
    QueryRequest,
    Request,
)
from concentrador.protocol.iec62325.request import read_request_message
from concentrador.protocol.iec62325.response import put_response
from concentrador.protocol.iec62325.wire import PLACEHOLDER
from concentrador.protocol.xmlparse import local_name
from concentrador.server import metering
from concentrador.server.identity import (
    AuthenticationError,
    peer_certificate_der,
    peer_from_certificate,
)
from concentrador.server.iec62325.answers import fault_answer, message_answer
from concentrador.server.iec62325.identity import (
    check_source,
    peer_from_source,
    require_signature,
    verify_signer,
)
from concentrador.server.iec62325.listing import list_answer_body
from concentrador.server.iec62325.peek import BodySource
from concentrador.server.iec62325.putting import receive_put
from concentrador.server.iec62325.query import query_answer
from concentrador.server.iec62325.serving import PreparedGet, prepare_get
from concentrador.server.iec62325.upload import Upload, receive_body
from concentrador.server.state import ServerState

__all__ = ["RebuildLater", "serve_504"]

log = logging.getLogger(__name__)

RebuildLater = Callable[[PeerConfig, str], None]
"""Asks for a block set to be rebuilt without holding the answer (``app._rebuild_later``)."""


def _check_profile(peer: PeerConfig) -> None:
    if not peer.iec62325:
        log.warning("peer %s (CPCSCC v2.3) called the IEC 62325-504 profile; refused", peer.id)
        raise Iec62325Error(
            ErrorCode.NOT_ALLOWED,
            f"this concentrator speaks CPCSCC v2.3 with {peer.id}, not IEC 62325-504; "
            "call its v2.3 endpoint",
        )


def _identify(http: web.BaseRequest, state: ServerState) -> PeerConfig | None:
    if state.insecure_http:
        return None  # development only: the header Source names the peer
    try:
        peer = peer_from_certificate(state.config, peer_certificate_der(http))
    except AuthenticationError as exc:
        raise Iec62325Error(ErrorCode.UNIDENTIFIED, str(exc)) from None
    _check_profile(peer)
    return peer


async def serve_504(
    http: web.BaseRequest,
    state: ServerState,
    source: BodySource,
    version: SoapVersion,
    rebuild_later: RebuildLater,
) -> web.StreamResponse:
    """Answer one 504 request (``version``: the SOAP version the Content-Type says)."""
    upload: Upload | None = None
    prepared: PreparedGet | None = None
    try:
        peer = _identify(http, state)
        work_dir = state.peer_spool(peer).work_dir if peer is not None else state.spool.root
        upload = await receive_body(source.pieces(), work_dir, max_xml=state.max_envelope)
        message, version = _read_message(upload, state.max_envelope, version)
        request = read_request_message(message)
        if peer is None:
            peer = peer_from_source(state.config, request.header)
            _check_profile(peer)
        metering.note(http, operation=f"504:{_operation(request)}", peer=peer.id)
        check_source(state.config, peer, request.header)
        if isinstance(request, PutRequest):
            require_signature(message, peer)
        await asyncio.to_thread(verify_signer, message, peer, state.signer_trust, upload.content())
        if isinstance(request, GetRequest):
            prepared = await prepare_get(http, state, peer, request, version)
        else:
            answer = await _answer(http, state, peer, request, upload, version, rebuild_later)
            metering.note(http, result="OK")
            return answer
        metering.note(http, result="OK")
    except Iec62325Error as exc:
        log.info("504 request refused (%s): %s", exc.code, exc.details)
        metering.note(http, result=exc.code)
        return fault_answer(exc, version)
    except (ConnectionError, asyncio.CancelledError):
        raise
    except Exception:
        log.exception("internal error while serving a 504 request from %s", http.remote)
        metering.note(http, result=ErrorCode.INTERNAL)
        error = Iec62325Error(ErrorCode.INTERNAL, "internal server error; see the server log")
        return fault_answer(error, version)
    finally:
        if upload is not None:
            upload.discard()
    return await prepared.send(http, version)


def _read_message(
    upload: Upload, max_envelope: int, version: SoapVersion
) -> tuple[etree._Element, SoapVersion]:
    try:
        envelope = parse_envelope(upload.xml, max_size=max_envelope + len(PLACEHOLDER))
    except ProtocolError as exc:
        raise Iec62325Error(ErrorCode.UNREADABLE_BODY, str(exc)) from None
    message = message_from_body(envelope.body_elements)
    if message is None or local_name(message) != "RequestMessage":
        raise Iec62325Error(
            ErrorCode.BAD_FORMAT,
            "this is the IEC 62325-504 endpoint: the SOAP Body must hold a msg:RequestMessage",
        )
    return message, envelope.version


def _operation(request: Request) -> str:
    if isinstance(request, ListRequest):
        return "list"
    if isinstance(request, GetRequest):
        return "get"
    if isinstance(request, PutRequest):
        return "put"
    return "query"


async def _answer(
    http: web.BaseRequest,
    state: ServerState,
    peer: PeerConfig,
    request: Request,
    upload: Upload,
    version: SoapVersion,
    rebuild_later: RebuildLater,
) -> web.StreamResponse:
    if isinstance(request, ListRequest):
        body = await asyncio.to_thread(list_answer_body, state, peer, request, version)
        return web.Response(status=200, body=body, headers={"Content-Type": version.content_type})
    if isinstance(request, QueryRequest):
        return await message_answer(state, peer, query_answer(request, state.now()), version)
    assert isinstance(request, PutRequest)
    outcome = await receive_put(
        state,
        peer,
        request,
        upload,
        http.remote,
        now_text=lambda: state.now().strftime("%Y%m%dT%H%M%S%f"),
    )
    if outcome.block_original is not None:
        rebuild_later(peer, outcome.block_original)
    return await message_answer(state, peer, put_response(outcome.name, state.now()), version)
