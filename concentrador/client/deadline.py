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
from types import TracebackType

from concentrador.client.errors import PeerConnectionError

__all__ = ["CallDeadline", "call_deadline"]


class CallDeadline:
    """Moves an ``asyncio.timeout`` scope forward as bytes are transferred.

    Lazily: :meth:`advance` only counts (it runs on every network read), and one
    timer checks at the deadline last armed whether the bytes moved since have
    pushed it later; only a deadline that has not moved expires the scope. The
    call ends at the same moment as with a reschedule per read, without a timer
    cancelled and made again for each read.
    """

    def __init__(
        self,
        scope: asyncio.Timeout,
        started: float,
        timeout: float,
        rate: int,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._scope = scope
        self._started = started
        self.timeout = timeout
        self.rate = rate
        self.transferred = 0
        self._loop = loop or asyncio.get_running_loop()
        self._armed = started + timeout
        self._timer: asyncio.TimerHandle | None = self._loop.call_at(self._armed, self._check)

    @property
    def when(self) -> float:
        """The deadline now: ``timeout`` plus the time the bytes moved so far may take."""
        return self._started + self.timeout + self.transferred / self.rate

    def advance(self, count: int) -> None:
        """``count`` more bytes moved (or about to be sent): allow their time."""
        self.transferred += count

    def _check(self) -> None:
        when = self.when
        if when <= self._armed:  # no byte moved it: the call is out of time
            self._timer = None
            self._scope.reschedule(self._loop.time())  # expires the scope now
            return
        self._armed = when
        self._timer = self._loop.call_at(when, self._check)

    def cancel(self) -> None:
        """The call is over: drop the timer."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def describe(self, elapsed: float) -> str:
        return (
            f"too slow: {self.transferred} bytes in {elapsed:.1f} s (a call may take "
            f"[client] timeout = {self.timeout:g} s plus 1 s per min_transfer_rate = "
            f"{self.rate} bytes)"
        )


class _DeadlineScope:
    """The ``async with`` of :func:`call_deadline`, as a class: a generator-based
    context manager costs a few µs more per call, and a small file costs two calls."""

    __slots__ = ("_deadline", "_loop", "_operation", "_peer", "_rate", "_scope", "_timeout")

    def __init__(self, peer: str, operation: str, timeout: float, rate: int) -> None:
        self._peer = peer
        self._operation = operation
        self._timeout = timeout
        self._rate = rate

    async def __aenter__(self) -> CallDeadline:
        loop = self._loop = asyncio.get_running_loop()
        started = loop.time()
        scope = self._scope = asyncio.timeout(None)  # expired by the deadline's own timer
        await scope.__aenter__()
        self._deadline = CallDeadline(scope, started, self._timeout, self._rate, loop)
        return self._deadline

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        scope = self._scope
        self._deadline.cancel()
        try:
            await scope.__aexit__(exc_type, exc, traceback)  # never suppresses
        except TimeoutError:
            if not scope.expired():
                raise  # not ours (asyncio.timeout only raises it when expired)
            elapsed = self._loop.time() - self._deadline._started
            raise PeerConnectionError(
                self._peer, f"{self._operation}: {self._deadline.describe(elapsed)}"
            ) from None


def call_deadline(
    peer: str, operation: str, timeout: float, rate: int
) -> contextlib.AbstractAsyncContextManager[CallDeadline]:
    """Run the block under one deadline; past it, :class:`PeerConnectionError`.

    Anything cancelled by the deadline (a half-written download) is cleaned
    up by its own ``finally``/``except`` on the way out, as for any error. A
    ``TimeoutError`` of aiohttp's own connect/read timeouts passes through:
    the caller reports it.
    """
    return _DeadlineScope(peer, operation, timeout, rate)
