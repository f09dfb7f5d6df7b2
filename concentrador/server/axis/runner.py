"""Serving the app with Axis 1.x's short DIME Content-Length tolerated.

:class:`AxisTolerantAppRunner` is an ``aiohttp.web.AppRunner`` whose
connections hand their raw request bytes through a
:class:`~concentrador.server.axis.reframer.RequestReframer` before
aiohttp's HTTP parser sees them (see that module for the what and why).

How it plugs in, using only aiohttp's stable seams: ``AppRunner._make_server``
(the hook every runner implements) returns the ``web.Server`` that sites give
to ``loop.create_server`` as their protocol factory. We return a stand-in
that delegates everything to that server but wraps each protocol it makes
(aiohttp's ``RequestHandler``) in :class:`AxisTolerantProtocol`, a plain
``asyncio.Protocol`` that forwards every callback and only rewrites the
bytes of ``data_received``. aiohttp's parser (C or pure Python) is untouched
and sees an ordinary ``Transfer-Encoding: chunked`` request. The handler keeps
the real transport, so flow control, TLS details and closing work as before.

The wrapper also feeds the parser one request at a time, puts a stand-in in
place of a request line the re-framer refuses, and gives the handler a
:class:`~concentrador.server.axis.rejections.PeerErrorLogger`, so that
malformed requests are logged as one rate-limited WARNING each
(:mod:`concentrador.server.axis.rejections`). The runner adds the
:class:`~concentrador.server.axis.rejections.RefusalDesk` middleware to the
app, so it must be made before the app is frozen (as any runner is).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

from aiohttp import web

from concentrador.protocol import DimeLimits
from concentrador.server.app import STATE_KEY
from concentrador.server.axis.reframer import (
    BodyCut,
    ContentLengthTolerated,
    RequestReframer,
    RequestRefused,
)
from concentrador.server.axis.rejections import (
    PeerErrorLogger,
    RefusalDesk,
    RejectionLog,
    peer_address,
)

__all__ = ["DEFAULT_SURPLUS_GRACE", "AxisTolerantAppRunner", "AxisTolerantProtocol"]

log = logging.getLogger(__name__)

# How long a DIME body past its Content-Length may wait for its next byte.
# Axis sends the uncounted bytes in the same stream, right away; this only
# bounds how long a client whose DIME message is truly truncated waits for
# its fault.
DEFAULT_SURPLUS_GRACE = 5.0


class AxisTolerantProtocol(asyncio.Protocol):
    """Wraps one connection's HTTP protocol; re-frames DIME request bodies."""

    def __init__(
        self,
        inner: asyncio.Protocol,
        *,
        limits: DimeLimits | None = None,
        surplus_grace: float = DEFAULT_SURPLUS_GRACE,
        desk: RefusalDesk | None = None,
    ) -> None:
        self._inner = inner
        self._desk = desk or RefusalDesk(RejectionLog())
        self._reframer = RequestReframer(limits)
        self._grace = surplus_grace
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._peer = "?"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._peer = peer_address(transport)
        if isinstance(self._inner, web.RequestHandler):
            # Parse errors and resets become one WARNING; our bugs keep their traceback.
            handler_log = PeerErrorLogger(self._inner.logger, self._desk.rejections, transport)
            self._inner.logger = cast(logging.Logger, handler_log)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        reframer = self._reframer
        if reframer.passing_through:
            self._inner.data_received(data)
            return
        segments = reframer.receive_requests(data)
        self._report()
        self._watch_surplus()
        # One request per call: a parser error fails only the call it occurs in.
        for segment in segments:
            if isinstance(segment, RequestRefused):
                segment = self._desk.stand_in(segment.reason)
            self._inner.data_received(segment)

    def eof_received(self) -> bool | None:
        self._end_surplus()
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    # ------------------------------------------------------------ surplus

    def _watch_surplus(self) -> None:
        """(Re)start the grace timer while a DIME body awaits bytes past its length."""
        self._cancel_timer()
        if self._reframer.awaiting_surplus:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._grace, self._grace_expired)

    def _grace_expired(self) -> None:
        self._timer = None
        transport = self._transport
        if transport is not None and not _is_reading(transport):
            # aiohttp paused reading (its buffer is full): the bytes may be
            # waiting on our side, so the peer is not the one being quiet.
            self._watch_surplus()
            return
        self._end_surplus()

    def _end_surplus(self) -> None:
        out = self._reframer.cut()
        self._cancel_timer()
        if out:
            self._report()
            self._inner.data_received(out)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _report(self) -> None:
        for event in self._reframer.events():
            if isinstance(event, ContentLengthTolerated):
                log.warning(
                    "%s: tolerated the Axis 1.x DIME Content-Length bug: Content-Length "
                    "%d, DIME message %d bytes (%d records); read it whole",
                    self._peer,
                    event.declared,
                    event.actual,
                    event.records,
                )
            elif isinstance(event, BodyCut):
                log.warning(
                    "%s: DIME body cut %d bytes past its Content-Length of %d (%s)",
                    self._peer,
                    event.received - event.declared,
                    event.declared,
                    event.reason,
                )


def _is_reading(transport: asyncio.Transport) -> bool:
    is_reading = getattr(transport, "is_reading", None)
    return bool(is_reading()) if callable(is_reading) else True


class _ReframingServer:
    """Stands in for a ``web.Server``: the same in every respect, except that
    the protocols it makes are wrapped in :class:`AxisTolerantProtocol`."""

    def __init__(
        self,
        server: web.Server,
        limits: DimeLimits | None,
        surplus_grace: float,
        desk: RefusalDesk,
    ) -> None:
        self._server = server
        self._limits = limits
        self._grace = surplus_grace
        self._desk = desk

    def __call__(self) -> AxisTolerantProtocol:
        return AxisTolerantProtocol(
            self._server(), limits=self._limits, surplus_grace=self._grace, desk=self._desk
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)


class AxisTolerantAppRunner(web.AppRunner):
    """``web.AppRunner`` for the CPCSCC app, tolerating Axis's DIME Content-Length.

    ``dime_limits`` bounds the record walk (its ``max_records``); by default
    the app's own ``ServerState.dime_limits``. ``rejections`` is where
    rejected requests are logged (by default a :class:`RejectionLog` of
    5 lines per source address per minute).
    """

    def __init__(
        self,
        app: web.Application,
        *,
        dime_limits: DimeLimits | None = None,
        surplus_grace: float = DEFAULT_SURPLUS_GRACE,
        rejections: RejectionLog | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, **kwargs)
        self.rejections = rejections or RejectionLog()
        self._desk = RefusalDesk(self.rejections)
        app.middlewares.append(self._desk.middleware)
        if dime_limits is None:
            state = app.get(STATE_KEY)
            dime_limits = state.dime_limits if state is not None else None
        self._axis_dime_limits = dime_limits
        self._axis_surplus_grace = surplus_grace

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        stand_in = _ReframingServer(
            server, self._axis_dime_limits, self._axis_surplus_grace, self._desk
        )
        return cast(web.Server, stand_in)

    async def cleanup(self) -> None:
        await super().cleanup()
        self.rejections.close()
