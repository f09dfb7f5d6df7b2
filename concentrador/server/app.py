"""The aiohttp application: HTTP in, core models, HTTP out.

Handlers stay thin: they identify the peer, turn the body into a core
request model, call one small operation function (``fecha_hora``,
``informacion``, ``recoger``, ``confirmacion``, ``enviar``) and turn its
result into an HTTP answer. Every error a peer can cause becomes a SOAP
fault with HTTP 500, in the SOAP version the request used; anything else is
logged with its traceback and answered ``Server.Generico``, and the server
keeps serving.

Routes: ``POST`` on any path (peers are configured with all sorts of URLs),
and ``GET ...?wsdl`` for the WSDL, whose ``soap:address`` is ``[server]
public_url``, or else made from the request with its ``Host`` checked
(:mod:`concentrador.server.service_address`).
"""

from __future__ import annotations

import asyncio
import functools
import logging

from aiohttp import web

from concentrador.config.model import PeerConfig
from concentrador.protocol import (
    DIME_CONTENT_TYPE,
    SOAP11,
    ConfirmacionRecepcionFichero,
    ConfirmacionRecepcionFicheroResponse,
    Envelope,
    EnviarFichero,
    EnviarFicheroResponse,
    Fault,
    FaultCode,
    InformacionDisponible,
    Operation,
    ProtocolError,
    RecogerFichero,
    SoapVersion,
    build_envelope,
    fault_for_error,
    listing_envelope,
    parse_envelope,
    read_request,
    recoger_response,
    render_wsdl,
)
from concentrador.protocol.iec62325.wsdl import render_504_wsdl
from concentrador.server import metering
from concentrador.server.body import IncomingDime
from concentrador.server.identity import (
    AuthenticationError,
    check_header_id,
    peer_certificate_der,
    peer_from_certificate,
    peer_from_header,
)
from concentrador.server.iec62325.address import public_url_504
from concentrador.server.iec62325.handler import serve_504
from concentrador.server.iec62325.peek import BodySource, is_504_message, read_or_peek
from concentrador.server.operations.confirmacion import confirm_reception
from concentrador.server.operations.enviar import receive_context, receive_file
from concentrador.server.operations.fecha_hora import current_time
from concentrador.server.operations.informacion import published_listing
from concentrador.server.operations.recoger import FileNotPublished, open_published_file
from concentrador.server.responses import (
    dime_file_response,
    envelope_response,
    fault_response,
    soap_response,
    stream_dime_file,
)
from concentrador.server.service_address import service_address
from concentrador.server.state import ServerState

__all__ = ["STATE_KEY", "build_app", "wait_for_background"]

log = logging.getLogger(__name__)

STATE_KEY = web.AppKey("concentrador_state", ServerState)
_BACKGROUND_KEY = web.AppKey("concentrador_background", set)


def build_app(state: ServerState, *, metrics: bool = True) -> web.Application:
    """The CPCSCC server application over ``state`` (no listener: see ``tls.py``);
    ``metrics=False`` leaves out the request metrics (benches measure their cost)."""
    state.spool.ensure([peer.id for peer in state.config.peers])
    # client_max_size bounds request.read()/post(); we stream instead, but a
    # stray use must not be able to buffer more than an envelope.
    app = web.Application(client_max_size=state.max_envelope)
    app[STATE_KEY] = state
    app[_BACKGROUND_KEY] = set()
    if metrics:
        app.middlewares.append(metering.metering_middleware)
    app.router.add_post("/{tail:.*}", handle_post)
    app.router.add_get("/{tail:.*}", handle_get)
    app.on_cleanup.append(wait_for_background)
    return app


async def wait_for_background(app: web.Application) -> None:
    """Wait for background work (rebuild requests) started by earlier requests."""
    tasks = app[_BACKGROUND_KEY]
    while tasks:
        await asyncio.gather(*list(tasks), return_exceptions=True)


# --------------------------------------------------------------------- GET


async def handle_get(request: web.Request) -> web.StreamResponse:
    if not any(key.lower() == "wsdl" for key in request.query):
        raise web.HTTPNotFound(text="CPCSCC endpoint: POST SOAP requests here, or GET ?wsdl\n")
    state = request.app[STATE_KEY]
    server = state.config.server
    iec62325 = request.path == server.iec62325_path
    public_url = public_url_504(server) if iec62325 else server.public_url
    location = service_address(request, public_url)
    try:
        wsdl = render_504_wsdl(location) if iec62325 else render_wsdl(location)
    except ProtocolError as exc:
        raise web.HTTPBadRequest(text=f"{exc}\n") from None
    return web.Response(body=wsdl, headers={"Content-Type": "text/xml; charset=utf-8"})


