"""What the console needs from the process that runs it, handed over once.

The daemon builds one :class:`ConsoleNode` and updates ``config`` on reload;
tests build one over a temporary spool. Everything with a side effect the
console cannot own (the CPCSCC listener, the push scheduler, the clock) is a
callable here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from concentrador.config import Config
from concentrador.spool.layout import Spool
from concentrador.spool.ledger import Ledger

__all__ = ["PROFILE", "ConsoleNode", "utc_now"]

PROFILE = "cpcscc-2.3"
"""The protocol profile every peer speaks today (one per peer once there are more)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def _no_push(_peer_id: str) -> None:
    return None


def _no_listeners() -> list[str]:
    return []


@dataclass
class ConsoleNode:
    config: Config
    ledger: Ledger
    spool: Spool
    started_at: datetime = field(default_factory=utc_now)
    listeners: Callable[[], list[str]] = _no_listeners
    """The CPCSCC server's URLs; empty while it does not listen (``/readyz`` fails)."""
    request_push: Callable[[str], object] = _no_push
    """Start a push cycle for a peer now (after "retry"); the daemon's scheduler does it."""
    now: Callable[[], datetime] = utc_now
    admin_listeners: list[str] = field(default_factory=list)
    """The console's own URLs, filled in by :class:`~concentrador.console.server.AdminServer`."""
