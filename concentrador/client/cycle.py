"""What every client cycle (collection, push) holds: the peer, its session,
its spool, the ledger, a clock and a progress reporter."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from concentrador.client.progress import Progress
from concentrador.client.session import PeerSession
from concentrador.config.model import PeerConfig
from concentrador.spool.layout import PeerSpool
from concentrador.spool.ledger import Ledger

__all__ = ["PeerCycle", "utc_now"]


def utc_now() -> datetime:
    return datetime.now(UTC)


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