# -------------------------------------------------------------------- POST


async def handle_post(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    # Until the envelope is parsed, answer in the version the Content-Type says.
    version = SoapVersion.from_content_type(request.headers.get("Content-Type")) or SOAP11
    try:
        if request.path == state.config.server.iec62325_path:
            return await _iec62325(request, state, BodySource(request), version)
        peer: PeerConfig | None = None
        if not state.insecure_http:
            # Before reading the body: a stranger gets nothing parsed or stored.
            peer = peer_from_certificate(state.config, peer_certificate_der(request))
        if request.content_type == DIME_CONTENT_TYPE:
            incoming = IncomingDime(request, state.dime_limits)
            raw = await incoming.read_envelope()
            envelope = parse_envelope(raw, max_size=state.dime_limits.max_envelope)
            version = envelope.version
            peer = _authenticate(state, peer, envelope)
            return await _dime_request(request, state, peer, envelope, incoming)
        body, source = await read_or_peek(request, state.max_envelope)
        if source is not None:  # a big 504 request (a put) at a v2.3 path
            return await _iec62325(request, state, source, version)
        assert body is not None
        envelope = parse_envelope(body, max_size=state.max_envelope)
        version = envelope.version
        if is_504_message(envelope):
            return await _iec62325(request, state, BodySource(request, [body]), version)
        peer = _authenticate(state, peer, envelope)
        operation, message = read_request(
            envelope, request.headers.get("SOAPAction"), has_attachment=False
        )
        return await _run(request, state, peer, version, operation, message)
    except AuthenticationError as exc:
        return _refuse(request, Fault(FaultCode.AUTENTICACION, str(exc)), version)
    except FileNotPublished as exc:
        return _refuse(request, exc.fault(), version)
    except ProtocolError as exc:
        # Raised while processing what the peer sent: §3 wants a detail.
        fault = fault_for_error(exc)
        # Header problems (MustUnderstand) must not carry a detail (SOAP 1.1 §4.4).
        if fault.detail is None and getattr(exc, "fault_from_body", True):
            fault = Fault(fault.code, fault.string, fault.string)
        log.info("request refused (%s): %s", fault.code, fault.string)
        return _refuse(request, fault, version)
    except (ConnectionError, asyncio.CancelledError):
        raise
    except Exception:
        log.exception("internal error while serving %s", request.remote)
        return _refuse(
            request, Fault(FaultCode.GENERICO, "internal server error; see the server log"), version
        )


def _refuse(request: web.Request, fault: Fault, version: SoapVersion) -> web.Response:
    metering.note(request, result=fault.code)
    return fault_response(fault, version)


def _authenticate(state: ServerState, peer: PeerConfig | None, envelope: Envelope) -> PeerConfig:
    if envelope.must_understand:
        raise _MustUnderstand(envelope.must_understand)
    if peer is None:
        peer = peer_from_header(state.config, envelope.concentrador_id)
    else:
        check_header_id(peer, envelope.concentrador_id)
    if peer.iec62325:
        raise _WrongProfile(peer, state.config.server.iec62325_path)
    return peer


async def _iec62325(
    request: web.Request, state: ServerState, source: BodySource, version: SoapVersion
) -> web.StreamResponse:
    def rebuild_later(peer: PeerConfig, original: str) -> None:
        _rebuild_later(request.app, state, peer, original)

    return await serve_504(request, state, source, version, rebuild_later)


class _WrongProfile(ProtocolError):
    """A peer configured for IEC 62325-504 called a CPCSCC v2.3 operation."""

    fault_code = FaultCode.CLIENT
    fault_from_body = True

    def __init__(self, peer: PeerConfig, path: str) -> None:
        super().__init__(
            f"this concentrator speaks IEC 62325-504 (CPCSCC v3.0) with {peer.id}, "
            f"not CPCSCC v2.3: send RequestMessages to {path}"
        )


class _MustUnderstand(ProtocolError):
    fault_code = FaultCode.MUST_UNDERSTAND
    fault_from_body = False

    def __init__(self, headers: list[str]) -> None:
        super().__init__(f"header block {headers[0][:120]} must be understood but is not known")


async def _dime_request(
    request: web.Request,
    state: ServerState,
    peer: PeerConfig,
    envelope: Envelope,
    incoming: IncomingDime,
) -> web.StreamResponse:
    operation, message = read_request(
        envelope, request.headers.get("SOAPAction"), has_attachment=True
    )
    metering.note(request, operation=operation, peer=peer.id)
    if operation is not Operation.ENVIAR_FICHERO:
        # Some stacks send every call as DIME; only enviarFichero uses the
        # attachment, anything else is skipped (bounded by the DIME limits).
        await incoming.finish()
        return await _run(request, state, peer, envelope.version, operation, message)
    assert isinstance(message, EnviarFichero)
    context = receive_context(state, peer, request.remote)
    outcome = await receive_file(context, message.fichero, incoming)
    if outcome.block_original is not None:
        _rebuild_later(request.app, state, peer, outcome.block_original)
    answer = EnviarFicheroResponse(int(outcome.result))
    metering.note(request, result=int(outcome.result))
    return soap_response(answer.to_xml(), envelope.version)


async def _run(
    request: web.Request,
    state: ServerState,
    peer: PeerConfig,
    version: SoapVersion,
    operation: Operation,
    message: object,
) -> web.StreamResponse:
    """One operation whose request carried no file."""
    metering.note(request, operation=operation, peer=peer.id)
    peer_spool = state.peer_spool(peer)
    if operation is Operation.PETICION_FECHA_HORA:
        answer = current_time(state.now(), state.config.node.timezone)
        return soap_response(answer.to_xml(), version)
    if operation is Operation.INFORMACION_DISPONIBLE:
        assert isinstance(message, InformacionDisponible)
        message.validate()  # Client.TOD before touching the ledger
        envelope = await asyncio.to_thread(
            _listing, state, peer.id, message, version, request.remote
        )
        return envelope_response(envelope, version)
    if operation is Operation.RECOGER_FICHERO:
        assert isinstance(message, RecogerFichero)
        # One thread hop looks the file up, opens it and reads its first
        # piece: a small file is then answered in one write, with no more hops.
        served = await asyncio.to_thread(
            open_published_file,
            state.ledger,
            peer_spool,
            message.nombre_fichero,
            read_ahead=state.read_piece,
            remote=request.remote,
        )
        fichero = served.response().fichero
        assert fichero is not None  # a served file always has its name and MD5
        # From a frame, not lxml: one per file (see protocol/messages/frames.py).
        envelope = recoger_response(fichero, version)
        # DEBUG: the confirmation logs the file's one INFO line (and the trail
        # records the fetch); a second line per file costs ~5 % of a small file's CPU.
        log.debug("%s: serving %s (%d bytes)", peer.id, served.name, served.size)
        if served.complete:
            return dime_file_response(envelope, served.head)
        return await stream_dime_file(
            request,
            envelope,
            served.handle,
            served.size,
            piece_size=state.read_piece,
            head=served.head,
        )
    if operation is Operation.CONFIRMACION_RECEPCION_FICHERO:
        assert isinstance(message, ConfirmacionRecepcionFichero)
        confirmed = await asyncio.to_thread(confirm_reception, state.ledger, peer_spool, message)
        return envelope_response(_fixed_answer(confirmed, version), version)
    raise _NoAttachment()


@functools.lru_cache(maxsize=8)
def _fixed_answer(answer: ConfirmacionRecepcionFicheroResponse, version: SoapVersion) -> bytes:
    """A confirmation's answer (codigo 0 or 1), built once, not once per file."""
    return build_envelope(answer.to_xml(), version=version)


class _NoAttachment(ProtocolError):
    fault_code = FaultCode.CLIENT
    fault_from_body = True

    def __init__(self) -> None:
        super().__init__(
            "enviarFichero must be sent as application/dime with the file as an attachment"
        )


def _listing(
    state: ServerState,
    peer_id: str,
    message: InformacionDisponible,
    version: SoapVersion,
    remote: str | None,
) -> bytes:
    rows = published_listing(state.ledger, peer_id, remote=remote)
    return listing_envelope(message, rows, version)


def _rebuild_later(
    app: web.Application, state: ServerState, peer: PeerConfig, original: str
) -> None:
    """Ask for ``original`` to be rebuilt, without holding the answer.

    The block itself (and, outside the load window, its ledger mark that sends
    the set to ``manual/``) is durable before we answer; the rebuild (up to
    hundreds of MB of reads) must not hold the peer's call, and it is not ours
    to run: ``state.request_rebuild`` hands it to whoever schedules rebuilds.
    It is idempotent and runs under the peer lock, so a crash here is finished
    by the next sweep and two last blocks arriving together rebuild the file once.
    """
    tasks = app[_BACKGROUND_KEY]
    task = asyncio.ensure_future(state.request_rebuild(peer.id, original))
    tasks.add(task)

    def done(finished: asyncio.Future[None]) -> None:
        tasks.discard(finished)
        if not finished.cancelled() and finished.exception() is not None:
            log.error(
                "%s: rebuilding %s failed; the next sweep retries it",
                peer.id,
                original,
                exc_info=finished.exception(),
            )

    task.add_done_callback(done)
