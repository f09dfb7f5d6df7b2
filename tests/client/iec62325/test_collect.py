"""The 504 collection cycle against our own server over mutual TLS."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from concentrador.cli import client as cli
from concentrador.cli.errors import CommandFailed
from concentrador.client.iec62325.collect import KV_STUCK, CollectionStopped
from concentrador.client.iec62325.signatures import SignatureRefused
from concentrador.client.runner import ClientRunner
from concentrador.config.model import Config, SigningConfig
from concentrador.pki import DevPki
from concentrador.spool.layout import Spool
from concentrador.spool.ledger import Ledger
from concentrador.spool.status import collect_status
from tests.client.conftest import SERVER_ID, bz2_payload
from tests.client.iec62325.conftest import client_dn, iec_client_config


def inbox(root: Path) -> dict[str, bytes]:
    folder = Spool(root).peer(SERVER_ID).dir("inbox")
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.is_dir() else {}


async def test_collect_stores_each_message_and_advances_the_cursor(
    pki: DevPki, client_root: Path, iec_server
) -> None:
    server = await iec_server()
    files = {f"CUR_0086_CREC_2024010{i}.0.bz2": bz2_payload(i, 5000 * i) for i in range(1, 4)}
    for name, data in files.items():
        server.publish(name, data)
    config = iec_client_config(pki, client_root, server.url)
    with Ledger(client_root / "ledger.sqlite3") as ledger:
        summary = await ClientRunner(config, ledger).collect(SERVER_ID)
        assert sorted(summary.stored) == sorted(files)
        assert summary.clock_offset is not None and abs(summary.clock_offset) < 5
        assert inbox(client_root) == files
        cursor = ledger.iec_cursor(SERVER_ID)
        codes = [e.code for e in server.ledger.coded_entries("CREC")]
        assert cursor == max(codes)
        for name in files:
            assert ledger.received(SERVER_ID, name) is not None
        # Nothing new: the next cycle lists after the cursor and fetches nothing.
        again = await ClientRunner(config, ledger).collect(SERVER_ID)
        assert again.listed == 0 and again.fetched == 0
        # A new message: only it is fetched.
        server.publish("CUR_0086_CREC_20240105.0.bz2", b"new")
        third = await ClientRunner(config, ledger).collect(SERVER_ID)
        assert third.stored == ["CUR_0086_CREC_20240105.0.bz2"]
        assert ledger.iec_cursor(SERVER_ID) > cursor
        assert ledger.status(SERVER_ID).get(KV_STUCK) == ""


async def test_soap_12_peer(pki: DevPki, client_root: Path, iec_server) -> None:
    server = await iec_server()
    server.publish("A.bz2", b"payload")
    config = iec_client_config(pki, client_root, server.url, soap_version="1.2")
    with Ledger(client_root / "ledger.sqlite3") as ledger:
        summary = await ClientRunner(config, ledger).collect(SERVER_ID)
    assert summary.stored == ["A.bz2"]


async def test_signer_of_another_peer_stops_the_cycle_and_stores_nothing(
    pki: DevPki, client_root: Path, iec_server
) -> None:
    server = await iec_server()
    server.publish("A.bz2", b"payload")
    # We expect 0086 to sign with CREC's certificate: its real signer is refused.
    config = iec_client_config(pki, client_root, server.url, dn=(client_dn(pki),))
    with Ledger(client_root / "ledger.sqlite3") as ledger:
        # A signed list answer with that signer ends the cycle; an unsigned one
        # (the server's choice) lets the get be refused: nothing stored either way.
        with contextlib.suppress(SignatureRefused, CollectionStopped):
            await ClientRunner(config, ledger).collect(SERVER_ID)
        assert ledger.iec_cursor(SERVER_ID) == 0
        status = ledger.status(SERVER_ID)
        why = status.get(KV_STUCK) or status["last_cycle_result"]
        assert "not a dn of peer 0086" in why
    assert inbox(client_root) == {}


async def _unsigned_answers(pki: DevPki, client_root: Path, iec_server: Any) -> tuple[Any, Config]:
    """A server whose answers are unsigned, message A.bz2 published; our config for it."""
    server = await iec_server()
    server.publish("A.bz2", b"payload")
    server.state.config = replace(server.state.config, signing=None)  # answers unsigned
    return server, iec_client_config(pki, client_root, server.url)


async def test_unsigned_answers_refused_when_required_taken_when_optional(
    pki: DevPki, client_root: Path, iec_server
) -> None:
    server, config = await _unsigned_answers(pki, client_root, iec_server)
    with Ledger(client_root / "ledger.sqlite3") as ledger:
        with pytest.raises(CollectionStopped) as stopped:
            await ClientRunner(config, ledger).collect(SERVER_ID)
        assert stopped.value.summary.stored == []
        assert "not signed" in ledger.status(SERVER_ID)[KV_STUCK]
        optional = iec_client_config(pki, client_root, server.url, signatures="optional")
        summary = await ClientRunner(optional, ledger).collect(SERVER_ID)
        assert summary.stored == ["A.bz2"]


async def test_cli_ls_and_time(pki: DevPki, client_root: Path, iec_server) -> None:
    server = await iec_server()
    server.publish("A.bz2", b"payload")
    server.publish("B.bz2", b"other")
    config = iec_client_config(pki, client_root, server.url)
    out = io.StringIO()
    args = argparse.Namespace(peer=SERVER_ID, types=None)
    # Run the synchronous commands in a thread: they start their own event loop.
    assert await asyncio.to_thread(cli.ls, config, args, out=out) == 0
    text = out.getvalue()
    assert "A.bz2" in text and "B.bz2" in text and "2 message(s)" in text
    out = io.StringIO()
    assert await asyncio.to_thread(cli.time, config, args, out=out) == 0
    assert out.getvalue().startswith(f"{SERVER_ID}: ") and "offset:" in out.getvalue()


async def test_cli_collect_stopped_at_a_message_fails_with_one_line(
    pki: DevPki, client_root: Path, iec_server
) -> None:
    """A stop is a failure: non-zero exit, one line naming the code and why; shown in status."""
    server, config = await _unsigned_answers(pki, client_root, iec_server)
    args = argparse.Namespace(peer=SERVER_ID)
    with pytest.raises(CommandFailed) as failed:
        await asyncio.to_thread(cli.collect, config, args, out=io.StringIO())
    message = str(failed.value)
    assert failed.value.exit_code != 0 and "\n" not in message
    assert message.startswith(f"{SERVER_ID}: collection stopped at code 1 (A.bz2): ")
    assert "not signed" in message and "skipped" not in message
    (peer,) = collect_status(config).peers
    assert peer.facts["last_cycle_result"].startswith("failed: ")
    assert peer.facts["iec_stuck"].startswith("code 1 (A.bz2): ")
    # Fixed at the peer: the next collect succeeds and the stop is no longer shown.
    server.state.config = replace(server.state.config, signing=iec_server_signing(pki))
    out = io.StringIO()
    assert await asyncio.to_thread(cli.collect, config, args, out=out) == 0
    assert "1 stored" in out.getvalue() and "stopped" not in out.getvalue()
    (peer,) = collect_status(config).peers
    assert "iec_stuck" not in peer.facts


def iec_server_signing(pki: DevPki) -> SigningConfig:
    """What the test server signs its answers with (as ``server_config`` sets it)."""
    return SigningConfig(cert=pki.directory / "client.pem", key=pki.directory / "client.key")
