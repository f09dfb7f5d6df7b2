"""The 504 collector against a misbehaving peer: what stops, what is passed over."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from concentrador.client.iec62325.collect import KV_STUCK, CollectionStopped
from concentrador.client.iec62325.signatures import load_signing_key
from concentrador.client.runner import ClientRunner
from concentrador.pki import DevPki
from concentrador.spool.layout import Spool, SpoolState
from concentrador.spool.ledger import Ledger
from tests.client.conftest import CLIENT_ID, SERVER_ID, bz2_payload
from tests.client.iec62325.conftest import iec_client_config
from tests.client.iec62325.fake_504 import Fake504


@pytest.fixture
async def fake(pki: DevPki) -> AsyncIterator[tuple[Fake504, str]]:
    d = pki.directory
    peer = Fake504(
        key=load_signing_key(d / "client.pem", d / "client.key"),  # 0086's own
        other_key=load_signing_key(d / f"{CLIENT_ID}-client.pem", d / f"{CLIENT_ID}-client.key"),
    )
    runner = web.AppRunner(peer.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield peer, f"http://127.0.0.1:{port}/ServiceEME"
    await runner.cleanup()


def inbox(root: Path) -> list[str]:
    path = Spool(root).peer(SERVER_ID).dir(SpoolState.INBOX)
    return sorted(p.name for p in path.iterdir()) if path.is_dir() else []


def work_is_empty(root: Path) -> bool:
    """No temp file left (base64 of a get, or a half-written file); the lock stays."""
    return [p.name for p in Spool(root).peer(SERVER_ID).work_dir.iterdir()] == ["peer.lock"]


@pytest.mark.parametrize(
    ("misbehaviour", "message"),
    [
        ("tampered", "the digest does not match"),
        ("wrong_signer", "not a dn of peer 0086"),
        ("unsigned", "not signed"),
    ],
)
async def test_a_bad_signature_stops_at_that_message_and_stores_nothing_after(
    pki: DevPki, client_root: Path, fake: tuple[Fake504, str], misbehaviour: str, message: str
) -> None:
    peer, url = fake
    for code in (1, 2, 3):
        peer.files[code] = (f"F{code}.bz2", bz2_payload(code))
    getattr(peer, misbehaviour).add(2)
    config = iec_client_config(pki, client_root, url, retries=1)
    with Ledger(client_root / "ledger.sqlite3") as ledger:
        # Stopping at a message is a failed cycle, not a "skipped" message:
        # the cursor stays there and the next cycle tries again.
        with pytest.raises(CollectionStopped) as stopped:
            await ClientRunner(config, ledger).collect(SERVER_ID)
        summary = stopped.value.summary
        assert summary.stored == ["F1.bz2"] and summary.skipped == []
        assert summary.stopped is not None and summary.stopped.startswith("code 2 (F2.bz2): ")
        assert message in summary.stopped
        assert "stopped at code 2 (F2.bz2): " in summary.line()
        assert "skipped" not in summary.line()
        assert "collection stopped at code 2 (F2.bz2): " in str(stopped.value)
        assert ledger.iec_cursor(SERVER_ID) == 1
        status = ledger.status(SERVER_ID)
        assert message in status[KV_STUCK]
        assert status["last_cycle_result"].startswith("failed: ")
        assert "stopped at code 2" in status["last_cycle_result"]
        assert status["cycle_failures_in_a_row"] == "1"
        assert peer.gets[2] == 2  # one retry in the cycle
        assert peer.gets[3] == 0
        assert inbox(client_root) == ["F1.bz2"]
        assert work_is_empty(client_root)
        # Fixed at the peer: the next cycle goes on from there.
        getattr(peer, misbehaviour).clear()
        summary = await ClientRunner(config, ledger).collect(SERVER_ID)
        assert summary.stored == ["F2.bz2", "F3.bz2"] and summary.stopped is None
        assert ledger.status(SERVER_ID)[KV_STUCK] == ""
        assert ledger.status(SERVER_ID)["cycle_failures_in_a_row"] == "0"
        assert peer.gets[1] == 1  # never fetched again


async def test_vanished_and_undecodable_messages_are_passed_over(
    pki: DevPki, client_root: Path, fake: tuple[Fake504, str]
) -> None:
    peer, url = fake
    for code in (1, 2, 3):
        peer.files[code] = (f"F{code}.bz2", bz2_payload(code))
    peer.faults[1] = "GET-006"
    peer.bad_base64.add(2)
    config = iec_client_config(pki, client_root, url)
    with Ledger(client_root / "ledger.sqlite3") as ledger:
        summary = await ClientRunner(config, ledger).collect(SERVER_ID)
        assert summary.vanished == ["F1.bz2"]
        assert summary.skipped == ["F2.bz2"]
        assert summary.stored == ["F3.bz2"]
        assert ledger.iec_cursor(SERVER_ID) == 3
    assert inbox(client_root) == ["F3.bz2"]
    assert work_is_empty(client_root)


async def test_a_server_fault_is_retried_next_cycle(
    pki: DevPki, client_root: Path, fake: tuple[Fake504, str]
) -> None:
    peer, url = fake
    peer.files[1] = ("F1.bz2", b"x")
    peer.faults[1] = "GET-007"  # database read failed: transient
    config = iec_client_config(pki, client_root, url, retries=0)
    with Ledger(client_root / "ledger.sqlite3") as ledger:
        with pytest.raises(CollectionStopped) as stopped:
            await ClientRunner(config, ledger).collect(SERVER_ID)
        assert stopped.value.summary.stored == []
        assert "Server.GET-007" in ledger.status(SERVER_ID)[KV_STUCK]
        del peer.faults[1]
        assert (await ClientRunner(config, ledger).collect(SERVER_ID)).stored == ["F1.bz2"]


async def test_uncollected_types_move_the_cursor_without_a_get(
    pki: DevPki, client_root: Path, fake: tuple[Fake504, str]
) -> None:
    peer, url = fake
    peer.files[5] = ("F5.bz2", b"x")
    config = iec_client_config(pki, client_root, url, collect_types=("MED",))
    with Ledger(client_root / "ledger.sqlite3") as ledger:
        summary = await ClientRunner(config, ledger).collect(SERVER_ID)
        assert summary.stored == [] and peer.gets[5] == 0
        assert ledger.iec_cursor(SERVER_ID) == 5


async def test_a_large_message_streams_through(
    pki: DevPki, client_root: Path, fake: tuple[Fake504, str]
) -> None:
    peer, url = fake
    data = bz2_payload(9, 12_000_000)
    peer.files[1] = ("BIG.bz2", data)
    config = iec_client_config(pki, client_root, url)
    with Ledger(client_root / "ledger.sqlite3") as ledger:
        summary = await ClientRunner(config, ledger).collect(SERVER_ID)
    assert summary.stored == ["BIG.bz2"] and summary.bytes == len(data)
    stored = Spool(client_root).peer(SERVER_ID).dir(SpoolState.INBOX) / "BIG.bz2"
    assert stored.read_bytes() == data
