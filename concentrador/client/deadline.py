"""The end-to-end deadline of one call to a peer.

aiohttp's ``sock_read`` timeout restarts with every byte, so a peer that
drips one byte every 0.4 s would hold a call (and the peer's cycle lock)
forever. Each call therefore gets one deadline: ``[client] timeout``
seconds, plus one second per ``min_transfer_rate`` bytes moved so far (or
known to be moved, for uploads), so that an 8 MB block over a slow but
honest link still fits while a drip cannot keep a call alive.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from concentrador.client.errors import PeerConnectionError

__all__ = ["CallDeadline", "call_deadline"]


class CallDeadline:
    """Moves an ``asyncio.timeout`` scope forward as bytes are transferred."""

    def __init__(self, scope: asyncio.Timeout, started: float, timeout: float, rate: int) -> None:
        self._scope = scope
        self._started = started
        self.timeout = timeout
        self.rate = rate
        self.transferred = 0

    def advance(self, count: int) -> None:
        """``count`` more bytes moved (or about to be sent): allow their time."""
        self.transferred += count
        self._scope.reschedule(self._started + self.timeout + self.transferred / self.rate)

    def describe(self, elapsed: float) -> str:
        return (
            f"too slow: {self.transferred} bytes in {elapsed:.1f} s (a call may take "
            f"[client] timeout = {self.timeout:g} s plus 1 s per min_transfer_rate = "
            f"{self.rate} bytes)"
        )


@contextlib.asynccontextmanager
async def call_deadline(
    peer: str, operation: str, timeout: float, rate: int
) -> AsyncIterator[CallDeadline]:
    """Run the block under one deadline; past it, :class:`PeerConnectionError`.

    Anything cancelled by the deadline (a half-written download) is cleaned
    up by its own ``finally``/``except`` on the way out, as for any error.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    scope = asyncio.timeout(started + timeout)
    deadline = CallDeadline(scope, started, timeout, rate)
    try:
        async with scope:
            yield deadline
    except TimeoutError:
        if not scope.expired():
            raise  # aiohttp's own connect/read timeout: the caller reports it
        elapsed = loop.time() - started
        raise PeerConnectionError(peer, f"{operation}: {deadline.describe(elapsed)}") from None
