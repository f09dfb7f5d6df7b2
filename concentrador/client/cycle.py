"""What every client cycle (collection, push; v2.3 or 504) holds: the peer,
its session, its spool, the ledger, a clock and a progress reporter; and the
clock check both collections make."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Generic, TypeVar
from zoneinfo import ZoneInfo

from concentrador.client.errors import AuthenticationRefused, PeerFaultError, PeerProtocolError
from concentrador.client.progress import Progress
from concentrador.client.summary import CollectionSummary
from concentrador.config.model import PeerConfig
from concentrador.spool.layout import PeerSpool
from concentrador.spool.ledger import Ledger

__all__ = [
    "KV_CLOCK_CHECKED",
    "KV_CLOCK_OFFSET",
    "PeerCycle",
    "clock_offset_seconds",
    "in_lanes",
    "utc_now",
]

log = logging.getLogger(__name__)

KV_CLOCK_OFFSET = "clock_offset_seconds"
KV_CLOCK_CHECKED = "clock_checked_at"

_T = TypeVar("_T")
_S = TypeVar("_S")  # the session: v2.3 PeerSession or the 504 Iec62325Session


def utc_now() -> datetime:
    return datetime.now(UTC)


def clock_offset_seconds(
    peer_wall_time: datetime, sent: datetime, received: datetime, timezone: ZoneInfo
) -> float:
    """Peer clock minus ours, in seconds, against the middle of the round trip.

    The wire time carries no zone (§4.1); it is read in *our* node's time zone
    (both ends default to Europe/Madrid). A peer in another zone therefore
    shows its zone difference as offset, which is worth a look anyway.
    """
    middle = sent + (received - sent) / 2
    return (peer_wall_time.replace(tzinfo=timezone) - middle).total_seconds()


async def in_lanes(count: int, items: Iterable[_T], work: Callable[[_T], Awaitable[None]]) -> None:
    """``work(item)`` for every item, at most ``count`` at a time, in order of start.

    The first failure stops the other lanes (cancelled, then awaited) and is raised.
    """
    pending = iter(items)

    async def lane() -> None:
        for item in pending:  # shared: the first free lane takes the next item
            await work(item)

    lanes = [asyncio.ensure_future(lane()) for _ in range(max(1, count))]
    try:
        await asyncio.wait(lanes, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in lanes:
            task.cancel()
        await asyncio.gather(*lanes, return_exceptions=True)
    for task in lanes:
        if not task.cancelled() and (failure := task.exception()) is not None:
            raise failure


class PeerCycle(Generic[_S]):
    """Base of the v2.3 :class:`~concentrador.client.collect.Collector` and
    :class:`~concentrador.client.push.Pusher`, and of the 504 collector."""

    def __init__(
        self,
        session: _S,
        peer: PeerConfig,
        peer_spool: PeerSpool,
        ledger: Ledger,
        *,
        retries: int,
        now: Callable[[], datetime] = utc_now,
        progress: Progress | None = None,
    ) -> None:
        self.session = session
        self.peer = peer
        self.spool = peer_spool
        self.ledger = ledger
        self.retries = retries
        # Injected so retry timing and recorded times are testable without waiting.
        self.now = now
        self.progress = progress or Progress()

    @property
    def peer_id(self) -> str:
        return self.peer.id

    async def check_peer_clock(
        self,
        ask: Callable[[], Awaitable[datetime]],
        offset_of: Callable[[datetime, datetime, datetime], float],
        warn_seconds: float,
        summary: CollectionSummary,
    ) -> float | None:
        """Ask the peer's clock (``ask``); record the offset, warn above ``warn_seconds``.

        ``offset_of(peer_time, sent, received)`` is how the protocol reads the
        peer's time (v2.3's carries no zone). None if the clock is unavailable.
        """
        sent = self.now()
        try:
            peer_time = await ask()
        except AuthenticationRefused:
            raise
        except (PeerFaultError, PeerProtocolError) as exc:
            log.warning("%s: clock check failed: %s", self.peer_id, exc)
            return None
        received = self.now()
        offset = offset_of(peer_time, sent, received)
        summary.clock_offset = offset
        await asyncio.to_thread(self._record_clock, offset, received)
        if abs(offset) > warn_seconds:
            log.warning(
                "%s: the peer's clock is %+.0f s off ours (threshold %s s)",
                self.peer_id, offset, warn_seconds,
            )  # fmt: skip
        return offset

    def _record_clock(self, offset: float, at: datetime) -> None:
        self.ledger.set_status(self.peer_id, KV_CLOCK_OFFSET, f"{round(offset):+d}")
        self.ledger.set_status(self.peer_id, KV_CLOCK_CHECKED, at.isoformat(timespec="seconds"))
