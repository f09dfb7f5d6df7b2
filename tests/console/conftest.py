"""A console over a temporary spool and ledger, served by aiohttp's test client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from concentrador.config import Config, build_config
from concentrador.console import ConsoleNode
from concentrador.pki.devpki import init_dev_pki
from concentrador.spool.layout import Spool
from concentrador.spool.ledger import EventKind, Ledger, NewEvent, PublishedEntry

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("pki")
    init_dev_pki(directory, peers=["CREC"])
    return directory


def console_config(tmp_path: Path, pki: Path, admin: dict[str, Any] | None = None) -> Config:
    data: dict[str, Any] = {
        "node": {"id": "0086", "spool": str(tmp_path / "spool")},
        "server": {
            "listen": "127.0.0.1:0",
            "cert": f"{pki}/server.pem",
            "key": f"{pki}/server.key",
            "client_ca": f"{pki}/ca.pem",
            "crl": f"{pki}/ca.crl",
        },
        "client": {"cert": f"{pki}/client.pem", "key": f"{pki}/client.key", "ca": f"{pki}/ca.pem"},
        "peers": [
            {"id": "CREC", "url": "http://127.0.0.1:9/", "deliver": "push"},
            {"id": "OTRO"},
        ],
    }
    if admin is not None:
        data["admin"] = admin
    return build_config(data, tmp_path / "concentrador.toml")


@pytest.fixture
def make_node(tmp_path: Path, pki: Path) -> Iterator[Callable[..., ConsoleNode]]:
    ledgers: list[Ledger] = []

    def make(admin: dict[str, Any] | None = None, **kwargs: Any) -> ConsoleNode:
        config = console_config(tmp_path, pki, admin)
        spool = Spool(config.node.spool)
        spool.ensure([peer.id for peer in config.peers])
        ledger = Ledger(spool.ledger_path)
        ledgers.append(ledger)
        kwargs.setdefault("listeners", lambda: ["http://127.0.0.1:8443/"])
        return ConsoleNode(config, ledger, spool, started_at=NOW - timedelta(hours=2), **kwargs)

    yield make
    for ledger in ledgers:
        ledger.close()


def publish(ledger: Ledger, peer: str, name: str, *, at: datetime = NOW, size: int = 10) -> None:
    """One published file with the trail the publisher writes before it."""
    ledger.record_published(
        [PublishedEntry(peer, name, name, "F1", size, "0" * 32, at)],
        history=[
            NewEvent(peer, name, EventKind.DROPPED, "outbox/", at=at),
            NewEvent(peer, name, EventKind.COMPRESSED, "bzip2", at=at),
        ],
    )
