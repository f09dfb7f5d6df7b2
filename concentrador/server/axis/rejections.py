"""Rejected requests: answered in order, logged as one line, never a flood.

A peer can send malformed HTTP as fast as it likes; each used to cost an
ERROR with a 600-740-byte aiohttp traceback. Here every request refused for
what the peer sent (a bad request line, a parse error of aiohttp's, a reset
connection) is one WARNING: peer address, certificate DN when there is one,
and the reason. :class:`RejectionLog` lets through ``burst`` such lines per
source address per ``window`` seconds and then says how many more it kept
quiet, once, when the window ends. Our own bugs keep their traceback.

Three pieces, used by :mod:`concentrador.server.axis.runner`:

- :class:`RejectionLog`, the rate-limited log (one per runner);
- :class:`PeerErrorLogger`, given to each connection's aiohttp
  ``RequestHandler`` as its ``logger``: its ``exception()`` (what aiohttp
  calls for a parse error or a failed handler) sends peer faults to the
  :class:`RejectionLog` and everything else on with its traceback;
- :class:`RefusalDesk`, for the request lines the re-framer refuses
  (llhttp would serve ``POST /`` as HTTP/0.9): the re-framer hands aiohttp a
  stand-in request in the refused one's place, marked with a per-process
  secret, and the desk's middleware answers it ``400`` with no body and
  closes. Going through aiohttp keeps the answers in order: the requests
  before it on the connection are answered first.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from concentrador.config.dn import DNError, dn_from_der

__all__ = [
    "Peer",
    "PeerErrorLogger",
    "RefusalDesk",
    "RejectionLog",
    "is_peer_fault",
    "peer_address",
]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# A peer's address, its DN or a reason is shown this long at most.
_SHOWN = 200
# Past this many addresses in one window, the others share one count.
_MAX_SOURCES = 4096
_OTHERS = "other addresses"


def is_peer_fault(exc: BaseException | None) -> bool:
    """True for what a peer causes by what it sends (or stops sending), not our bugs."""
    return isinstance(exc, HttpProcessingError | ConnectionError)


def _extra(transport: asyncio.BaseTransport | None, name: str) -> Any:
    try:
        return transport.get_extra_info(name) if transport is not None else None
    except AttributeError:  # asyncio's TLS transport, once closed, has lost its protocol
        return None


def peer_address(transport: asyncio.BaseTransport | None) -> str:
    peer = _extra(transport, "peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        host = str(peer[0])
        return f"[{host}]:{peer[1]}" if ":" in host else f"{host}:{peer[1]}"
    return "?"


class Peer:
    """Who is at the other end of a connection, taken while it is open."""

    def __init__(self, transport: asyncio.BaseTransport | None) -> None:
        self.address = peer_address(transport)
        self._ssl_object = _extra(transport, "ssl_object")

    @property
    def source(self) -> str:
        """The address without its port: what the rate limit counts by."""
        host, colon, _port = self.address.rpartition(":")
        return host if colon else self.address

    @property
    def dn(self) -> str | None:
        """The client certificate's subject DN, if there is one (parsed when asked)."""
        if self._ssl_object is None:
            return None
        try:
            der = self._ssl_object.getpeercert(binary_form=True)
            return str(dn_from_der(der))[:_SHOWN] if der else None
        except (DNError, ValueError):
            return "(unreadable certificate)"


def _one_line(text: str) -> str:
    return " ".join(text.split())[:_SHOWN]


def describe(exc: BaseException) -> str:
    """A peer fault as one short line (aiohttp's messages span several)."""
    if isinstance(exc, HttpProcessingError):
        return f"{type(exc).__name__} ({exc.code}): {_one_line(exc.message)}"
    return f"{type(exc).__name__}: {_one_line(str(exc)) or 'connection lost'}"


@dataclass
class _Source:
    started: float
    logged: int = 0
    suppressed: int = 0
    last_reason: str = ""
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)


