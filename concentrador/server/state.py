"""What the server handlers need, bundled once at start-up.

The aiohttp application carries one :class:`ServerState`. Everything with a
side effect (the clock, the spool, the ledger) is injected here so that tests
can run the real handlers against a temporary spool and a frozen clock.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from concentrador.protocol import DEFAULT_MAX_ENVELOPE, DimeLimits, TypeClassifier
from concentrador.server.iec62325.signing import (
    load_signer_trust,
    load_signing_key,
    signer_trust_stamp,
)
from concentrador.spool.inbound.rebuilds import LocalRebuilds, RebuildSet
from concentrador.spool.layout import PeerSpool, Spool

if TYPE_CHECKING:
    from concentrador.config.model import Config, PeerConfig, SigningConfig
    from concentrador.pki.signer import SignerTrust
    from concentrador.protocol.iec62325.signature import SigningKey
    from concentrador.spool.inbound.store import InboundStore
    from concentrador.spool.ledger import Ledger

__all__ = ["ServerState", "system_now"]

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

    ``inbound_store`` is a factory taking the peer's :class:`PeerSpool` (the
    store is per peer, and cheap to build); ``None`` means the plain
    :class:`InboundStore` (see :mod:`concentrador.server.app`); tests inject
    failing ones.

    ``rebuild`` is who rebuilds a block set once a block is stored (the app
    never builds a reassembler): the daemon passes its ``SpoolServices.rebuild``;
    ``None`` means :class:`LocalRebuilds`, in a worker thread of this process.
    """

    config: Config
    spool: Spool
    ledger: Ledger
    classifier: TypeClassifier = field(default_factory=TypeClassifier)
    now: Callable[[], datetime] = system_now
    inbound_store: Callable[[PeerSpool, PeerConfig], InboundStore] | None = None
    rebuild: RebuildSet | None = None
    dime_limits: DimeLimits = field(default_factory=DimeLimits)
    max_envelope: int = DEFAULT_MAX_ENVELOPE
    read_piece: int = READ_PIECE
    # One PeerSpool per peer, not one per request (its paths cost ~2 % of a small file's CPU).
    _peer_spools: dict[str, PeerSpool] = field(default_factory=dict, init=False, repr=False)
    # The 504 signing key and the [signing] section it was loaded from.
    _signing: tuple[SigningConfig, SigningKey] | None = field(default=None, init=False, repr=False)
    # What a 504 put's signer is checked against, and the files' stamp it was loaded at.
    _signer_trust: tuple[object, SignerTrust | None] | None = field(
        default=None, init=False, repr=False
    )

    @property
    def insecure_http(self) -> bool:
        return bool(self.config.server.insecure_http)

    def local_now(self) -> datetime:
        """Now, in the node's time zone (peticionFechaHora, load windows)."""
        return self.now().astimezone(self.config.node.timezone)

    def peer_spool(self, peer: PeerConfig) -> PeerSpool:
        cached = self._peer_spools.get(peer.id)
        if cached is None or cached.root != self.spool.root:  # tests swap the spool
            cached = self._peer_spools[peer.id] = self.spool.peer(peer.id)
        return cached

    def request_rebuild(self, peer_id: str, original: str) -> Awaitable[None]:
        """Ask for the set ``original`` of ``peer_id`` to be rebuilt (see ``rebuild``)."""
        if self.rebuild is None:
            # A lambda: the config is swapped on reload.
            self.rebuild = LocalRebuilds(
                self.spool, self.ledger, lambda other_id: self.config.peer_by_id(other_id)
            )
        return self.rebuild(peer_id, original)

    def signing_key(self) -> SigningKey | None:
        """Our IEC 62325-504 signing key (``Config.signing``), None when there is none.

        Loaded once per configuration: a SIGHUP reload swaps ``config`` and the
        next call loads the new section's files. Raises ``SigningKeyError``.
        """
        signing = self.config.signing
        if signing is None:
            return None
        cached = self._signing
        if cached is None or cached[0] is not signing:
            cached = self._signing = (signing, load_signing_key(signing))
        return cached[1]

    def signer_trust(self) -> SignerTrust | None:
        """``[server] client_ca`` and ``crl`` for checking a 504 signer (None: no CA).

        Reloaded when the configuration or the files change (a new CRL), like
        the TLS material. Raises ``SignerTrustError`` when they cannot be read.
        """
        stamp = (self.config.server, signer_trust_stamp(self.config.server))
        cached = self._signer_trust
        if cached is None or cached[0] != stamp:
            cached = self._signer_trust = (stamp, load_signer_trust(self.config.server))
        return cached[1]
