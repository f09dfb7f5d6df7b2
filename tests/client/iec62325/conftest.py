"""Fixtures for the 504 client tests: our own server (node 0086) speaking
IEC 62325-504 over mutual TLS, and the client side (node CREC) calling it.

The PKI, the ledger fixture and the payload helper come from
``tests/client/conftest.py`` (pytest loads it for this folder too).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from concentrador.config.dn import dn_from_der
from concentrador.config.model import (
    Config,
    NodeConfig,
    PeerConfig,
    ServerConfig,
    SigningConfig,
)
from concentrador.pki import DevPki
from concentrador.server.app import build_app
from concentrador.server.state import ServerState
from concentrador.server.tls import ReloadableServerTLS, ServerTLSFiles
from concentrador.spool.layout import PeerSpool, Spool, SpoolState
from concentrador.spool.ledger import Ledger, PublishedEntry
from tests.client.conftest import CLIENT_ID, MADRID, SERVER_ID, client_config, load_der

IEC = "iec62325-504"
PATH = "/ServiceEME"


def client_dn(pki: DevPki) -> Any:
    return dn_from_der(load_der(pki.directory / f"{CLIENT_ID}-client.pem"))


def server_signer_dn(pki: DevPki) -> Any:
    """The DN of the certificate our server signs its answers with (0086's client cert)."""
    return dn_from_der(load_der(pki.directory / "client.pem"))


def iec_client_config(pki: DevPki, root: Path, url: str, **peer: Any) -> Config:
    """Node CREC calling peer 0086 over 504, signing with its client certificate:
    the v2.3 test config (``client_config``) with the 504 profile and a signing key."""
    peer.setdefault("retries", 1)
    peer.setdefault("dn", (server_signer_dn(pki),))
    config = client_config(pki, root, url, protocol=IEC, **peer)
    assert config.client is not None
    return replace(config, signing=SigningConfig(cert=config.client.cert, key=config.client.key))


@dataclass
class IecServer:
    """Our real server (node 0086) publishing files for CREC over 504."""

    url: str
    state: ServerState
    runner: web.AppRunner

    @property
    def ledger(self) -> Ledger:
        return self.state.ledger

    def peer_spool(self) -> PeerSpool:
        return self.state.spool.peer(CLIENT_ID)

    def publish(self, name: str, data: bytes) -> None:
        """Publish ``data`` for CREC as one whole file (gets the next message code)."""
        folder = self.peer_spool().ensure().dir(SpoolState.PUBLISHED)
        (folder / name).write_bytes(data)
        entry = PublishedEntry(
            CLIENT_ID,
            name,
            name,
            "CUR",
            len(data),
            hashlib.md5(data).hexdigest(),
            datetime.now(UTC),
        )
        self.ledger.record_published([entry])

    def received(self) -> dict[str, bytes]:
        inbox = self.peer_spool().dir(SpoolState.INBOX)
        return {p.name: p.read_bytes() for p in sorted(inbox.iterdir())} if inbox.is_dir() else {}


def server_config(pki: DevPki, root: Path, **peer: Any) -> Config:
    d = pki.directory
    server = ServerConfig(
        "127.0.0.1", 0, d / "server.pem", d / "server.key", d / "ca.pem", d / "ca.crl"
    )
    node = NodeConfig(id=SERVER_ID, spool=root, timezone=MADRID)
    the_peer = replace(PeerConfig(CLIENT_ID, (client_dn(pki),), protocol=IEC), **peer)
    signing = SigningConfig(cert=d / "client.pem", key=d / "client.key")
    return Config(root / "c.toml", node, server, None, (the_peer,), signing=signing)


async def start_server(config: Config, ledger: Ledger, port: int = 0) -> IecServer:
    state = ServerState(config=config, spool=Spool(config.node.spool), ledger=ledger)
    runner = web.AppRunner(build_app(state), access_log=None)
    await runner.setup()
    server = config.server
    tls = ReloadableServerTLS(
        ServerTLSFiles(server.cert, server.key, server.client_ca, server.crl)  # type: ignore[arg-type]
    )
    site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=tls.context)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return IecServer(f"https://localhost:{bound}{PATH}", state, runner)


@pytest.fixture
async def iec_server(
    pki: DevPki, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[IecServer]]]:
    servers: list[IecServer] = []

    async def start(**peer: Any) -> IecServer:
        root = tmp_path / "server-spool"
        root.mkdir(exist_ok=True)
        ledger = Ledger(root / "ledger.sqlite3")
        server = await start_server(server_config(pki, root, **peer), ledger)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.runner.cleanup()
        server.ledger.close()


@pytest.fixture
def client_root(tmp_path: Path) -> Path:
    root = tmp_path / "client-spool"
    root.mkdir(exist_ok=True)
    return root
