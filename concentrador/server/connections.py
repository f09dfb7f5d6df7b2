"""Deadlines and caps for the server's connections: a hostile peer stays cheap.

aiohttp bounds the idle time between requests (``keepalive_timeout``, also
armed for the first request) but not how long a request head may drip in,
how slowly a body may arrive, or how many connections one address holds.
:class:`ConnectionGuard` adds those, around aiohttp, with public seams only:

* :class:`GuardedSite` listens like ``web.TCPSite`` but passes the TLS
  ``ssl_handshake_timeout`` and wraps each connection's protocol (aiohttp's
  ``RequestHandler``, already wrapped by the Axis re-framer) in a
  :class:`GuardedConnection`, a plain ``asyncio.Protocol`` that forwards
  every callback and only watches bytes and time;
* :meth:`ConnectionGuard.middleware` tells the connection when a request
  head has been parsed and when its handler is done.

A connection over a cap is answered ``503`` and closed before aiohttp sees
it; a head that is not complete in time is answered ``408`` and closed; a
stalled request body or a response the peer does not read is aborted.
Every limit is a :class:`~concentrador.config.model.ConnectionLimits` field.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, cast

from aiohttp import web

from concentrador.config.model import ConnectionLimits

__all__ = ["ConnectionGuard", "GuardedConnection", "GuardedSite"]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ProtocolFactory = Callable[[], asyncio.Protocol]

# A 408 or 503 is a courtesy: a peer that does not read it must not keep the
# socket through TLS's close_notify wait (ssl_shutdown_timeout is 30 s).
_COURTESY_GRACE = 2.0
# After a burst of at least this many connections has drained down to
# _DRAINED_AT, ``on_drained`` runs (the daemon gives freed memory back).
_BURST = 64
_DRAINED_AT = 4
_LOG_EVERY = 60.0


def _plain_answer(status: str, text: str, extra: str = "") -> bytes:
    body = text.encode() + b"\n"
    head = (
        f"HTTP/1.1 {status}\r\nConnection: close\r\nContent-Type: text/plain\r\n"
        f"{extra}Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class _QuietLog:
    """Logs the first event of a kind, then a count at most every minute:
    300 slowloris connections must not become 300 log lines."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._unsaid: Counter[str] = Counter()

    def warning(self, kind: str, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last.get(kind, -_LOG_EVERY) < _LOG_EVERY:
            self._unsaid[kind] += 1
            return
        self._last[kind] = now
        more = self._unsaid.pop(kind, 0)
        suffix = f" (and {more} more in the last minute)" if more else ""
        log.warning(message + suffix, *args)


class ConnectionGuard:
    """Counts, caps and times the connections of one listener."""

    def __init__(
        self, limits: ConnectionLimits, *, on_drained: Callable[[], None] | None = None
    ) -> None:
        self.limits = limits
        self.on_drained = on_drained
        self.per_address: Counter[str] = Counter()
        self.refused = 0
        self.timed_out = 0
        self._by_transport: dict[asyncio.BaseTransport, GuardedConnection] = {}
        self._peak = 0
        self.quiet_log = _QuietLog()
        # Requests whose handler is running, for a shutdown that lets them
        # finish (daemon/listener.py); counted here rather than by a middleware
        # of its own: one layer less on every request.
        self.in_flight = 0
        self.idle = asyncio.Event()
        self.idle.set()

    @property
    def open(self) -> int:
        """Connections admitted and not yet closed."""
        return len(self._by_transport)

    def protocol_factory(self, inner: ProtocolFactory) -> Callable[[], GuardedConnection]:
        """What ``loop.create_server`` calls: a guarded wrapper per connection."""
        return lambda: GuardedConnection(self, inner)

    def admit(self, connection: GuardedConnection, address: str) -> str | None:
        """Register ``connection``, or say why it is refused."""
        limits = self.limits
        if self.open >= limits.max_connections:
            return f"too many connections ({limits.max_connections})"
        if self.per_address[address] >= limits.max_connections_per_address:
            return f"too many connections from {address} ({limits.max_connections_per_address})"
        assert connection.transport is not None
        self._by_transport[connection.transport] = connection
        self.per_address[address] += 1
        self._peak = max(self._peak, self.open)
        return None

    def release(self, connection: GuardedConnection, address: str) -> None:
        if (
            connection.transport is None
            or self._by_transport.pop(connection.transport, None) is None
        ):
            return
        self.per_address[address] -= 1
        if self.per_address[address] <= 0:
            del self.per_address[address]
        if self._peak >= _BURST and self.open <= _DRAINED_AT:
            self._peak = self.open
            if self.on_drained is not None:
                self.on_drained()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        transport = request.transport
        # None when not served through a GuardedSite (tests' TestServer).
        connection = self._by_transport.get(transport) if transport is not None else None
        self.in_flight += 1
        self.idle.clear()
        if connection is not None:
            connection.request_started(request)
        try:
            return await handler(request)
        finally:
            if connection is not None:
                connection.request_ended()
            self.in_flight -= 1
            if not self.in_flight:
                self.idle.set()


class GuardedConnection(asyncio.Protocol):
    """One connection: forwards everything to aiohttp's protocol, enforces the limits."""

    def __init__(self, guard: ConnectionGuard, inner_factory: ProtocolFactory) -> None:
        self._guard = guard
        self._limits = guard.limits
        self._inner_factory = inner_factory
        self._inner: asyncio.Protocol | None = None
        self.transport: asyncio.Transport | None = None
        self._address = "?"
        self._request: web.BaseRequest | None = None
        self._head_timer: asyncio.TimerHandle | None = None
        self._tick: asyncio.TimerHandle | None = None
        self._bytes_in_window = 0
        self._writing_paused_at: float | None = None
        self._lost = False

    # ------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and peer:
            self._address = str(peer[0])
        refusal = self._guard.admit(self, self._address)
        if refusal is not None:
            self._guard.refused += 1
            self._guard.quiet_log.warning("refused", "refused a connection: %s", refusal)
            self._close_with(
                _plain_answer("503 Service Unavailable", refusal, "Retry-After: 60\r\n")
            )
            return
        self._inner = self._inner_factory()
        self._inner.connection_made(transport)
        self._arm_head_timer()  # the first request's head is due from the start
        self._arm_tick()

    def data_received(self, data: bytes) -> None:
        if self._inner is None:
            return  # refused: whatever it sends is dropped
        self._bytes_in_window += len(data)
        if self._request is None and self._head_timer is None:
            self._arm_head_timer()  # the first byte of the next request
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._cancel_timers()
        self._guard.release(self, self._address)
        if self._inner is not None:
            self._inner.connection_lost(exc)
            self._inner = None
        self._request = None

    def pause_writing(self) -> None:
        self._writing_paused_at = asyncio.get_running_loop().time()
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._writing_paused_at = None
        if self._inner is not None:
            self._inner.resume_writing()

    # ------------------------------------------------------------ request phases

    def request_started(self, request: web.BaseRequest) -> None:
        """The head is parsed: its deadline is met; the body's pace is watched."""
        self._request = request
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        self._arm_tick()  # a fresh window for the body

    def request_ended(self) -> None:
        """The handler is done; idle time until the next byte is aiohttp's keepalive."""
        self._request = None

    # ------------------------------------------------------------ deadlines

    def _arm_head_timer(self) -> None:
        loop = asyncio.get_running_loop()
        self._head_timer = loop.call_later(self._limits.header_timeout, self._head_expired)

    def _head_expired(self) -> None:
        self._head_timer = None
        if self._request is not None or self.transport is None:
            return
        self._timed_out(
            "header_timeout", f"request head not complete in {self._limits.header_timeout:g} s"
        )
        self._close_with(_plain_answer("408 Request Timeout", "request head too slow"))

    def _arm_tick(self) -> None:
        if self._tick is not None:
            self._tick.cancel()
        self._bytes_in_window = 0
        loop = asyncio.get_running_loop()
        self._tick = loop.call_later(self._limits.body_interval, self._check_progress)

    def _check_progress(self) -> None:
        """Once per ``body_interval``: is the body arriving, is the response read?"""
        self._tick = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        limits = self._limits
        now = asyncio.get_running_loop().time()
        paused = self._writing_paused_at
        if paused is not None and now - paused >= limits.body_interval:
            self._timed_out("body_interval", f"answer not read for {limits.body_interval:g} s")
            transport.abort()
            return
        request = self._request
        if (
            request is not None
            and not request.content.is_eof()
            and _is_reading(transport)  # else aiohttp paused it: we are the slow side
            and self._bytes_in_window < limits.body_min_bytes
        ):
            self._timed_out(
                "body_min_bytes",
                f"request body stalled: {self._bytes_in_window} bytes in "
                f"{limits.body_interval:g} s",
            )
            transport.abort()
            return
        self._arm_tick()

    def _timed_out(self, setting: str, why: str) -> None:
        self._guard.timed_out += 1
        self._guard.quiet_log.warning(
            setting, "%s: %s (server.%s); closed", self._address, why, setting
        )

    def _close_with(self, answer: bytes) -> None:
        transport = self.transport
        assert transport is not None
        self._cancel_timers()
        transport.write(answer)
        transport.close()
        asyncio.get_running_loop().call_later(_COURTESY_GRACE, self._abort_unless_lost)

    def _abort_unless_lost(self) -> None:
        if not self._lost and self.transport is not None:
            self.transport.abort()

    def _cancel_timers(self) -> None:
        for timer in (self._head_timer, self._tick):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._tick = None


def _is_reading(transport: asyncio.Transport) -> bool:
    is_reading = getattr(transport, "is_reading", None)
    return bool(is_reading()) if callable(is_reading) else True


class GuardedSite(web.BaseSite):
    """``web.TCPSite`` with a TLS handshake deadline and guarded connections."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        guard: ConnectionGuard,
        ssl_context: Any = None,
        backlog: int = 128,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._host = host
        self._port = port
        self._guard = guard

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{scheme}://{host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        tls = self._ssl_context is not None
        self._server = await asyncio.get_running_loop().create_server(
            self._guard.protocol_factory(cast(ProtocolFactory, server)),
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            ssl_handshake_timeout=self._guard.limits.handshake_timeout if tls else None,
        )
