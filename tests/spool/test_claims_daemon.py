"""The daemon's spool passes take their peer's claims (publish, rebuild, expiry)."""

from __future__ import annotations

import asyncio
import bz2
import random
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from concentrador.config.model import Config, NodeConfig, PeerConfig, ServerConfig
from concentrador.daemon import services as services_module
from concentrador.daemon.services import SpoolServices
from concentrador.spool.claims import LocalClaims
from concentrador.spool.inbound.store import InboundStore
from concentrador.spool.layout import SpoolState
from tests.spool.claim_helpers import assert_no_overlap, holder_process

DATA = bz2.compress(random.Random(3).randbytes(100_000))


def services_config(tmp_path: Path) -> Config:
    """A daemon serving one peer, CREC, from ``tmp_path/spool`` (SQLite ledger)."""
    return Config(
        path=tmp_path / "concentrador.toml",
        node=NodeConfig(id="0086", spool=tmp_path / "spool", timezone=ZoneInfo("Europe/Madrid")),
        server=ServerConfig(
            host="127.0.0.1", port=0, cert=None, key=None, client_ca=None, insecure_http=True
        ),
        client=None,
        peers=(PeerConfig(id="CREC"),),
    )


@pytest.fixture
def services(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SpoolServices]:
    monkeypatch.setattr(services_module, "BUSY_RETRY_SECONDS", 0.2)
    services = SpoolServices(services_config(tmp_path), settle_seconds=0)
    yield services
    services.close()


def test_the_daemon_claims_by_lock_files_and_logs_its_passes(services: SpoolServices) -> None:
    assert isinstance(services.claims.inner, LocalClaims)  # type: ignore[attr-defined]
    services.startup_pass()
    kinds = {row.kind for row in services.ledger.cycles("CREC")}
    assert kinds == {"publish", "rebuild", "expiry"}
    assert_no_overlap(services.ledger.cycles())


async def test_publish_pass_waits_for_the_claim_held_elsewhere(
    services: SpoolServices, tmp_path: Path
) -> None:
    services.bind_loop(asyncio.get_running_loop())
    peer = services.spool.peer("CREC")
    (peer.dir(SpoolState.OUTBOX) / "F1_0086_20240101_20240102.0").write_bytes(b"x;1\n" * 100)
    with holder_process(services.spool.root, "CREC", "publish"):
        await asyncio.to_thread(services.publish_pass, "CREC")
        assert services.ledger.entries_for("CREC") == []  # skipped: another holds it
        assert services.ledger.cycles("CREC", "publish") == []
    # Asked again by itself once the holder is gone, without a new trigger.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not services.ledger.entries_for("CREC"):
        assert loop.time() < deadline, "the skipped pass was never asked again"
        await asyncio.sleep(0.05)
    await services._publish_runner.wait_idle()
    (row,) = [r for r in services.ledger.cycles("CREC", "publish") if r.result == "ok"]
    assert row.ended_at is not None


async def test_rebuild_waits_for_the_rebuild_claim_held_elsewhere(
    services: SpoolServices,
) -> None:
    services.bind_loop(asyncio.get_running_loop())
    peer = services.spool.peer("CREC")
    store = InboundStore(peer, services.ledger, decompress=False)
    cut = len(DATA) // 2
    for k, piece in [(1, DATA[:cut]), (2, DATA[cut:])]:
        with store.open(f"P1_S.0.bz2.{k}_2", manual=False) as writer:
            writer.write(piece)
            store.commit(writer, f"P1_S.0.bz2.{k}_2")
    with holder_process(services.spool.root, "CREC", "rebuild"):
        waiting = asyncio.create_task(services.rebuild("CREC", "P1_S.0.bz2"))
        await asyncio.sleep(0.6)  # a few busy retries
        assert not waiting.done()  # the caller waits: its set was not tried
        assert (peer.dir(SpoolState.INBOX) / "P1_S.0.bz2").exists() is False
    await asyncio.wait_for(waiting, 10)
    assert (peer.dir(SpoolState.INBOX) / "P1_S.0.bz2").read_bytes() == DATA
    assert_no_overlap(services.ledger.cycles("CREC", "rebuild"))


def test_expiry_skips_a_peer_whose_expiry_runs_elsewhere(services: SpoolServices) -> None:
    with holder_process(services.spool.root, "CREC", "expiry"):
        services.expiry_pass()
        assert services.ledger.cycles("CREC", "expiry") == []
    services.expiry_pass()
    assert [r.result for r in services.ledger.cycles("CREC", "expiry")] == ["ok"]
