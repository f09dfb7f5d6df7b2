"""Collection cycles against our own server (real TLS) and a misbehaving fake peer."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from concentrador.client.collect import CollectionSummary
from concentrador.client.errors import AuthenticationRefused, PeerConnectionError
from concentrador.client.runner import ClientRunner
from concentrador.config.model import Config
from concentrador.spool.layout import Spool, SpoolState
from concentrador.spool.ledger import Ledger
from tests.client.conftest import CLIENT_ID, MADRID, SERVER_ID, bz2_payload, client_config

pytestmark = pytest.mark.asyncio


def names(config: Config, state: SpoolState) -> list[str]:
    return [p.name for p in Spool(config.node.spool).peer(SERVER_ID).files(state)]


def work_leftovers(config: Config) -> list[str]:
    work = Spool(config.node.spool).peer(SERVER_ID).work_dir
    return sorted(p.name for p in work.iterdir() if p.name != "peer.lock")


async def collect(config: Config, ledger: Ledger, **options: Any) -> CollectionSummary:
    return await ClientRunner(config, ledger, collector_options=options).collect(SERVER_ID)


# -- our own server, real mutual TLS ---------------------------------------------------------


async def test_collects_whole_and_split_files_from_own_server(
    own_server: Any, pki: Any, tmp_path: Path, client_ledger: Ledger
) -> None:
    server = await own_server()
    whole = bz2_payload(1)
    big = random.Random(7).randbytes(2_300_000)
    import bz2

    split = bz2.compress(big, 1)
    server.publish("F1_0086_20240101_20240102.0.bz2", whole)
    blocks = server.publish("P1_0086_20240101.0.bz2", split, block_size=1_048_576)
    assert len(blocks) == 3
    config = client_config(pki, tmp_path / "client-spool", server.url)

    summary = await collect(config, client_ledger)

    assert sorted(summary.confirmed) == [
        "F1_0086_20240101_20240102.0.bz2",
        "P1_0086_20240101.0.bz2",
    ]
    inbox = Spool(config.node.spool).peer(SERVER_ID).dir(SpoolState.INBOX)
    assert (inbox / "F1_0086_20240101_20240102.0.bz2").read_bytes() == whole
    assert (inbox / "P1_0086_20240101.0.bz2").read_bytes() == split
    assert summary.fetched == 4
    # The server saw code 0 for both originals: nothing is listed any more.
    assert server.ledger.entries_for(CLIENT_ID, "published") == []
    for name in summary.confirmed:
        entry = client_ledger.received(SERVER_ID, name)
        assert entry is not None and entry.confirmed_at is not None
    offset = float(client_ledger.status(SERVER_ID)["clock_offset_seconds"])
    assert abs(offset) <= 2
    assert work_leftovers(config) == []

    again = await collect(config, client_ledger)
    assert (again.listed, again.fetched, again.confirmed) == (0, 0, [])


async def test_killed_between_store_and_confirm_confirms_once_stores_once(
    own_server: Any, pki: Any, tmp_path: Path, client_ledger: Ledger
) -> None:
    server = await own_server()
    data = bz2_payload(2)
    server.publish("F1_0086_20240101_20240102.1.bz2", data)
    config = client_config(pki, tmp_path / "client-spool", server.url)

    def killed(name: str) -> None:
        raise KeyboardInterrupt(f"killed after storing {name}")

    with pytest.raises(KeyboardInterrupt):
        await collect(config, client_ledger, on_stored=killed)
    entry = client_ledger.received(SERVER_ID, "F1_0086_20240101_20240102.1.bz2")
    assert entry is not None and entry.confirmed_at is None
    assert len(server.ledger.entries_for(CLIENT_ID, "published")) == 1

    # "Restart": a fresh ledger connection and runner.
    ledger = Ledger(client_ledger.path)
    try:
        summary = await collect(config, ledger)
    finally:
        ledger.close()
    assert summary.reconfirmed == ["F1_0086_20240101_20240102.1.bz2"]
    assert summary.fetched == 0 and summary.stored == []
    assert names(config, SpoolState.INBOX) == ["F1_0086_20240101_20240102.1.bz2"]
    assert names(config, SpoolState.ARCHIVE) == []
    assert server.ledger.entries_for(CLIENT_ID, "published") == []


async def test_refused_certificate_stops_the_peer(
    own_server: Any, pki: Any, tmp_path: Path, client_ledger: Ledger
) -> None:
    # The server knows CREC by another certificate's DN: our DN maps to no peer.
    from concentrador.config.dn import parse_dn

    other = parse_dn("CN=someone-else,CN=OTHER,OU=Concentradores,O=REE,C=es")
    server = await own_server(dn=(other,))
    config = client_config(pki, tmp_path / "client-spool", server.url)
    runner = ClientRunner(config, client_ledger)
    with pytest.raises(AuthenticationRefused):
        await runner.collect(SERVER_ID)
    assert SERVER_ID in runner.blocked
    assert "Client.Autenticacion" in client_ledger.status(SERVER_ID)["authentication_refused"]
    runner.apply_config(config)  # a reload lifts the stop
    assert runner.blocked == {}


# -- the fake peer ---------------------------------------------------------------------------


@pytest.fixture
def fake_config(fake_peer: Any, pki: Any, tmp_path: Path) -> Config:
    return client_config(pki, tmp_path / "client-spool", fake_peer.url, retries=2)


async def test_bad_md5_once_then_good(fake_peer: Any, fake_config: Config, client_ledger: Ledger):
    peer = fake_peer.peer
    peer.files = {"A.bz2": bz2_payload(3)}
    peer.bad_checksum = {"A.bz2": 1}
    summary = await collect(fake_config, client_ledger)
    assert peer.fetches["A.bz2"] == 2
    assert peer.confirmations == [("A.bz2", 0)]
    assert summary.confirmed == ["A.bz2"]
    assert work_leftovers(fake_config) == []


async def test_bad_md5_every_time_confirms_code_1(
    fake_peer: Any, fake_config: Config, client_ledger: Ledger
) -> None:
    peer = fake_peer.peer
    peer.files = {"A.bz2": bz2_payload(4)}
    peer.bad_checksum = {"A.bz2": -1}
    summary = await collect(fake_config, client_ledger)
    assert peer.fetches["A.bz2"] == 3  # one try + retries=2
    assert peer.confirmations == [("A.bz2", 1)]
    assert summary.checksum_failed == ["A.bz2"]
    assert names(fake_config, SpoolState.INBOX) == []
    assert client_ledger.received(SERVER_ID, "A.bz2") is None
    status = client_ledger.status(SERVER_ID)
    assert status["checksum_failures"] == "1" and "A.bz2" in status["last_checksum_failure"]
    assert work_leftovers(fake_config) == []


async def test_file_vanishing_mid_cycle(fake_peer: Any, fake_config: Config, client_ledger: Ledger):
    peer = fake_peer.peer
    peer.files = {"A.bz2": bz2_payload(5), "B.bz2": bz2_payload(6)}
    peer.vanish = {"A.bz2"}
    summary = await collect(fake_config, client_ledger)
    assert summary.vanished == ["A.bz2"]
    assert summary.confirmed == ["B.bz2"]
    assert peer.confirmations == [("B.bz2", 0)]
    assert names(fake_config, SpoolState.INBOX) == ["B.bz2"]


async def test_connection_dropped_mid_dime(
    fake_peer: Any, fake_config: Config, client_ledger: Ledger
) -> None:
    peer = fake_peer.peer
    data = bz2_payload(7, 200_000)
    peer.files = {"A.bz2": data}
    peer.drop_mid_dime = {"A.bz2": 1}
    with pytest.raises(PeerConnectionError):
        await collect(fake_config, client_ledger)
    assert names(fake_config, SpoolState.INBOX) == []
    assert work_leftovers(fake_config) == []
    assert "failed" in client_ledger.status(SERVER_ID)["last_cycle_result"]

    summary = await collect(fake_config, client_ledger)
    assert summary.confirmed == ["A.bz2"]
    inbox = Spool(fake_config.node.spool).peer(SERVER_ID).dir(SpoolState.INBOX)
    assert (inbox / "A.bz2").read_bytes() == data


async def test_lost_confirmation_then_relisting(
    fake_peer: Any, fake_config: Config, client_ledger: Ledger
) -> None:
    peer = fake_peer.peer
    peer.files = {"A.bz2": bz2_payload(8)}
    peer.lose_confirmation = {"A.bz2": 1}
    with pytest.raises(PeerConnectionError):
        await collect(fake_config, client_ledger)
    assert peer.confirmations == [] and "A.bz2" in peer.files  # still listed

    summary = await collect(fake_config, client_ledger)
    assert summary.reconfirmed == ["A.bz2"]
    assert peer.fetches["A.bz2"] == 1  # never fetched again
    assert peer.confirmations == [("A.bz2", 0)]
    assert names(fake_config, SpoolState.INBOX) == ["A.bz2"]
    assert names(fake_config, SpoolState.ARCHIVE) == []


async def test_partial_block_set_waits_and_keeps_verified_blocks(
    fake_peer: Any, fake_config: Config, client_ledger: Ledger
) -> None:
    import bz2

    data = bz2.compress(random.Random(3).randbytes(30_000))
    third = len(data) // 3
    pieces = [data[:third], data[third : 2 * third], data[2 * third :]]
    blocks = {f"P.bz2.{k}_3": piece for k, piece in enumerate(pieces, 1)}
    peer = fake_peer.peer
    # Only blocks 1 and 3 listed: the set waits, nothing is fetched.
    peer.files = {n: d for n, d in blocks.items() if n != "P.bz2.2_3"}
    summary = await collect(fake_config, client_ledger)
    assert summary.waiting == ["P.bz2"] and summary.fetched == 0

    # All listed, but block 2 vanishes: block 1 is kept in partial/.
    peer.files = dict(blocks)
    peer.vanish = {"P.bz2.2_3"}
    summary = await collect(fake_config, client_ledger)
    assert names(fake_config, SpoolState.PARTIAL) == ["P.bz2.1_3"]
    assert peer.confirmations == []

    peer.vanish = set()
    summary = await collect(fake_config, client_ledger)
    assert peer.fetches == {"P.bz2.1_3": 1, "P.bz2.2_3": 2, "P.bz2.3_3": 1}
    assert summary.confirmed == ["P.bz2"]
    assert peer.confirmations == [("P.bz2", 0)]
    inbox = Spool(fake_config.node.spool).peer(SERVER_ID).dir(SpoolState.INBOX)
    assert (inbox / "P.bz2").read_bytes() == data
    assert names(fake_config, SpoolState.PARTIAL) == []


async def test_wire_identity_headers_and_cookies(
    fake_peer: Any, fake_config: Config, client_ledger: Ledger
) -> None:
    peer = fake_peer.peer
    peer.files = {"A.bz2": bz2_payload(9)}
    await collect(fake_config, client_ledger)
    assert peer.ids and set(peer.ids) == {CLIENT_ID}
    actions = [h["SOAPAction"] for h in peer.headers]
    assert actions == [
        '"urn:peticionFechaHora"',
        '"urn:informacionDisponible"',
        '"urn:recogerFichero"',
        '"urn:confirmacionRecepcionFichero"',
    ]
    assert not any("Expect" in h for h in peer.headers)
    # The session cookie set by the first answer goes back on every later call.
    assert "Cookie" not in peer.headers[0]
    assert all("JSESSIONID=abc123" in h.get("Cookie", "") for h in peer.headers[1:])


async def test_clock_offset_recorded_and_warned(
    fake_peer: Any, fake_config: Config, client_ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    fake_peer.peer.fecha_hora = (datetime.now(MADRID) + timedelta(seconds=300)).replace(tzinfo=None)
    summary = await collect(fake_config, client_ledger)
    assert summary.clock_offset is not None and 297 <= summary.clock_offset <= 302
    assert client_ledger.status(SERVER_ID)["clock_offset_seconds"] in {"+299", "+300", "+301"}
    assert any("clock is +" in r.getMessage() for r in caplog.records)
