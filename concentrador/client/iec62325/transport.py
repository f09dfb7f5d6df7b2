"""The HTTP side of calling a 504 peer: one keep-alive mutual-TLS connection.

Shared with the v2.3 session (:mod:`concentrador.client.session`), not
copied: the TLS context (``[client]`` cert, key and CA, host names checked),
the per-call deadline that grows with the bytes moved
(:mod:`concentrador.client.deadline`), the cookie store
(:mod:`concentrador.client.cookies`) and the mapping of network failures to
:class:`~concentrador.client.errors.PeerConnectionError`.

What differs from v2.3: the one operation ``request`` is posted as SOAP 1.1
(``text/xml`` with ``SOAPAction: "#request"``) or SOAP 1.2
(``application/soap+xml; action="#request"``) as the peer's
``soap_version`` says; there is no DIME and no ``Concentrador`` header. The
connector allows exactly one connection: a cycle's calls go one after the
other on it.
"""

from __future__ import annotations

import contextlib
import ssl
from typing import Any

import aiohttp

from concentrador import __version__
from concentrador.client.cookies import CookieStore
from concentrador.client.deadline import CallDeadline, call_deadline
from concentrador.client.errors import PeerProtocolError
from concentrador.client.session import client_ssl_context
from concentrador.config.model import Config, PeerConfig
from concentrador.protocol import SOAP11, SOAP12, SoapVersion
from concentrador.protocol.iec62325.envelope import content_type_504
from concentrador.protocol.iec62325.wire import SOAP_ACTION

__all__ = ["MAX_ANSWER", "Transport"]

MAX_ANSWER = 16 * 1024 * 1024
"""A plain answer (list, put, query, fault) is read whole, up to this size. A
504 list entry costs ~450 bytes, so 16 MiB admits some 35,000 messages."""


class Transport:
    """Posts 504 envelopes to one peer; use as ``async with``."""

    def __init__(
        self,
        peer: PeerConfig,
        *,
        ssl_context: ssl.SSLContext | None,
        timeout: float,
        min_transfer_rate: int = 32_768,
    ) -> None:
        if not peer.url:
            raise ValueError(f"peer {peer.id} has no url")
        self.peer = peer
        self.url = peer.url
        self.version: SoapVersion = SOAP12 if peer.soap_version == "1.2" else SOAP11
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else False
        # No total: a 50 MB get over a slow link takes minutes; each call has
        # its own byte-driven deadline instead (see concentrador.client.deadline).
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=timeout, sock_connect=timeout, sock_read=timeout
        )
        self._call_timeout = timeout
        self._min_rate = min_transfer_rate
        self._http: aiohttp.ClientSession | None = None
        self.cookies = CookieStore()
        self.calls = 0

    @classmethod
    def open(cls, config: Config, peer: PeerConfig) -> Transport:
        client = config.client
        if client is None:
            raise ValueError("calling a peer needs a [client] section")
        is_https = (peer.url or "").lower().startswith("https:")
        return cls(
            peer,
            ssl_context=client_ssl_context(client) if is_https else None,
            timeout=client.timeout,
            min_transfer_rate=client.min_transfer_rate,
        )

    async def __aenter__(self) -> Transport:
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1, ssl=self._ssl),
            cookie_jar=aiohttp.DummyCookieJar(),  # ours keeps nameless cookies (cookies.py)
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

    def deadline(self, operation: str) -> contextlib.AbstractAsyncContextManager[CallDeadline]:
        return call_deadline(self.peer.id, operation, self._call_timeout, self._min_rate)

    def post(self, data: Any, *, content_length: int | None = None) -> Any:
        """``async with transport.post(body) as response``; ``body`` bytes or an async iterator."""
        if self._http is None:
            raise RuntimeError("Transport used outside 'async with'")
        headers = {"Content-Type": content_type_504(self.version)}
        if self.version is SOAP11:
            headers["SOAPAction"] = f'"{SOAP_ACTION}"'
        if content_length is not None:
            headers["Content-Length"] = str(content_length)
        if (cookie := self.cookies.header()) is not None:
            headers["Cookie"] = cookie
        self.calls += 1
        return self._http.post(
            self.url, data=data, headers=headers, expect100=False, allow_redirects=False
        )

    def absorb_cookies(self, response: aiohttp.ClientResponse) -> None:
        self.cookies.absorb(response.headers.getall("Set-Cookie", []))
        self.cookies.absorb(response.headers.getall("Set-Cookie2", []))

    async def read_whole(
        self, operation: str, response: aiohttp.ClientResponse, deadline: CallDeadline
    ) -> bytes:
        """A plain answer's body, bounded in size (:data:`MAX_ANSWER`) and time."""
        self.absorb_cookies(response)
        body = bytearray()
        while chunk := await response.content.read(64 * 1024):
            deadline.advance(len(chunk))
            body += chunk
            if len(body) > MAX_ANSWER:
                raise PeerProtocolError(
                    self.peer.id, f"{operation}: answer is over {MAX_ANSWER} bytes"
                )
        return bytes(body)
