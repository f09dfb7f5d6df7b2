"""One aiohttp client session per peer per cycle: the five operations on the wire.

Why a session per cycle: the spec asks a client to keep one connection and
its session cookies for all the calls of a cycle with a peer (§1). The
connector therefore allows one connection (``connections = N`` in the peer's
config allows N kept-alive ones, for many small files), and the cookie jar
lives as long as the session. When a peer closes after each answer (Axis answers
HTTP/1.0 with a close-delimited body, §10) the next call simply opens a new
connection and the cookies still go with it.

Wire details handled here (§1, §2, §10):

* mutual TLS from ``[client]`` (cert, key, CA); host names are checked;
* ``Concentrador/id`` header with our node id on every request,
  ``mustUnderstand="0"`` (Axis refuses "1");
* ``SOAPAction: "urn:<operation>"`` from the peer's template;
* never ``Expect: 100-continue``; a ``100 Continue`` answer is skipped by
  aiohttp's response reader;
* DIME uploads carry a Content-Length computed from the record sizes (Axis
  cannot read chunked requests) and read the file from disk as they send;
* DIME downloads are parsed as they arrive; the attachment goes to a
  caller-supplied sink in ~1 MiB batches written off the event loop
  (:mod:`concentrador.client.download`);
* cookies (``Set-Cookie`` and Axis's ``Set-Cookie2``, including Axis's
  nameless session cookie) are kept by :class:`CookieStore` and sent back;
* a SOAP fault, with HTTP 500 or not, becomes a :class:`PeerFaultError`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path

import aiohttp

from concentrador.client.deadline import CallDeadline
from concentrador.client.download import DownloadSink, read_dime_download, vanished
from concentrador.client.errors import PeerProtocolError, fault_error
from concentrador.client.http import (
    MAX_ANSWER,
    PeerHttp,
    client_options,
    client_ssl_context,
    wire_errors,
)
from concentrador.config.model import Config, PeerConfig
from concentrador.protocol import (
    DIME_CONTENT_TYPE,
    SOAP11,
    ConfirmacionRecepcionFicheroResponse,
    DimeLimits,
    DimeMessageWriter,
    Envelope,
    EnviarFichero,
    EnviarFicheroResponse,
    Fichero,
    InformacionDisponible,
    InformacionDisponibleResponse,
    PeticionFechaHora,
    PeticionFechaHoraResponse,
    ProtocolError,
    RecogerFicheroResponse,
    WireMessage,
    build_envelope,
    confirmacion_request,
    parse_envelope,
    recoger_request,
)

__all__ = ["DownloadSink", "PeerSession", "client_ssl_context", "wire_errors"]

log = logging.getLogger(__name__)

UPLOAD_PIECE = 256 * 1024


class PeerSession(PeerHttp):
    """Calls one peer. Use as ``async with PeerSession.open(config, peer) as s``.

    The HTTP plumbing (TLS, deadlines, cookies, bounded answers, error mapping)
    is :class:`~concentrador.client.http.PeerHttp`, shared with the 504 client.
    """

    def __init__(
        self,
        node_id: str,
        peer: PeerConfig,
        *,
        ssl_context: ssl.SSLContext | None,
        timeout: float,
        min_transfer_rate: int = 32_768,
        dime_limits: DimeLimits | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            peer,
            ssl_context=ssl_context,
            timeout=timeout,
            min_transfer_rate=min_transfer_rate,
            connections=peer.connections,
        )
        self.node_id = node_id
        self.dime_limits = dime_limits or DimeLimits()
        self._soap_actions: dict[str, str] = {}

    @classmethod
    def open(cls, config: Config, peer: PeerConfig, **kwargs: object) -> PeerSession:
        """A session with the ``[client]`` TLS material and timeout of ``config``."""
        return cls(config.node.id, peer, **client_options(config, peer), **kwargs)  # type: ignore[arg-type]

    # -- the operations ---------------------------------------------------------------
    async def peticion_fecha_hora(self) -> datetime:
        """The peer's wall-clock time (naive: the wire carries no zone)."""
        envelope = await self._call("peticionFechaHora", PeticionFechaHora())
        return PeticionFechaHoraResponse.from_xml(envelope.body_elements).fecha_hora

    async def informacion_disponible(self, tipos: tuple[str, ...]) -> InformacionDisponibleResponse:
        envelope = await self._call("informacionDisponible", InformacionDisponible(tipos))
        return InformacionDisponibleResponse.from_xml(envelope.body_elements)

    async def confirmacion(self, name: str, code: int) -> bool:
        """Confirm ``name`` with ``codConfirmacion = code``; True if the peer answered 0."""
        # From a frame, not lxml: one per file (see protocol/messages/frames.py).
        body = confirmacion_request(name, code, concentrador_id=self.node_id)
        envelope = await self._exchange("confirmacionRecepcionFichero", body)
        return ConfirmacionRecepcionFicheroResponse.from_xml(envelope.body_elements).confirmed

    async def recoger_fichero(
        self, name: str, sink: DownloadSink, on_bytes: Callable[[int], None] | None = None
    ) -> tuple[Fichero, int]:
        """Fetch ``name`` into ``sink``; returns the peer's ``Fichero`` and the byte count.

        The caller compares the MD5 it computed while writing with
        ``Fichero.checksum``. Raises :class:`FileVanished` for ``Client.Fichero``
        or an old peer's empty ``Fichero``.
        """
        operation = "recogerFichero"
        body = recoger_request(name, concentrador_id=self.node_id)
        with wire_errors(self.peer.id, operation):
            async with (
                self.deadline(operation) as deadline,
                self._post(operation, body, SOAP11.content_type) as response,
            ):
                if _media_type(response) != DIME_CONTENT_TYPE:
                    envelope = await self._read_answer(operation, response, deadline)
                    fichero = RecogerFicheroResponse.from_xml(envelope.body_elements).fichero
                    if fichero is None:
                        raise vanished(self.peer.id, name, "answered an empty Fichero")
                    raise PeerProtocolError(
                        self.peer.id, f"{operation} {name}: answer has no DIME attachment"
                    )
                self.absorb_cookies(response)
                return await read_dime_download(
                    response,
                    peer_id=self.peer.id,
                    name=name,
                    sink=sink,
                    on_bytes=on_bytes,
                    on_received=deadline.advance,
                    limits=self.dime_limits,
                    parse=self._parse,
                )

    async def enviar_fichero(
        self,
        name: str,
        path: Path,
        md5: str,
        on_bytes: Callable[[int], None] | None = None,
    ) -> int:
        """Push the file at ``path`` as ``name``; returns the peer's ``codigo``."""
        operation = "enviarFichero"
        envelope = self._envelope(EnviarFichero(Fichero(name, md5)))
        loop = asyncio.get_running_loop()
        handle = await loop.run_in_executor(None, open, path, "rb")
        try:
            size = os.fstat(handle.fileno()).st_size
            writer = DimeMessageWriter(envelope, size)

            async def body() -> AsyncIterator[bytes]:
                yield writer.begin()
                remaining = size
                while remaining:
                    piece = await loop.run_in_executor(
                        None, handle.read, min(UPLOAD_PIECE, remaining)
                    )
                    if not piece:
                        raise OSError(f"{path} shrank while being sent")
                    remaining -= len(piece)
                    for part in writer.write(piece):
                        yield part if isinstance(part, bytes) else bytes(part)
                    if on_bytes is not None:
                        on_bytes(len(piece))
                yield writer.end()

            with wire_errors(self.peer.id, operation):
                async with self.deadline(operation) as deadline:
                    deadline.advance(writer.total_length)  # the upload's time, up front
                    async with self._post(
                        operation, body(), DIME_CONTENT_TYPE, content_length=writer.total_length
                    ) as response:
                        answer = await self._read_answer(operation, response, deadline)
            return EnviarFicheroResponse.from_xml(answer.body_elements).codigo
        except ProtocolError as exc:
            raise PeerProtocolError(self.peer.id, f"{operation} {name}: {exc}") from None
        finally:
            await loop.run_in_executor(None, handle.close)

    # -- plumbing ---------------------------------------------------------------------
    def _envelope(self, message: WireMessage) -> bytes:
        return build_envelope(message.to_xml(), version=SOAP11, concentrador_id=self.node_id)

    async def _call(self, operation: str, message: WireMessage) -> Envelope:
        return await self._exchange(operation, self._envelope(message))

    async def _exchange(self, operation: str, body: bytes) -> Envelope:
        """Post the envelope ``body``; its answer, parsed (a fault raised)."""
        with wire_errors(self.peer.id, operation):
            async with (
                self.deadline(operation) as deadline,
                self._post(operation, body, SOAP11.content_type) as response,
            ):
                return await self._read_answer(operation, response, deadline)

    def _post(
        self,
        operation: str,
        data: object,
        content_type: str,
        *,
        content_length: int | None = None,
    ) -> aiohttp.client._RequestContextManager:
        action = self._soap_actions.get(operation)
        if action is None:
            action = self._soap_actions[operation] = f'"{self.peer.soap_action_for(operation)}"'
        headers = {"Content-Type": content_type, "SOAPAction": action}
        return self.post_with(data, headers, content_length=content_length)

    async def _read_answer(
        self, operation: str, response: aiohttp.ClientResponse, deadline: CallDeadline
    ) -> Envelope:
        """Read a plain SOAP answer (bounded in size and time); raise its fault, if any."""
        body = await self.read_whole(operation, response, deadline)
        return self._parse(operation, response.status, body)

    def _parse(self, operation: str, status: int, body: bytes) -> Envelope:
        try:
            envelope = parse_envelope(body, max_size=MAX_ANSWER)
        except ProtocolError as exc:
            raise PeerProtocolError(
                self.peer.id, f"{operation}: HTTP {status}, not a SOAP answer: {exc}"
            ) from None
        if envelope.fault is not None:
            raise fault_error(self.peer.id, operation, envelope.fault)
        if status != 200:
            raise PeerProtocolError(self.peer.id, f"{operation}: HTTP {status} without a fault")
        return envelope


def _media_type(response: aiohttp.ClientResponse) -> str:
    return (response.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
