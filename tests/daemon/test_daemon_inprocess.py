"""The daemon started in-process on an ephemeral port with the dev PKI."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from concentrador.config import load_config
from concentrador.daemon import serve as daemon_module
from concentrador.daemon.serve import Daemon, DaemonOptions, StartupError, run_daemon
from concentrador.pki.authority import CertificateAuthority
from concentrador.spool.layout import Spool, SpoolState
from concentrador.spool.ledger import Ledger
from tests.daemon.conftest import FAST
from tests.daemon.helpers import (
    CREC_DN,
    OTRO_DN,
    async_wait_until,
    call_fecha_hora,
    client_context,
    config_text,
    enviar_message,
    peer_block,
    port_accepts,
    write_config,
)

F1_NAME = "F1_0086_20240101_20240102.0"


def f1_lines(count: int = 2000) -> bytes:
    return b"".join(
        f"{i % 97:06d};2024/01/01 {i % 24:02d}:00;0;{i * 7 % 1000};0;0;0;0;0;0\n".encode()
        for i in range(count)
    )


async def test_ready_is_sent_only_once_the_port_accepts(
    start_daemon, notify_socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, bool]] = []
    holder: list[Daemon] = []
    real_ready = daemon_module.sdnotify.ready

    def checking_ready(status: str = "") -> bool:
        # Connect at the very moment READY is sent: a blocking connect is
        # answered by the kernel's listen backlog, not by the (busy) loop.
        host, port = holder[0].addresses[0]
        seen.append((status, port_accepts(host, port)))
        return real_ready(status)

    monkeypatch.setattr(daemon_module.sdnotify, "ready", checking_ready)
    original_start = Daemon._start_server

    async def remember(self: Daemon) -> None:
        holder.append(self)
        await original_start(self)

    monkeypatch.setattr(Daemon, "_start_server", remember)
    daemon = await start_daemon()
    assert len(seen) == 1
    status, accepted = seen[0]
    assert accepted, "READY=1 was sent before the port accepted connections"
    assert status == f"listening on {daemon.url}"
    assert notify_socket.receive(5) == f"READY=1\nSTATUS=listening on {daemon.url}"


async def test_outbox_file_is_published_by_the_watcher(start_daemon, tmp_path: Path) -> None:
    # Sweeps an hour apart: only the watcher can publish within the test.
    daemon = await start_daemon(dataclasses.replace(FAST, watch=True, settle_seconds=0.3))
    outbox = tmp_path / "spool" / "CREC" / "outbox"
    published = tmp_path / "spool" / "CREC" / "published"
    (outbox / F1_NAME).write_bytes(f1_lines())
    assert await async_wait_until(lambda: (published / f"{F1_NAME}.bz2").exists(), 15)
    entry = daemon.services.ledger.lookup("CREC", f"{F1_NAME}.bz2")
    assert entry is not None and entry.file_type == "CUR"
    # The operator's original is archived right after (never deleted).
    assert await async_wait_until(lambda: not (outbox / F1_NAME).exists(), 5)


async def test_outbox_file_is_published_by_the_sweep_without_watcher(
    start_daemon, tmp_path: Path
) -> None:
    await start_daemon(dataclasses.replace(FAST, watch=False, outbox_sweep_seconds=0.5))
    published = tmp_path / "spool" / "CREC" / "published"
    (tmp_path / "spool" / "CREC" / "outbox" / F1_NAME).write_bytes(f1_lines())
    assert await async_wait_until(lambda: (published / f"{F1_NAME}.bz2").exists(), 10)


async def test_startup_publishes_what_was_waiting_and_clears_work(
    config_path: Path, tmp_path: Path, start_daemon
) -> None:
    peer = Spool(tmp_path / "spool").peer("CREC").ensure()
    (peer.dir(SpoolState.OUTBOX) / F1_NAME).write_bytes(f1_lines(10))
    (peer.work_dir / "leftover.part").write_bytes(b"half a file")
    await start_daemon()  # no watcher, no sweep due: the start-up pass did it
    assert (peer.dir(SpoolState.PUBLISHED) / f"{F1_NAME}.bz2").exists()
    assert not (peer.work_dir / "leftover.part").exists()


async def test_reload_applies_a_new_peer_and_keeps_the_old_config_when_broken(
    start_daemon, config_path: Path, pki: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    daemon = await start_daemon()
    otro = client_context(pki, "OTRO-client")
    status, body = await call_fecha_hora(daemon.url, otro, "OTRO")
    assert status == 500 and "Autenticacion" in body

    peers = [peer_block("CREC", CREC_DN), peer_block("OTRO", OTRO_DN)]
    write_config(config_path, config_text(pki, tmp_path / "spool", peers=peers))
    assert await daemon.reload() is True
    assert (tmp_path / "spool" / "OTRO" / "outbox").is_dir()
    status, body = await call_fecha_hora(daemon.url, otro, "OTRO")
    assert status == 200 and "fechaHora" in body

    write_config(config_path, config_text(pki, tmp_path / "spool", peers=peers) + "\nbogus = 1\n")
    with caplog.at_level(logging.ERROR, logger="concentrador.daemon.serve"):
        assert await daemon.reload() is False
    problems = [r.getMessage() for r in caplog.records if "reload: config:" in r.getMessage()]
    assert len(problems) == 1 and "bogus" in problems[0]
    assert daemon.config.peer_by_id("OTRO") is not None
    status, _ = await call_fecha_hora(daemon.url, otro, "OTRO")
    assert status == 200


async def test_reload_keeps_listen_address_until_restart(
    start_daemon, config_path: Path, pki: Path, tmp_path: Path
) -> None:
    daemon = await start_daemon()
    before = daemon.addresses
    write_config(config_path, config_text(pki, tmp_path / "spool", port=1))
    assert await daemon.reload() is True
    assert daemon.config.server.port == 0 and daemon.addresses == before


def _revoke_crec(pki: Path) -> None:
    ca = CertificateAuthority(
        x509.load_pem_x509_certificate((pki / "ca.pem").read_bytes()),
        serialization.load_pem_private_key((pki / "ca.key").read_bytes(), None),
    )
    revoked = [
        x509.load_pem_x509_certificate((pki / name).read_bytes())
        for name in ("CREC-client.pem", "revoked-client.pem")
    ]
    crl = ca.crl(revoked).public_bytes(serialization.Encoding.PEM)
    tmp = pki / "ca.crl.new"
    tmp.write_bytes(crl)
    os.replace(tmp, pki / "ca.crl")


async def test_certificate_revoked_after_start_is_refused_without_restart(
    start_daemon, tmp_path: Path, pki: Path
) -> None:
    # A private copy of the PKI: this test rewrites the CRL.
    own_pki = tmp_path / "pki"
    own_pki.mkdir()
    for item in pki.iterdir():
        (own_pki / item.name).write_bytes(item.read_bytes())
    path = write_config(tmp_path / "own.toml", config_text(own_pki, tmp_path / "spool"))
    daemon = await start_daemon(dataclasses.replace(FAST, crl_check_seconds=0.2), path)
    crec = client_context(own_pki)
    status, _ = await call_fecha_hora(daemon.url, crec)
    assert status == 200

    _revoke_crec(own_pki)

    async def refused() -> bool:
        try:
            await call_fecha_hora(daemon.url, crec)
        except (aiohttp.ClientError, ssl_errors()):
            return True
        return False

    for _ in range(100):
        if await refused():
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("the revoked certificate was still accepted 10 s after the CRL changed")
    status, _ = await call_fecha_hora(daemon.url, client_context(own_pki, "OTRO-client"), "OTRO")
    assert status == 500  # OTRO is not configured, but its certificate still passes TLS


def ssl_errors() -> type[Exception]:
    import ssl

    return ssl.SSLError


async def test_stop_with_a_stalled_upload_leaves_no_half_file(
    start_daemon, pki: Path, tmp_path: Path
) -> None:
    daemon = await start_daemon(dataclasses.replace(FAST, shutdown_timeout=1.0))
    host, port = daemon.addresses[0]
    message = enviar_message("F1_0086_20240101_20240102.0.bz2", os.urandom(600_000))
    _, writer = await asyncio.open_connection(
        host, port, ssl=client_context(pki), server_hostname="localhost"
    )
    head = (
        f"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/dime\r\n"
        f"Content-Length: {len(message)}\r\n\r\n"
    ).encode()
    writer.write(head + message[: len(message) // 2])  # ... and never the rest
    await writer.drain()
    peer = Spool(tmp_path / "spool").peer("CREC")
    assert await async_wait_until(lambda: any(peer.work_dir.glob("*.part")), 5)
    await asyncio.wait_for(daemon.stop(), 15)
    writer.close()
    leftovers = [p.name for p in peer.work_dir.iterdir() if p.name != "peer.lock"]
    assert leftovers == []
    assert peer.files(SpoolState.INBOX) == [] and peer.files(SpoolState.PARTIAL) == []
    with Ledger(Spool(tmp_path / "spool").ledger_path) as ledger:
        assert ledger.received("CREC", "F1_0086_20240101_20240102.0.bz2") is None


async def test_listen_failure_is_one_line_and_exit_code_1(
    tmp_path: Path, pki: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = write_config(tmp_path / "c.toml", config_text(pki, tmp_path / "spool", port=port))
        with caplog.at_level(logging.ERROR):
            code = await run_daemon(load_config(path), FAST)
    assert code == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [f"cannot listen on 127.0.0.1:{port}: Address already in use"]


async def test_bad_server_certificate_is_a_startup_error(tmp_path: Path, pki: Path) -> None:
    bogus = tmp_path / "server.pem"
    bogus.write_text("not a certificate\n")
    text = config_text(pki, tmp_path / "spool").replace(f"{pki}/server.pem", str(bogus))
    daemon = Daemon(load_config(write_config(tmp_path / "c.toml", text)), FAST)
    with pytest.raises(StartupError, match=r"server certificate .*server\.pem"):
        await daemon.start()
    # Start failed cleanly: the ledger is closed, nothing listens.
    assert daemon.addresses == []


async def test_insecure_http_warns_loudly(
    tmp_path: Path, pki: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = config_text(pki, tmp_path / "spool").replace(
        "[server]\n", "[server]\ninsecure_http = true\n"
    )
    config = load_config(write_config(tmp_path / "c.toml", text))
    daemon = Daemon(config, DaemonOptions(watch=False))
    with caplog.at_level(logging.WARNING):
        await daemon.start()
    try:
        assert daemon.url.startswith("http://")
        assert any("INSECURE" in r.getMessage() for r in caplog.records)
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            from tests.daemon.helpers import fecha_hora_envelope

            async with session.post(daemon.url, data=fecha_hora_envelope()) as response:
                assert response.status == 200
    finally:
        await daemon.stop()


async def test_file_not_yet_settled_at_startup_is_published_without_waiting_for_a_sweep(
    tmp_path: Path, start_daemon
) -> None:
    peer = Spool(tmp_path / "spool").peer("CREC").ensure()
    (peer.dir(SpoolState.OUTBOX) / F1_NAME).write_bytes(f1_lines(10))
    # The file is fresh, so the start-up pass must skip it as unsettled; the
    # sweep is an hour away and the watcher is off.
    await start_daemon(dataclasses.replace(FAST, watch=False, settle_seconds=0.5))
    published = peer.dir(SpoolState.PUBLISHED) / f"{F1_NAME}.bz2"
    assert await async_wait_until(published.exists, 10)
