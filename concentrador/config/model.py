"""The validated configuration, as frozen dataclasses.

Everything here has already passed :func:`concentrador.config.loader.load_config`:
paths are absolute, DNs are normalised, enums and ranges are checked. The
TOML key names (see ``docs/configuration.md``) are kept as field names so
that the file and the code read alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal
from zoneinfo import ZoneInfo

from concentrador.config.dn import DistinguishedName, DNError, DNLike, normalize_dn
from concentrador.config.loadwindow import LoadWindow
from concentrador.protocol import TypeClassifier, merge_prefixes

__all__ = [
    "AdminConfig",
    "ClientConfig",
    "Config",
    "ConnectionLimits",
    "DeliveryMode",
    "FileTypesConfig",
    "LedgerConfig",
    "LoadWindow",
    "NodeConfig",
    "PeerConfig",
    "PeerProtocol",
    "ServerConfig",
    "SignaturePolicy",
    "SigningConfig",
    "SoapVersionName",
    "SpoolConfig",
]

DeliveryMode = Literal["publish", "push"]
PeerProtocol = Literal["cpcscc-2.3", "iec62325-504"]
"""The profile a peer speaks: CPCSCC v2.3 (SOAP + DIME) or v3.0 (IEC 62325-504)."""
SignaturePolicy = Literal["required", "optional", "off"]
"""IEC 62325-504 XML signatures of a peer's messages: required (refuse an
unsigned one), optional (verify when present), off (neither sign nor check)."""
SoapVersionName = Literal["1.1", "1.2"]

CPCSCC_23: PeerProtocol = "cpcscc-2.3"
IEC62325_504: PeerProtocol = "iec62325-504"
PEER_PROTOCOLS: tuple[PeerProtocol, ...] = (CPCSCC_23, IEC62325_504)
SIGNATURE_POLICIES: tuple[SignaturePolicy, ...] = ("required", "optional", "off")
SOAP_VERSIONS: tuple[SoapVersionName, ...] = ("1.1", "1.2")
DEFAULT_IEC62325_PATH = "/ServiceEME"

MIN_BLOCK_SIZE = 1_048_576
MAX_BLOCK_SIZE = 8_000_000


@dataclass(frozen=True)
class NodeConfig:
    """``[node]``: who we are."""

    id: str
    """Our concentrator code, sent in the SOAP ``Concentrador/id`` header."""
    spool: Path
    timezone: ZoneInfo
    """Time zone of peticionFechaHora answers and of load windows."""
    publish_days: int = 30
    block_size: int = MAX_BLOCK_SIZE
    clock_warn_seconds: int = 120
    """A peer clock offset above this is surfaced to the operator."""
    replica: str | None = None
    """This replica's name on a shared spool (its ``.work/`` folder, the cycle
    log); None: ``host:pid`` of the process. Must differ between replicas."""


@dataclass(frozen=True)
class ConnectionLimits:
    """``[server]`` deadlines and caps that keep hostile connections cheap.

    ``docs/deploy.md`` ("Deadlines and limits") says why each default is what it is.
    """

    handshake_timeout: float = 30.0
    """Seconds for the TLS handshake, from accept."""
    header_timeout: float = 10.0
    """Seconds for a whole request line and headers: from the connection's
    start for its first request, from the first byte for the next ones."""
    keepalive_timeout: float = 30.0
    """Seconds a connection may wait with no request in progress."""
    body_interval: float = 30.0
    body_min_bytes: int = 16_384
    """A request body must bring ``body_min_bytes`` every ``body_interval``
    seconds, and a response must be read as fast, or the connection is closed."""
    max_connections: int = 256
    max_connections_per_address: int = 32


@dataclass(frozen=True)
class ServerConfig:
    """``[server]``: the HTTPS endpoint peers call."""

    host: str
    port: int
    """0 lets the OS pick a free port (tests)."""
    cert: Path | None
    key: Path | None
    client_ca: Path | None
    crl: Path | None = None
    insecure_http: bool = False
    """Plain HTTP, peers identified by the SOAP header only (development)."""
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    public_url: str | None = None
    """The address the WSDL gives peers (``https://host[:port]/path``); None:
    the request's Host header if it is a plain ``host[:port]``, else the
    listener's own address (docs/configuration.md)."""
    iec62325_path: str = DEFAULT_IEC62325_PATH
    """The endpoint path of the IEC 62325-504 profile (requests to it are 504
    ones; its ``?wsdl`` is the 504 WSDL)."""

    @property
    def listen(self) -> str:
        """``host:port`` as written in the config (IPv6 hosts bracketed)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class ClientConfig:
    """``[client]``: how we call peers."""

    cert: Path
    key: Path
    ca: Path
    timeout: float = 60
    retries: int = 5
    retry_delay: float = 600
    min_transfer_rate: int = 32_768
    """Bytes per second: a call may take ``timeout`` plus one second per this
    many bytes sent or received, and no longer (a dripping peer is cut off)."""


@dataclass(frozen=True)
class AdminConfig:
    """``[admin]``: the operator console (web pages, ``/metrics``, health checks)."""

    host: str = "127.0.0.1"
    port: int = 9180
    """0 lets the OS pick a free port (tests)."""
    token: str | None = field(default=None, repr=False)
    """Bearer token every request must carry (``Authorization: Bearer ...``)."""
    cert: Path | None = None
    key: Path | None = None
    client_ca: Path | None = None
    """With ``cert`` and ``key``: HTTPS, and a client certificate from this CA required."""

    @property
    def listen(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def mutual_tls(self) -> bool:
        return self.client_ca is not None


@dataclass(frozen=True)
class LedgerConfig:
    """``[ledger]``: the SQLite file in the spool (``url`` None, the default) or PostgreSQL."""

    url: str | None = field(default=None, repr=False)
    """``postgresql://user@host:port/database`` (may hold a password: never logged)."""
    pool_size: int = 10
    """Most connections this process opens to PostgreSQL."""


@dataclass(frozen=True)
class SpoolConfig:
    """``[spool]``: how the spool folder is shared (``docs/deploy.md``, "Scale-out")."""

    shared: bool = False
    """Mounted by several replicas (NFS, CephFS): the watcher polls, each
    replica has its own temp folder, and the ledger must be PostgreSQL."""
    poll_interval: float = 1.0
    """Seconds between two listings of the watched folders when ``shared``."""


@dataclass(frozen=True)
class PeerConfig:
    """One ``[[peers]]`` entry: another concentrator."""

    id: str
    dn: tuple[DistinguishedName, ...] = ()
    """Subject DNs of its client certificates (empty: it cannot call us over TLS)."""
    url: str | None = None
    collect: str | None = None
    """Crontab expression (5 fields) for collection cycles, in the node's time zone."""
    collect_types: tuple[str, ...] = ("TOD",)
    deliver: DeliveryMode = "publish"
    participants: frozenset[str] = frozenset()
    """Participant codes it may send; empty means any (else enviarFichero code 3)."""
    allowed_types: frozenset[str] = frozenset()
    """Type ids it may send; empty means any (else enviarFichero code 4)."""
    load_window: LoadWindow | None = None
    """None means no window (never code 6)."""
    decompress: bool = False
    soap_action: str = "urn:{operation}"
    header_must_match: bool = True
    """Refuse a SOAP header id that contradicts the peer the DN maps to."""
    connections: int = 1
    """Keep-alive connections a collection cycle fetches on (the spec advises 1)."""
    protocol: PeerProtocol = CPCSCC_23
    """The profile we serve it and call it with."""
    signatures: SignaturePolicy = "required"
    """IEC 62325-504 only: whether its messages must be signed (and ours are signed)."""
    soap_version: SoapVersionName = "1.1"
    """IEC 62325-504 only: the SOAP version we send when calling it."""

    @property
    def iec62325(self) -> bool:
        """Whether it speaks the IEC 62325-504 profile (CPCSCC v3.0)."""
        return self.protocol == IEC62325_504

    def soap_action_for(self, operation: str) -> str:
        """The SOAPAction value for an operation, from the template."""
        return self.soap_action.format(operation=operation)

    def may_send_participant(self, code: str | None) -> bool:
        """enviarFichero check 4 (code 3): participant allowed."""
        return not self.participants or code in self.participants

    def may_send_type(self, type_id: str | None) -> bool:
        """enviarFichero check 5 (code 4): type allowed."""
        return not self.allowed_types or type_id in self.allowed_types


@dataclass(frozen=True)
class SigningConfig:
    """``[signing]``: the key and certificate of our IEC 62325-504 XML signatures.

    Defaults to ``[client]``'s: REE's client checks a response signer's
    certificate as a TLS client certificate, so it must allow clientAuth.
    """

    cert: Path
    key: Path


@dataclass(frozen=True)
class FileTypesConfig:
    """``[filetypes]``: overrides and additions to the prefix → type table of
    ``concentrador.protocol.filetypes``; merge them onto its defaults."""

    prefixes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class Config:
    """The whole, validated configuration."""

    path: Path
    """The config file it was loaded from (absolute)."""
    node: NodeConfig
    server: ServerConfig
    client: ClientConfig | None
    """None when there is no ``[client]`` section (allowed if no peer has a url)."""
    peers: tuple[PeerConfig, ...] = ()
    filetypes: FileTypesConfig = field(default_factory=FileTypesConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    signing: SigningConfig | None = None
    """``[signing]``, else ``[client]``'s cert and key, else None (then no
    IEC 62325-504 peer needs signatures)."""
    ledger: LedgerConfig = field(default_factory=LedgerConfig)
    spool: SpoolConfig = field(default_factory=SpoolConfig)

    def peer_by_id(self, peer_id: str) -> PeerConfig | None:
        """The peer with this concentrator code (exact match), or None."""
        for peer in self.peers:
            if peer.id == peer_id:
                return peer
        return None

    def peer_by_dn(self, dn: DNLike) -> PeerConfig | None:
        """The peer that owns this certificate subject, in any spelling
        :func:`~concentrador.config.dn.normalize_dn` accepts; None when no
        peer claims it or it cannot be parsed (a hostile or broken
        certificate maps to no peer)."""
        try:
            wanted = normalize_dn(dn)
        except DNError:
            return None
        for peer in self.peers:
            if wanted in peer.dn:
                return peer
        return None

    def type_classifier(self) -> TypeClassifier:
        """The type classifier: the shipped prefix table plus ``[filetypes]``."""
        return TypeClassifier(merge_prefixes(self.filetypes.prefixes))
