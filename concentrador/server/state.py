"""What the server handlers need, bundled once at start-up.

The aiohttp application carries one :class:`ServerState`. Everything with a
side effect (the clock, the spool, the ledger) is injected here so that tests
can run the real handlers against a temporary spool and a frozen clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from concentrador.protocol.dime import DimeLimits
from concentrador.protocol.filetypes import TypeClassifier
from concentrador.spool.layout import PeerSpool, Spool

if TYPE_CHECKING:
    from concentrador.config.model import Config, PeerConfig
    from concentrador.spool.ledger import Ledger

__all__ = ["ServerState", "system_now"]

# Above this, a request body that is not DIME is not a CPCSCC message: every
# plain request is a few hundred bytes. Kept equal to the DIME envelope limit.
DEFAULT_MAX_ENVELOPE = 1024 * 1024

# DimeLimits() defaults fit §6 exactly: the attachment limit is 8 MiB
# inclusive (MAX_RECEIVE_SIZE), and the reader raises as soon as a header
# announces more, which enviar.py answers with code 5.
# Pieces of a published file read per thread hop when serving recogerFichero.
READ_PIECE = 256 * 1024


def system_now() -> datetime:
    """The real clock, timezone-aware (the ledger refuses naive datetimes)."""
    return datetime.now(UTC)


@dataclass
class ServerState:
    """Everything a request handler may touch.

    ``inbound_store`` and ``reassembler`` are factories taking the peer's
    :class:`PeerSpool`: both objects are per peer, and building them is cheap.
    ``None`` means "build the default one from the spool module" (see
    :mod:`concentrador.server.app`); tests inject failing ones.
    """

    config: Config
    spool: Spool
    ledger: Ledger
    classifier: TypeClassifier = field(default_factory=TypeClassifier)
    now: Callable[[], datetime] = system_now
    inbound_store: Callable[[PeerSpool, PeerConfig], Any] | None = None
    reassembler: Callable[[PeerSpool, PeerConfig], Any] | None = None
    dime_limits: DimeLimits = field(default_factory=DimeLimits)
    max_envelope: int = DEFAULT_MAX_ENVELOPE
    read_piece: int = READ_PIECE

    @property
    def insecure_http(self) -> bool:
        return bool(self.config.server.insecure_http)

    def local_now(self) -> datetime:
        """Now, in the node's time zone (peticionFechaHora, load windows)."""
        return self.now().astimezone(self.config.node.timezone)

    def peer_spool(self, peer: PeerConfig) -> PeerSpool:
        return self.spool.peer(peer.id)
