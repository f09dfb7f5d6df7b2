"""``concentrador serve`` as a real process: sd_notify, SIGHUP, SIGTERM, exit codes."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from concentrador.spool.layout import Spool, SpoolState
from tests.daemon.conftest import NotifySocket
from tests.daemon.helpers import (
    CREC_DN,
    OTRO_DN,
    call_fecha_hora,
    client_context,
    config_text,
    enviar_codigo,
    enviar_message,
    peer_block,
    url_from_status,
    write_config,
)


class Server:
    """One ``concentrador serve`` process with journald-style logging."""

    def __init__(self, config: Path, notify: NotifySocket, log_path: Path) -> None:
        env = dict(os.environ)
        env.update(NOTIFY_SOCKET=str(notify.path), INVOCATION_ID="test", PYTHONUNBUFFERED="1")
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 (closed in stop())
        self.process = subprocess.Popen(
            [sys.executable, "-m", "concentrador", "--config", str(config), "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )

    def log_lines(self) -> list[str]:
        return self.log_path.read_text().splitlines()

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = 30) -> int:
        try:
            return self.process.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._log.close()


@pytest.fixture
def launch(notify_socket: NotifySocket, tmp_path: Path) -> Iterator:
    servers: list[Server] = []

    def start(config: Path) -> Server:
        server = Server(config, notify_socket, tmp_path / f"serve-{len(servers)}.log")
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.kill()


def test_ready_reload_and_stop_over_signals(
    launch, notify_socket: NotifySocket, config_path: Path, pki: Path, tmp_path: Path
) -> None:
    server = launch(config_path)
    ready = notify_socket.receive(30)
    assert ready.startswith("READY=1\nSTATUS=listening on https://127.0.0.1:")
    url, _, _ = url_from_status(ready)
    # READY came after listening: a TLS call succeeds right away.
    status, body = asyncio.run(call_fecha_hora(url, client_context(pki)))
    assert status == 200 and "fechaHora" in body

    # SIGHUP with a new peer: RELOADING=1, then READY=1 again, and it is live.
    peers = [peer_block("CREC", CREC_DN), peer_block("OTRO", OTRO_DN)]
    write_config(config_path, config_text(pki, tmp_path / "spool", peers=peers))
    server.signal(signal.SIGHUP)
    assert notify_socket.receive_until("READY=1", 30)[0] == "RELOADING=1"
    assert (tmp_path / "spool" / "OTRO" / "outbox").is_dir()
    otro = client_context(pki, "OTRO-client")
    assert asyncio.run(call_fecha_hora(url, otro, "OTRO"))[0] == 200

    # SIGHUP with a broken config: logged one line per problem, old one kept.
    write_config(config_path, "[node]\nid = 'x'\nbogus = true\n")
    server.signal(signal.SIGHUP)
    assert notify_socket.receive_until("READY=1", 30)[0] == "RELOADING=1"
    errors = [line for line in server.log_lines() if line.startswith("<3>")]
    assert any("reload: config:" in line and "bogus" in line for line in errors)
    assert any("keeping the running configuration" in line for line in errors)
    assert asyncio.run(call_fecha_hora(url, otro, "OTRO"))[0] == 200

    server.signal(signal.SIGTERM)
    assert notify_socket.receive(30) == "STOPPING=1"
    assert server.wait() == 0
    lines = server.log_lines()
    # journald style: a priority prefix on every line, no timestamps.
    assert lines and all(line[:3] in ("<3>", "<4>", "<6>", "<7>") for line in lines)
    assert not any(line[3:7].isdigit() for line in lines)


async def _slow_upload(host: str, port: int, pki: Path, name: str, payload: bytes, server: Server):
    message = enviar_message(name, payload)
    reader, writer = await asyncio.open_connection(
        host, port, ssl=client_context(pki), server_hostname="localhost"
    )
    head = (
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/dime\r\n"
        f"Content-Length: {len(message)}\r\n\r\n"
    ).encode()
    third = len(message) // 3
    writer.write(head + message[:third])
    await writer.drain()
    await asyncio.sleep(0.3)
    server.signal(signal.SIGTERM)  # mid-upload
    for start in range(third, len(message), 16384):
        writer.write(message[start : start + 16384])
        await writer.drain()
        await asyncio.sleep(0.02)
    response_head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
    length = next(
        int(line.split(b":")[1])
        for line in response_head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    body = await asyncio.wait_for(reader.readexactly(length), 20)
    writer.close()
    return response_head.split(b"\r\n")[0], body


def test_sigterm_during_upload_finishes_it_and_exits_0(
    launch, notify_socket: NotifySocket, config_path: Path, pki: Path, tmp_path: Path
) -> None:
    server = launch(config_path)
    _, host, port = url_from_status(notify_socket.receive(30))
    name = "F1_0086_20240101_20240102.0.bz2"
    payload = os.urandom(700_000)  # any bytes: enviarFichero stores them as received
    status_line, body = asyncio.run(_slow_upload(host, port, pki, name, payload, server))
    assert status_line == b"HTTP/1.1 200 OK"
    assert enviar_codigo(body) == 0
    assert server.wait() == 0
    peer = Spool(tmp_path / "spool").peer("CREC")
    stored = peer.dir(SpoolState.INBOX) / name
    assert hashlib.md5(stored.read_bytes()).digest() == hashlib.md5(payload).digest()
    assert [p.name for p in peer.work_dir.iterdir() if p.name != "peer.lock"] == []


def test_port_in_use_is_one_error_line_and_exit_1(
    launch, pki: Path, tmp_path: Path, notify_socket: NotifySocket
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = write_config(tmp_path / "c.toml", config_text(pki, tmp_path / "spool", port=port))
        server = launch(path)
        assert server.wait() == 1
    errors = [line for line in server.log_lines() if line.startswith(("<3>", "<2>"))]
    assert errors == [
        f"<3>concentrador.daemon.serve: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]
    # ... and READY=1 was never sent.
    notify_socket.sock.settimeout(0.2)
    with pytest.raises(TimeoutError):
        notify_socket.sock.recv(100)
