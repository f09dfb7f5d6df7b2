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
import contextlib
import logging
import os
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from pathlib import Path

import aiohttp

from concentrador import __version__
from concentrador.client.cookies import CookieStore
from concentrador.client.deadline import CallDeadline, call_deadline
from concentrador.client.download import DownloadSink, read_dime_download, vanished
from concentrador.client.errors import (
    ClientError,
    PeerConnectionError,
    PeerProtocolError,
    fault_error,
)
from concentrador.config.model import ClientConfig, Config, PeerConfig
from concentrador.protocol import (
    DIME_CONTENT_TYPE,
    SOAP11,
    ConfirmacionRecepcionFichero,
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
    RecogerFichero,
    RecogerFicheroResponse,
    WireMessage,
    build_envelope,
    parse_envelope,
)

__all__ = ["DownloadSink", "PeerSession", "client_ssl_context", "wire_errors"]

log = logging.getLogger(__name__)

MAX_ANSWER = 16 * 1024 * 1024
"""A listing costs ~75 bytes per published file (10,000 files: ~600 KB), so
16 MiB admits some 200,000 files while still bounding memory."""
UPLOAD_PIECE = 256 * 1024


def client_ssl_context(client: ClientConfig) -> ssl.SSLContext:
    """Mutual TLS: our client certificate, the peers' CA, host names checked."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(client.ca))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(client.cert), str(client.key))
    return context


@contextlib.contextmanager
def _wire_errors(peer: str, operation: str) -> Iterator[None]:
    """Turn aiohttp/TLS/OS failures into :class:`PeerConnectionError`."""
    try:
        yield
    except ClientError:
        raise
    except TimeoutError:
        raise PeerConnectionError(peer, f"{operation}: timed out") from None
    except (aiohttp.ClientError, ssl.SSLError, OSError) as exc:
        text = " ".join(str(exc).split()) or type(exc).__name__
        raise PeerConnectionError(peer, f"{operation}: {text}") from exc


wire_errors = _wire_errors
"""Public name for the IEC 62325-504 session, which shares this mapping."""


class PeerSession:
    """Calls one peer. Use as ``async with PeerSession.open(config, peer) as s``."""

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
        if not peer.url:
            raise ValueError(f"peer {peer.id} has no url")
        self.node_id = node_id
        self.peer = peer
        self.url = peer.url
        self.dime_limits = dime_limits or DimeLimits()
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else False
        # No fixed total: an 8 MB block over a slow link legitimately takes
        # minutes. Each call has its own deadline instead (call_deadline):
        # ``timeout`` plus 1 s per ``min_transfer_rate`` bytes moved.
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=timeout, sock_connect=timeout, sock_read=timeout
        )
        self._call_timeout = timeout
        self._min_rate = min_transfer_rate
        self._http: aiohttp.ClientSession | None = None
        self._cookies = CookieStore()
        self.calls = 0

    @classmethod
    def open(cls, config: Config, peer: PeerConfig, **kwargs: object) -> PeerSession:
        """A session with the ``[client]`` TLS material and timeout of ``config``."""
        client = config.client
        if client is None:
            raise ValueError("calling a peer needs a [client] section")
        is_https = (peer.url or "").lower().startswith("https:")
        context = client_ssl_context(client) if is_https else None
        return cls(
            config.node.id,
            peer,
            ssl_context=context,
            timeout=client.timeout,
            min_transfer_rate=client.min_transfer_rate,
            **kwargs,  # type: ignore[arg-type]
        )

    async def __aenter__(self) -> PeerSession:
        connector = aiohttp.TCPConnector(limit=self.peer.connections, ssl=self._ssl)
        # Cookies are ours (see cookies.py): aiohttp's jar drops Axis's
        # nameless session cookie.
        self._http = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=self._timeout,
            headers={"User-Agent": f"concentrador/{__version__}"},
            auto_decompress=False,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    @property
    def cookies(self) -> CookieStore:
        return self._cookies

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
        message = ConfirmacionRecepcionFichero(name, code)
        envelope = await self._call("confirmacionRecepcionFichero", message)
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
        body = self._envelope(RecogerFichero(name))
        with _wire_errors(self.peer.id, operation):
            async with (
                self._deadline(operation) as deadline,
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
                self._absorb_cookies(response)
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

            with _wire_errors(self.peer.id, operation):
                async with self._deadline(operation) as deadline:
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
        body = self._envelope(message)
        with _wire_errors(self.peer.id, operation):
            async with (
                self._deadline(operation) as deadline,
                self._post(operation, body, SOAP11.content_type) as response,
            ):
                return await self._read_answer(operation, response, deadline)

    def _deadline(self, operation: str) -> contextlib.AbstractAsyncContextManager[CallDeadline]:
        return call_deadline(self.peer.id, operation, self._call_timeout, self._min_rate)

    def _post(
        self,
        operation: str,
        data: object,
        content_type: str,
        *,
        content_length: int | None = None,
    ) -> aiohttp.client._RequestContextManager:
        if self._http is None:
            raise RuntimeError("PeerSession used outside 'async with'")
        headers = {
            "Content-Type": content_type,
            "SOAPAction": f'"{self.peer.soap_action_for(operation)}"',
        }
        if content_length is not None:
            headers["Content-Length"] = str(content_length)
        if (cookie := self._cookies.header()) is not None:
            headers["Cookie"] = cookie
        self.calls += 1
        return self._http.post(
            self.url, data=data, headers=headers, expect100=False, allow_redirects=False
        )

    def _absorb_cookies(self, response: aiohttp.ClientResponse) -> None:
        self._cookies.absorb(response.headers.getall("Set-Cookie", []))
        self._cookies.absorb(response.headers.getall("Set-Cookie2", []))

    async def _read_answer(
        self, operation: str, response: aiohttp.ClientResponse, deadline: CallDeadline
    ) -> Envelope:
        """Read a plain SOAP answer (bounded in size and time); raise its fault, if any."""
        self._absorb_cookies(response)
        body = bytearray()
        while chunk := await response.content.read(64 * 1024):
            deadline.advance(len(chunk))
            body += chunk
            if len(body) > MAX_ANSWER:
                raise PeerProtocolError(
                    self.peer.id, f"{operation}: answer is over {MAX_ANSWER} bytes"
                )
        return self._parse(operation, response.status, bytes(body))

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
