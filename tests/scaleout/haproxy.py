"""A real HAProxy in TCP mode for the scale-out tests: round-robin over the replicas' ports.

TCP mode forwards the bytes untouched, so mutual TLS goes through to the
replica (the replica sees the peer's client certificate), exactly as in the
reference layout of ``docs/deploy.md``. HAProxy runs in the foreground
(``-db``) so the fixture owns its PID, and is stopped by it.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from tests.scaleout.processes import find_program, free_port, log_tail, spawn, stop

START_TIMEOUT = 15.0


def render_config(
    port: int, backends: Sequence[int], admin_socket: Path, *, health_check: bool
) -> str:
    """The haproxy.cfg: one TCP listener, round-robin over ``backends`` on 127.0.0.1."""
    # Health checks are plain TCP connects (tcp-check): a replica that does
    # not accept is taken out within a second. Off by default so a test's
    # backends see only the tests' connections.
    check = " check inter 200ms fall 1 rise 1" if health_check else ""
    servers = "\n".join(
        f"    server r{index} 127.0.0.1:{backend}{check}" for index, backend in enumerate(backends)
    )
    return f"""\
global
    maxconn 2000
    stats socket {admin_socket} mode 600 level admin

defaults
    mode tcp
    timeout connect 2s
    timeout client 5m
    timeout server 5m
    # A replica that refuses the connection (killed): try again on another one.
    retries 2
    option redispatch 1

listen replicas
    bind 127.0.0.1:{port}
    balance roundrobin
{"    option tcp-check" + chr(10) if health_check else ""}{servers}
"""


class HAProxy:
    """One HAProxy process; ``port`` is where the peers connect."""

    def __init__(self, directory: Path, backends: Sequence[int], *, health_check: bool) -> None:
        if not backends:
            raise ValueError("HAProxy needs at least one backend port")
        self.binary = find_program("haproxy")
        self.directory = directory
        self.backends = list(backends)
        self.health_check = health_check
        self.admin_socket = directory / "haproxy.sock"
        self.config = directory / "haproxy.cfg"
        self.log = directory / "haproxy.log"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("HAProxy is not running")
        return self.process.pid

    def start(self) -> HAProxy:
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            for _ in range(3):  # the free port may be taken before HAProxy binds it
                self.port = free_port()
                self.config.write_text(
                    render_config(
                        self.port, self.backends, self.admin_socket, health_check=self.health_check
                    )
                )
                if self._launch():
                    return self
            raise RuntimeError(f"HAProxy did not start:\n{log_tail(self.log)}")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Hard stop (SIGTERM: close every connection now) by PID."""
        if self.process is not None:
            stop(self.process, signal.SIGTERM)
            self.process = None

    def command(self, line: str) -> str:
        """One command on the admin socket (``show stat``, ``disable server replicas/r0``...)."""
        with socket.socket(socket.AF_UNIX) as admin:
            admin.settimeout(5)
            admin.connect(str(self.admin_socket))
            admin.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := admin.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def _launch(self) -> bool:
        argv: list[str | Path] = [self.binary, "-db", "-f", self.config]
        self.process = spawn(argv, user=None, log=self.log, parent_death_signal="KILL")
        deadline = time.monotonic() + START_TIMEOUT
        # Ready once the admin socket answers: the listeners are bound before
        # it, and probing the admin socket (not the frontend) leaves the
        # round-robin order to the test's own connections.
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                if "cannot bind" in log_tail(self.log, 10).lower():
                    return False
                raise RuntimeError(f"HAProxy exited at start-up:\n{log_tail(self.log)}")
            try:
                if "Name: HAProxy" in self.command("show info"):
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"HAProxy not ready in {START_TIMEOUT} s:\n{log_tail(self.log)}")
