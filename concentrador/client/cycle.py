"""What every client cycle (collection, push) holds: the peer, its session,
its spool, the ledger, a clock and a progress reporter."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

from concentrador.client.progress import Progress
from concentrador.client.session import PeerSession
from concentrador.config.model import PeerConfig
from concentrador.spool.layout import PeerSpool
from concentrador.spool.ledger import Ledger

__all__ = ["PeerCycle", "clock_offset_seconds", "in_lanes", "utc_now"]

_T = TypeVar("_T")


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


class PeerCycle:
    """Base of :class:`~concentrador.client.collect.Collector` and
    :class:`~concentrador.client.push.Pusher`."""

    def __init__(
        self,
        session: PeerSession,
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
