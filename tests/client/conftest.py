"""Fixtures for the client tests: a dev PKI, our own server over real TLS, a
fake misbehaving peer over plain HTTP, and the client-side config and ledger."""

from __future__ import annotations

import bz2
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web

from concentrador.config.dn import dn_from_der
from concentrador.config.model import ClientConfig, Config, NodeConfig, PeerConfig, ServerConfig
from concentrador.pki import DevPki, init_dev_pki
from concentrador.protocol.blocks import split_plan
from concentrador.server.app import build_app
from concentrador.server.state import ServerState
from concentrador.server.tls import ReloadableServerTLS, ServerTLSFiles
from concentrador.spool.layout import Spool, SpoolState
from concentrador.spool.ledger import Ledger, PublishedEntry
from tests.client.fake_peer import FakePeer

SERVER_ID = "0086"
CLIENT_ID = "CREC"
MADRID = ZoneInfo("Europe/Madrid")


def load_der(pem_path: Path) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    return x509.load_pem_x509_certificate(pem_path.read_bytes()).public_bytes(Encoding.DER)


def bz2_payload(seed: int, size: int = 3000) -> bytes:
    """Deterministic bzip2 bytes of roughly incompressible text."""
    text = hashlib.sha256(str(seed).encode()).hexdigest().encode() * (size // 64 + 1)
    return bz2.compress(bytes(b ^ (i * 7 & 0x1F) for i, b in enumerate(text[:size])))


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    return init_dev_pki(tmp_path_factory.mktemp("pki"), node_id=SERVER_ID, peers=(CLIENT_ID,))


def client_config(pki: DevPki, root: Path, url: str, **peer: Any) -> Config:
    """Our side: node CREC calling peer 0086 at ``url`` with CREC's client cert."""
    directory = pki.directory
    client = ClientConfig(
        cert=directory / f"{CLIENT_ID}-client.pem",
        key=directory / f"{CLIENT_ID}-client.key",
        ca=directory / "ca.pem",
        timeout=peer.pop("timeout", 10),
        retries=peer.pop("retries", 2),
        retry_delay=peer.pop("retry_delay", 600),
    )
    server = ServerConfig("127.0.0.1", 0, None, None, None, insecure_http=True)
    node = NodeConfig(id=CLIENT_ID, spool=root, timezone=MADRID)
    the_peer = replace(PeerConfig(id=SERVER_ID, url=url), **peer)
    return Config(root / "concentrador.toml", node, server, client, (the_peer,))


def write_client_toml(pki: DevPki, tmp_path: Path, peer_lines: str) -> Path:
    """A real config file for node CREC calling one peer, as an operator writes it."""
    d = pki.directory
    path = tmp_path / "concentrador.toml"
    path.write_text(
        f"""
[node]
id = "{CLIENT_ID}"
spool = "{tmp_path / "spool"}"
[server]
insecure_http = true
[client]
cert = "{d / f"{CLIENT_ID}-client.pem"}"
key = "{d / f"{CLIENT_ID}-client.key"}"
ca = "{d / "ca.pem"}"
timeout = 5
retries = 1
[[peers]]
id = "{SERVER_ID}"
{peer_lines}
"""
    )
    return path


@dataclass
class OwnServer:
    """Our real server (node 0086) that publishes files for CREC."""

    url: str
    state: ServerState

    @property
    def ledger(self) -> Ledger:
        return self.state.ledger

    def peer_spool(self):  # type: ignore[no-untyped-def]
        return self.state.spool.peer(CLIENT_ID)

    def publish(self, name: str, data: bytes, *, block_size: int | None = None) -> list[str]:
        """Publish ``data`` for CREC as the publisher would (split if block_size)."""
        folder = self.peer_spool().dir(SpoolState.PUBLISHED)
        spans = split_plan(name, len(data), block_size or max(len(data), 1_048_576))
        entries = []
        for span in spans:
            piece = data[span.offset : span.end]
            (folder / span.name).write_bytes(piece)
            entries.append(
                PublishedEntry(
                    CLIENT_ID,
                    span.name,
                    name,
                    "CUR",
                    len(piece),
                    hashlib.md5(piece).hexdigest(),
                    datetime.now(UTC),
                )
            )
        self.ledger.record_published(entries)
        return [s.name for s in spans]


@pytest.fixture
async def own_server(
    pki: DevPki, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[OwnServer]]]:
    runners: list[web.AppRunner] = []
    ledgers: list[Ledger] = []

    async def start(**peer: Any) -> OwnServer:
        root = tmp_path / "server-spool"
        root.mkdir(exist_ok=True)
        directory = pki.directory
        dn = dn_from_der(load_der(directory / f"{CLIENT_ID}-client.pem"))
        server = ServerConfig(
            "127.0.0.1", 0, directory / "server.pem", directory / "server.key",
            directory / "ca.pem", directory / "ca.crl",
        )  # fmt: skip
        node = NodeConfig(id=SERVER_ID, spool=root, timezone=MADRID)
        config = Config(
            root / "c.toml", node, server, None, (replace(PeerConfig(CLIENT_ID, (dn,)), **peer),)
        )
        ledger = Ledger(root / "ledger.sqlite3")
        ledgers.append(ledger)
        state = ServerState(config=config, spool=Spool(root), ledger=ledger)
        runner = web.AppRunner(build_app(state), access_log=None)
        await runner.setup()
        tls = ReloadableServerTLS(
            ServerTLSFiles(server.cert, server.key, server.client_ca, server.crl)  # type: ignore[arg-type]
        )
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls.context)
        await site.start()
        runners.append(runner)
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return OwnServer(f"https://localhost:{port}/cpcscc/services", state)

    yield start
    for runner in runners:
        await runner.cleanup()
    for ledger in ledgers:
        ledger.close()


@dataclass
class RunningFake:
    peer: FakePeer
    url: str


@pytest.fixture
async def fake_peer() -> AsyncIterator[RunningFake]:
    peer = FakePeer(fecha_hora=datetime.now(MADRID).replace(tzinfo=None))
    runner = web.AppRunner(peer.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield RunningFake(peer, f"http://127.0.0.1:{port}/cpcscc")
    await runner.cleanup()


@pytest.fixture
def client_ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    root = tmp_path / "client-spool"
    root.mkdir()
    ledger = Ledger(root / "ledger.sqlite3")
    yield ledger  # type: ignore[misc]
    ledger.close()