class RejectionLog:
    """One WARNING per rejected request, ``burst`` per source address per ``window``."""

    def __init__(
        self,
        logger: logging.Logger = log,
        *,
        burst: int = 5,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self.burst = burst
        self.window = window
        self._clock = clock
        self._sources: dict[str, _Source] = {}

    def rejected(self, peer: Peer, reason: str) -> None:
        key, source = self._source(peer.source)
        if source.logged < self.burst:
            source.logged += 1
            dn = peer.dn
            who = f"{peer.address} (DN {dn})" if dn else peer.address
            self._log.warning("rejected a request from %s: %s", who, _one_line(reason))
            return
        source.suppressed += 1
        source.last_reason = reason
        if source.timer is None:
            delay = max(0.0, source.started + self.window - self._clock())
            source.timer = asyncio.get_running_loop().call_later(delay, self._summarise, key)

    def _source(self, key: str) -> tuple[str, _Source]:
        now = self._clock()
        source = self._sources.get(key)
        if source is not None and now - source.started >= self.window and source.timer is None:
            source = None  # its window is over and nothing is owed
        if source is None:
            if len(self._sources) >= _MAX_SOURCES:
                self._forget_quiet(now)
            if len(self._sources) >= _MAX_SOURCES:
                key = _OTHERS
                source = self._sources.get(key)
            if source is None:
                source = self._sources[key] = _Source(now)
        return key, source

    def _forget_quiet(self, now: float) -> None:
        for key in [k for k, v in self._sources.items() if v.timer is None]:
            if now - self._sources[key].started >= self.window:
                del self._sources[key]

    def _summarise(self, key: str) -> None:
        source = self._sources.pop(key, None)
        if source is not None and source.suppressed:
            self._log.warning(
                "rejected %d more requests from %s in %.0f s without logging each (the last: %s)",
                source.suppressed,
                key,
                self.window,
                _one_line(source.last_reason),
            )

    def close(self) -> None:
        """Say what is still owed now (the server stops)."""
        for key, source in list(self._sources.items()):
            if source.timer is not None:
                source.timer.cancel()
                self._summarise(key)
        self._sources.clear()


class PeerErrorLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's per-connection ``logger``: peer faults become one rate-limited WARNING."""

    def __init__(
        self, logger: logging.Logger, rejections: RejectionLog, transport: asyncio.BaseTransport
    ) -> None:
        super().__init__(logger, {})
        self._rejections = rejections
        self._peer = Peer(transport)  # now: a reset connection's transport forgets it

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        exc = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        if is_peer_fault(exc):
            assert exc is not None
            self._rejections.rejected(self._peer, describe(exc))
            return
        self.logger.exception(msg, *args, exc_info=exc_info, **kwargs)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        return msg, kwargs


# The marker of a stand-in request; a peer sending it without the secret gets
# its request served as usual.
REFUSED_HEADER = "Concentrador-Refused-Request"


class RefusalDesk:
    """Answers the stand-ins for refused requests: ``400``, no body, connection closed."""

    def __init__(self, rejections: RejectionLog) -> None:
        self._secret = secrets.token_hex(16)
        self.rejections = rejections

    def stand_in(self, reason: str) -> bytes:
        """The request aiohttp parses in place of a refused one (``reason`` is ASCII)."""
        safe = reason.encode("ascii", "replace").replace(b"\r", b" ").replace(b"\n", b" ")
        return b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n%s: %s %s\r\n\r\n" % (
            REFUSED_HEADER.encode(),
            self._secret.encode(),
            safe,
        )

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        marker = request.headers.get(REFUSED_HEADER)
        if marker is None:
            return await handler(request)
        secret, _, reason = marker.partition(" ")
        if not hmac.compare_digest(secret.encode("utf-8", "replace"), self._secret.encode()):
            return await handler(request)
        self.rejections.rejected(Peer(request.transport), reason)
        response = web.Response(status=400)
        response.force_close()
        return response
