"""The daemon's HTTP(S) listener, with a shutdown that lets uploads finish.

aiohttp's own graceful shutdown (``AppRunner.cleanup``) marks every
connection closing *before* waiting for handlers, and from then on drops any
request bytes still arriving (aio-libs/aiohttp#2298). A peer halfway through
an 8 MB enviarFichero would then stall until the timeout and lose its call.
So :meth:`Listener.stop` first only closes the listening socket, waits for
the requests in flight (counted by a middleware) to finish on their own,
and only then lets aiohttp close the idle connections and cancel whatever
is left. A cancelled upload aborts its ``DurableWriter``: no half file.

Connections go through :class:`~concentrador.server.axis.runner.AxisTolerantAppRunner`,
which reads Axis 1.x's DIME uploads whole despite their short Content-Length,
and through a :class:`~concentrador.server.connections.ConnectionGuard`, which
enforces the ``[server]`` deadlines and connection caps. When a burst of
connections has drained, freed heap memory is handed back to the OS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import time

from aiohttp import web

from concentrador.config.model import ConnectionLimits
from concentrador.daemon.process import release_free_memory
from concentrador.server.axis.runner import AxisTolerantAppRunner
from concentrador.server.connections import ConnectionGuard, GuardedSite

__all__ = ["ListenError", "Listener"]

log = logging.getLogger(__name__)

# After the drain, what still runs gets this long before it is cancelled.
_FINAL_GRACE = 1.0


class ListenError(Exception):
    """The socket could not be bound; the message is one line."""


class Listener:
    """Serves ``app`` on ``host:port`` until :meth:`stop`."""

    def __init__(
        self,
        app: web.Application,
        *,
        shutdown_timeout: float,
        limits: ConnectionLimits | None = None,
    ) -> None:
        self.shutdown_timeout = shutdown_timeout
        limits = limits or ConnectionLimits()
        self.guard = ConnectionGuard(limits, on_drained=self._release_memory)
        # The guard's middleware also counts the requests in flight (stop() waits for them).
        app.middlewares.append(self.guard.middleware)
        self._runner = AxisTolerantAppRunner(
            app,
            shutdown_timeout=_FINAL_GRACE,
            handle_signals=False,
            keepalive_timeout=limits.keepalive_timeout,
        )
        self._trimming: asyncio.Future[bool] | None = None
        self._addresses: list[tuple[str, int]] = []

    @property
    def in_flight(self) -> int:
        return self.guard.in_flight

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """The bound (host, port) pairs; kept after stop for log lines."""
        return list(self._addresses)

    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext | None) -> None:
        await self._runner.setup()
        site = GuardedSite(self._runner, host, port, guard=self.guard, ssl_context=ssl_context)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            # asyncio wraps the bind error in a long message; errno says it best.
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            raise ListenError(f"cannot listen on {listen}: {reason}") from None
        self._addresses = [(str(a[0]), int(a[1])) for a in self._runner.addresses]

    def _release_memory(self) -> None:
        """After a burst: the connections' TLS buffers (256 KiB each) were freed
        to malloc; hand the pages back (off the loop: trimming walks the heap)."""
        if self._trimming is None or self._trimming.done():
            self._trimming = asyncio.get_running_loop().run_in_executor(None, release_free_memory)

    async def stop(self) -> None:
        """Stop accepting, let requests in flight finish (bounded), close."""
        for site in list(self._runner.sites):
            await site.stop()  # closes the listening socket only
        if self.in_flight:
            log.info("waiting for %d request(s) in flight", self.in_flight)
            started = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.guard.idle.wait(), self.shutdown_timeout)
            if self.in_flight:
                log.warning(
                    "%d request(s) still running after %.0f s; cancelling them",
                    self.in_flight,
                    time.monotonic() - started,
                )
        await self._runner.cleanup()
