"""The HTTP plumbing both clients share: one aiohttp session to one peer.

The v2.3 session (:mod:`concentrador.client.session`) and the IEC 62325-504
transport (:mod:`concentrador.client.iec62325.transport`) differ only in what
they post (DIME and ``urn:`` actions, or plain 504 envelopes); how they talk
HTTP is the same and lives here once:

* mutual TLS from ``[client]`` (cert, key, CA); host names are checked;
* no total timeout, a per-call deadline that grows with the bytes moved
  (:mod:`concentrador.client.deadline`);
* cookies (``Set-Cookie`` and Axis's ``Set-Cookie2``, including Axis's
  nameless session cookie) kept by :class:`CookieStore` and sent back;
* never ``Expect: 100-continue``, never a redirect followed;
* plain answers read whole, bounded by :data:`MAX_ANSWER`;
* aiohttp/TLS/OS failures mapped to :class:`PeerConnectionError`.
"""

from __future__ import annotations

import contextlib
import ssl
from types import TracebackType
from typing import Any, Self

import aiohttp

from concentrador import __version__
from concentrador.client.cookies import CookieStore
from concentrador.client.deadline import CallDeadline, call_deadline
from concentrador.client.errors import ClientError, PeerConnectionError, PeerProtocolError
from concentrador.config.model import ClientConfig, Config, PeerConfig

__all__ = ["MAX_ANSWER", "PeerHttp", "client_ssl_context", "wire_errors"]

MAX_ANSWER = 16 * 1024 * 1024
"""A plain answer is read whole, up to this size. A v2.3 listing costs ~75
bytes per published file (16 MiB: some 200,000 files); a 504 list entry ~450
bytes (some 35,000 messages). Memory stays bounded either way."""


def client_ssl_context(client: ClientConfig) -> ssl.SSLContext:
    """Mutual TLS: our client certificate, the peers' CA, host names checked."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(client.ca))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(client.cert), str(client.key))
    return context


class wire_errors:  # lower case: it reads as the function it was (``with wire_errors(...)``)
    """Turn aiohttp/TLS/OS failures into :class:`PeerConnectionError`.

    A class rather than a ``@contextmanager`` generator: it wraps every call
    (two per small file), and a generator costs a few µs more to enter and leave.
    """

    __slots__ = ("_operation", "_peer")

    def __init__(self, peer: str, operation: str) -> None:
        self._peer = peer
        self._operation = operation

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is None or isinstance(exc, ClientError):
            return
        if isinstance(exc, TimeoutError):
            raise PeerConnectionError(self._peer, f"{self._operation}: timed out") from None
        if isinstance(exc, aiohttp.ClientError | ssl.SSLError | OSError):
            text = " ".join(str(exc).split()) or type(exc).__name__
            raise PeerConnectionError(self._peer, f"{self._operation}: {text}") from exc


def client_options(config: Config, peer: PeerConfig) -> dict[str, Any]:
    """The ``[client]`` TLS material, timeout and rate for calling ``peer``."""
    client = config.client
    if client is None:
        raise ValueError("calling a peer needs a [client] section")
    is_https = (peer.url or "").lower().startswith("https:")
    return {
        "ssl_context": client_ssl_context(client) if is_https else None,
        "timeout": client.timeout,
        "min_transfer_rate": client.min_transfer_rate,
    }


class PeerHttp:
    """One keep-alive aiohttp session to one peer; use as ``async with``."""

    def __init__(
        self,
        peer: PeerConfig,
        *,
        ssl_context: ssl.SSLContext | None,
        timeout: float,
        min_transfer_rate: int = 32_768,
        connections: int = 1,
    ) -> None:
        if not peer.url:
            raise ValueError(f"peer {peer.id} has no url")
        self.peer = peer
        self.url = peer.url
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else False
        self._connections = connections
        # No fixed total: an 8 MB block or a 50 MB get over a slow link
        # legitimately takes minutes. Each call has its own deadline instead
        # (call_deadline): ``timeout`` plus 1 s per ``min_transfer_rate`` bytes moved.
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=timeout, sock_connect=timeout, sock_read=timeout
        )
        self._call_timeout = timeout
        self._min_rate = min_transfer_rate
        self._http: aiohttp.ClientSession | None = None
        self.cookies = CookieStore()
        self.calls = 0

    async def __aenter__(self) -> Self:
        # Cookies are ours (see cookies.py): aiohttp's jar drops Axis's
        # nameless session cookie.
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._connections, ssl=self._ssl),
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

    def deadline(self, operation: str) -> contextlib.AbstractAsyncContextManager[CallDeadline]:
        return call_deadline(self.peer.id, operation, self._call_timeout, self._min_rate)

    def post_with(
        self, data: object, headers: dict[str, str], *, content_length: int | None = None
    ) -> aiohttp.client._RequestContextManager:
        """``async with`` the POST of ``data`` with ``headers`` plus length and cookies."""
        if self._http is None:
            raise RuntimeError(f"{type(self).__name__} used outside 'async with'")
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
