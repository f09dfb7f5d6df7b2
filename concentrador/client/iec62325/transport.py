"""The HTTP side of calling a 504 peer: one keep-alive mutual-TLS connection.

Shared with the v2.3 session through :class:`concentrador.client.http.PeerHttp`,
not copied: the TLS context (``[client]`` cert, key and CA, host names checked),
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

import ssl

import aiohttp

from concentrador.client.http import MAX_ANSWER, PeerHttp, client_options
from concentrador.config.model import Config, PeerConfig
from concentrador.protocol import SOAP11, SOAP12, SoapVersion
from concentrador.protocol.iec62325.envelope import content_type_504
from concentrador.protocol.iec62325.wire import SOAP_ACTION

__all__ = ["MAX_ANSWER", "Transport"]


class Transport(PeerHttp):
    """Posts 504 envelopes to one peer; use as ``async with``."""

    def __init__(
        self,
        peer: PeerConfig,
        *,
        ssl_context: ssl.SSLContext | None,
        timeout: float,
        min_transfer_rate: int = 32_768,
    ) -> None:
        super().__init__(
            peer, ssl_context=ssl_context, timeout=timeout, min_transfer_rate=min_transfer_rate
        )
        self.version: SoapVersion = SOAP12 if peer.soap_version == "1.2" else SOAP11

    @classmethod
    def open(cls, config: Config, peer: PeerConfig) -> Transport:
        return cls(peer, **client_options(config, peer))

    def post(
        self, data: object, *, content_length: int | None = None
    ) -> aiohttp.client._RequestContextManager:
        """``async with transport.post(body) as response``; ``body`` bytes or an async iterator."""
        headers = {"Content-Type": content_type_504(self.version)}
        if self.version is SOAP11:
            headers["SOAPAction"] = f'"{SOAP_ACTION}"'
        return self.post_with(data, headers, content_length=content_length)
