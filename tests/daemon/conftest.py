"""Fixtures of the daemon tests: one dev PKI per session, a tmp config, a
running in-process daemon, a systemd notify socket."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from concentrador.config import load_config
from concentrador.daemon.serve import Daemon, DaemonOptions
from concentrador.pki.devpki import init_dev_pki
from tests.daemon.helpers import config_text, write_config


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("pki")
    init_dev_pki(directory, peers=["CREC", "OTRO"])
    return directory


@pytest.fixture
def config_path(tmp_path: Path, pki: Path) -> Path:
    return write_config(tmp_path / "concentrador.toml", config_text(pki, tmp_path / "spool"))


class NotifySocket:
    """A stand-in for systemd's notify socket."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))

    def receive(self, timeout: float = 30.0) -> str:
        self.sock.settimeout(timeout)
        return self.sock.recv(4096).decode()

    def receive_until(self, prefix: str, timeout: float = 30.0) -> list[str]:
        """Every datagram up to and including the first that starts with ``prefix``."""
        seen = []
        while True:
            message = self.receive(timeout)
            seen.append(message)
            if message.startswith(prefix):
                return seen

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifySocket]:
    notify = NotifySocket(tmp_path / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", str(notify.path))
    yield notify
    notify.close()


FAST = DaemonOptions(
    watch=False,
    settle_seconds=0.0,
    shutdown_timeout=5.0,
    outbox_sweep_seconds=3600,
    reassembly_sweep_seconds=3600,
    expiry_seconds=3600,
    crl_check_seconds=3600,
)


@pytest.fixture
async def start_daemon(config_path: Path) -> AsyncIterator:
    """``await start_daemon(options)`` → a started in-process daemon, stopped after."""
    started: list[Daemon] = []

    async def start(options: DaemonOptions = FAST, path: Path = config_path) -> Daemon:
        daemon = Daemon(load_config(path), options)
        await daemon.start()
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        await daemon.stop()
