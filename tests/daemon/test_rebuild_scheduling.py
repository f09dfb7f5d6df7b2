"""SpoolServices is the daemon's one scheduler of block-set rebuilds."""

from __future__ import annotations

import asyncio
import bz2
import random
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from concentrador.config.model import Config, NodeConfig, PeerConfig, ServerConfig
from concentrador.daemon.services import SpoolServices
from concentrador.spool.inbound.store import InboundStore
from concentrador.spool.layout import PeerSpool, SpoolState

DATA = bz2.compress(random.Random(7).randbytes(200_000))


@pytest.fixture
def services(tmp_path: Path) -> Iterator[SpoolServices]:
    config = Config(
        path=tmp_path / "concentrador.toml",
        node=NodeConfig(id="0086", spool=tmp_path / "spool", timezone=ZoneInfo("Europe/Madrid")),
        server=ServerConfig(
            host="127.0.0.1", port=0, cert=None, key=None, client_ca=None, insecure_http=True
        ),
        client=None,
        peers=(PeerConfig(id="CREC"),),
    )
    services = SpoolServices(config, settle_seconds=0)
    yield services
    services.close()


def store_set(services: SpoolServices, original: str, *, late: bool = False) -> PeerSpool:
    """Store a 2-block set as the server does (``late``: its last block outside the window)."""
    peer = services.spool.peer("CREC")
    store = InboundStore(peer, services.ledger, decompress=False)
    cut = len(DATA) // 2
    for k, piece in [(1, DATA[:cut]), (2, DATA[cut:])]:
        name = f"{original}.{k}_2"
        with store.open(name, manual=late and k == 2) as writer:
            writer.write(piece)
            store.commit(writer, name)
    return peer


def names(peer: PeerSpool, state: SpoolState) -> list[str]:
    return sorted(p.name for p in peer.files(state))


async def test_rebuild_returns_once_the_set_is_rebuilt(services: SpoolServices) -> None:
    services.bind_loop(asyncio.get_running_loop())
    peer = store_set(services, "P1_A.0.bz2")
    await services.rebuild("CREC", "P1_A.0.bz2")
    assert (peer.dir(SpoolState.INBOX) / "P1_A.0.bz2").read_bytes() == DATA
    assert names(peer, SpoolState.PARTIAL) == []


async def test_every_set_asked_for_in_a_burst_is_rebuilt(services: SpoolServices) -> None:
    # Coalesced into one or two passes per peer, but no set is dropped.
    services.bind_loop(asyncio.get_running_loop())
    originals = [f"P1_{letter}.0.bz2" for letter in "ABCD"]
    for original in originals:
        peer = store_set(services, original, late=original.startswith("P1_D"))
    services.request_reassembly("CREC", originals[0])
    services.request_reassembly("CREC", originals[1])
    await asyncio.gather(*(services.rebuild("CREC", o) for o in originals[2:]))
    await services._reassembly_runner.wait_idle()
    assert names(peer, SpoolState.INBOX) == sorted(originals[:3])
    assert names(peer, SpoolState.MANUAL) == [originals[3]]  # its last block was answered 6
    assert names(peer, SpoolState.PARTIAL) == []


async def test_rebuild_does_not_hang_for_unknown_peers_or_a_stopping_daemon(
    services: SpoolServices,
) -> None:
    services.bind_loop(asyncio.get_running_loop())
    await asyncio.wait_for(services.rebuild("NOBODY", "P1_A.0.bz2"), timeout=5)
    peer = store_set(services, "P1_A.0.bz2")
    await services.drain()
    await asyncio.wait_for(services.rebuild("CREC", "P1_A.0.bz2"), timeout=5)
    assert names(peer, SpoolState.PARTIAL) == ["P1_A.0.bz2.1_2", "P1_A.0.bz2.2_2"]
