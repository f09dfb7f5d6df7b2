"""Shared fixtures: a dev PKI, a real mutual-TLS server on loopback, peers as clients.

Every test runs the real application over real TLS with certificates from
``concentrador.pki`` and a real spool and ledger in a temporary folder.
"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp import web
from lxml import etree

from concentrador.config.dn import dn_from_der
from concentrador.config.model import Config, NodeConfig, PeerConfig, ServerConfig
from concentrador.pki import DevPki, init_dev_pki
from concentrador.protocol.dime import encode_message
from concentrador.protocol.soap import SOAP11, Envelope, SoapVersion, build_envelope, parse_envelope
from concentrador.server.app import build_app, wait_for_background
from concentrador.server.axis.runner import DEFAULT_SURPLUS_GRACE, AxisTolerantAppRunner
from concentrador.server.state import ServerState
from concentrador.server.tls import ReloadableServerTLS, ServerTLSFiles
from concentrador.spool.layout import Spool, SpoolState
from concentrador.spool.ledger import Ledger, PublishedEntry

PEERS = ("CREC", "OTRO")
NODE_ID = "0086"
# 10:00 UTC on a winter day is 11:00 in Madrid.
FROZEN_NOW = datetime(2024, 1, 15, 10, 0, 0, tzinfo=UTC)


def load_der(pem_path: Path) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    return x509.load_pem_x509_certificate(pem_path.read_bytes()).public_bytes(Encoding.DER)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    return init_dev_pki(tmp_path_factory.mktemp("pki"), node_id=NODE_ID, peers=PEERS)


def make_config(
    pki: DevPki, spool_root: Path, *, insecure: bool = False, **peer_changes: Any
) -> Config:
    """A config with peers CREC and OTRO; ``CREC={"participants": ...}`` overrides."""
    peers = []
    for peer_id in PEERS:
        dn = dn_from_der(load_der(pki.directory / f"{peer_id}-client.pem"))
        peer = PeerConfig(id=peer_id, dn=(dn,))
        peers.append(replace(peer, **peer_changes.get(peer_id, {})))
    directory = pki.directory
    server = ServerConfig(
        host="127.0.0.1",
        port=0,
        cert=directory / "server.pem",
        key=directory / "server.key",
        client_ca=directory / "ca.pem",
        crl=directory / "ca.crl",
        insecure_http=insecure,
    )
    node = NodeConfig(id=NODE_ID, spool=spool_root, timezone=ZoneInfo("Europe/Madrid"))
    return Config(spool_root / "concentrador.toml", node, server, None, tuple(peers))


@dataclass
class Node:
    """A running server."""

    url: str
    state: ServerState
    app: web.Application
    runner: web.AppRunner
    tls: ReloadableServerTLS | None
    clock: list[datetime] = field(default_factory=lambda: [FROZEN_NOW])

    @property
    def spool(self) -> Spool:
        return self.state.spool

    @property
    def ledger(self) -> Ledger:
        return self.state.ledger

    def folder(self, peer: str, state: SpoolState) -> Path:
        return self.spool.peer(peer).dir(state)

    def names(self, peer: str, state: SpoolState) -> list[str]:
        return sorted(p.name for p in self.spool.peer(peer).files(state))

    def work_files(self, peer: str) -> list[str]:
        work = self.spool.peer(peer).work_dir
        return sorted(p.name for p in work.iterdir() if p.name != "peer.lock")

    async def drain(self) -> None:
        await wait_for_background(self.app)

    def publish(
        self,
        peer: str,
        name: str,
        data: bytes,
        *,
        file_type: str = "CUR",
        original: str | None = None,
    ) -> PublishedEntry:
        """Put ``data`` in ``published/`` and the ledger, as the publisher would."""
        folder = self.folder(peer, SpoolState.PUBLISHED)
        (folder / name).write_bytes(data)
        entry = PublishedEntry(
            peer,
            name,
            original or name,
            file_type,
            len(data),
            hashlib.md5(data).hexdigest(),
            FROZEN_NOW,
        )
        self.ledger.record_published([entry])
        return entry


ServerFactory = Callable[..., Awaitable[Node]]


@pytest.fixture
async def start_server(pki: DevPki, tmp_path: Path) -> AsyncIterator[ServerFactory]:
    """Start servers: ``await start_server(CREC={...}, insecure=False, spool_root=...)``.

    ``surplus_grace``: how long a DIME body past its Content-Length waits for more;
    ``tolerate_axis=False`` serves with a plain ``AppRunner`` (no re-framing).
    """
    runners: list[tuple[web.AppRunner, web.Application]] = []
    ledgers: list[Ledger] = []

    async def factory(
        *,
        insecure: bool = False,
        spool_root: Path | None = None,
        state_changes: dict[str, Any] | None = None,
        surplus_grace: float = DEFAULT_SURPLUS_GRACE,
        tolerate_axis: bool = True,
        **peers: Any,
    ) -> Node:
        root = spool_root or tmp_path / "spool"
        root.mkdir(parents=True, exist_ok=True)
        config = make_config(pki, root, insecure=insecure, **peers)
        ledger = Ledger(root / "ledger.sqlite3")
        ledgers.append(ledger)
        clock = [FROZEN_NOW]
        state = ServerState(
            config=config,
            spool=Spool(root),
            ledger=ledger,
            now=lambda: clock[0],
            **(state_changes or {}),
        )
        app = build_app(state)
        runner: web.AppRunner
        if tolerate_axis:
            # The daemon's runner (listener.py): Axis's short DIME Content-Length tolerated.
            runner = AxisTolerantAppRunner(
                app, access_log=None, lingering_time=1.0, surplus_grace=surplus_grace
            )
        else:
            runner = web.AppRunner(app, access_log=None, lingering_time=1.0)
        await runner.setup()
        tls = None
        if not insecure:
            files = ServerTLSFiles(
                config.server.cert, config.server.key, config.server.client_ca, config.server.crl
            )
            tls = ReloadableServerTLS(files)
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls.context if tls else None)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        scheme = "http" if insecure else "https"
        runners.append((runner, app))
        node = Node(f"{scheme}://localhost:{port}/cpcscc/services", state, app, runner, tls)
        node.clock = clock
        return node

    yield factory
    for runner, _app in runners:
        await runner.cleanup()
    for ledger in ledgers:
        ledger.close()


@pytest.fixture
async def node(start_server: ServerFactory) -> Node:
    return await start_server()


def client_context(pki: DevPki, stem: str | None) -> ssl.SSLContext:
    """A client TLS context trusting the dev CA, presenting ``<stem>.pem`` if given."""
    context = ssl.create_default_context(cafile=str(pki.directory / "ca.pem"))
    if stem is not None:
        context.load_cert_chain(pki.directory / f"{stem}.pem", pki.directory / f"{stem}.key")
    return context


@pytest.fixture
async def open_client(pki: DevPki) -> AsyncIterator[Callable[[str | None], aiohttp.ClientSession]]:
    """``open_client("CREC-client")``: an aiohttp session with that certificate."""
    sessions: list[aiohttp.ClientSession] = []

    def factory(stem: str | None = "CREC-client") -> aiohttp.ClientSession:
        context = client_context(pki, stem) if stem != "plain" else None
        connector = aiohttp.TCPConnector(ssl=context) if context else aiohttp.TCPConnector()
        session = aiohttp.ClientSession(connector=connector)
        sessions.append(session)
        return session

    yield factory
    for session in sessions:
        await session.close()


@pytest.fixture
async def crec(open_client: Callable[[str | None], aiohttp.ClientSession]) -> aiohttp.ClientSession:
    return open_client("CREC-client")


@dataclass
class SoapAnswer:
    status: int
    content_type: str
    envelope: Envelope | None
    raw: bytes

    @property
    def fault_code(self) -> str | None:
        return self.envelope.fault.code if self.envelope and self.envelope.fault else None

    @property
    def body(self) -> etree._Element:
        assert self.envelope is not None and self.envelope.first_body_element is not None
        return self.envelope.first_body_element


async def read_answer(response: aiohttp.ClientResponse) -> SoapAnswer:
    raw = await response.read()
    envelope = None
    if response.content_type != "application/dime":
        envelope = parse_envelope(raw)
    return SoapAnswer(response.status, response.content_type, envelope, raw)


async def soap_call(
    session: aiohttp.ClientSession,
    url: str,
    body: etree._Element | None,
    *,
    concentrador_id: str | None = "CREC",
    version: SoapVersion = SOAP11,
    headers: dict[str, str] | None = None,
) -> SoapAnswer:
    data = build_envelope(body, version=version, concentrador_id=concentrador_id)
    return await post_raw(session, url, data, version.content_type, headers=headers)


async def post_raw(
    session: aiohttp.ClientSession,
    url: str,
    data: Any,
    content_type: str,
    *,
    headers: dict[str, str] | None = None,
) -> SoapAnswer:
    all_headers = {"Content-Type": content_type, **(headers or {})}
    async with session.post(url, data=data, headers=all_headers) as response:
        return await read_answer(response)


def dime_request(
    body: etree._Element,
    payload: bytes,
    *,
    concentrador_id: str | None = "CREC",
    chunk_size: int | None = None,
    version: SoapVersion = SOAP11,
) -> bytes:
    envelope = build_envelope(body, version=version, concentrador_id=concentrador_id)
    return encode_message(envelope, payload, chunk_size=chunk_size)


async def dime_call(session: aiohttp.ClientSession, url: str, message: Any) -> SoapAnswer:
    return await post_raw(session, url, message, "application/dime")
