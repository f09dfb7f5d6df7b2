"""Running the two-node demo for real: ``demo/setup.sh``, two ``serve`` processes,
one-shot CLI calls, and polling the spools with a deadline.

Everything goes through the same commands an operator types (the README's
demo section), with ``sys.executable -m concentrador`` standing in for
``.venv/bin/concentrador`` so that the test uses the interpreter it runs in.
"""

from __future__ import annotations

import bz2
import hashlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parents[2]
SETUP = REPO / "demo" / "setup.sh"
CLI_TIMEOUT = 60.0

NODE_A, NODE_B = "0086", "CREC"


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (held open together so they differ)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    # Not under systemd: plain timestamped log lines, and never notify a real
    # service manager that happens to run the test session.
    for key in ("NOTIFY_SOCKET", "INVOCATION_ID", "JOURNAL_STREAM", "CONCENTRADOR_CONFIG"):
        env.pop(key, None)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHON"] = sys.executable  # for demo/setup.sh
    return env


def run_setup(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SETUP), *args],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )


@dataclass
class Node:
    """One demo node: its config and spool, and its ``serve`` process once started."""

    node_id: str
    peer_id: str
    directory: Path
    port: int
    certs: Path
    admin_port: int = 0
    """Its operator console, on http://127.0.0.1:<admin_port>/."""
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def config(self) -> Path:
        return self.directory / "concentrador.toml"

    @property
    def log_path(self) -> Path:
        return self.directory / "serve.log"

    @property
    def console(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def folder(self, state: str) -> Path:
        """``spool/<PEER>/<state>`` of the one peer this node talks to."""
        return self.directory / "spool" / self.peer_id / state

    def names(self, state: str) -> list[str]:
        folder = self.folder(state)
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``concentrador --config <this node> ARGS...``, to completion."""
        return subprocess.run(
            [sys.executable, "-m", "concentrador", "--config", str(self.config), *args],
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            check=False,
        )

    def status(self) -> dict[str, Any]:
        """This node's ``status --json`` entry for its peer."""
        done = self.cli("status", "--json")
        assert done.returncode == 0, done.stderr
        (peer,) = [p for p in json.loads(done.stdout)["peers"] if p["id"] == self.peer_id]
        return peer

    def serve(self) -> None:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop/kill)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "concentrador", "--config", str(self.config), "serve"],
            env=child_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait: the exit code (killed and reported if it hangs)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"node {self.node_id} ignored SIGTERM for {timeout} s") from None
        finally:
            self._close_log()

    def kill(self) -> None:
        """The finalizer's last resort; a no-op for a process already gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


@dataclass
class Demo:
    """The two nodes that ``demo/setup.sh`` created under ``directory``."""

    directory: Path
    a: Node
    b: Node

    @property
    def nodes(self) -> tuple[Node, Node]:
        return (self.a, self.b)

    def diagnostics(self) -> str:
        """The tail of both daemons' logs, for assertion messages."""
        parts = []
        for node in self.nodes:
            tail = "\n".join(node.log_text().splitlines()[-25:])
            code = None if node.process is None else node.process.poll()
            parts.append(f"--- node {node.node_id} (exit {code}) log tail:\n{tail}")
        return "\n".join(parts)

    def wait_for(self, what: str, predicate: Callable[[], bool], timeout: float) -> None:
        """Poll ``predicate`` until true; fail early if a daemon died."""
        deadline = time.monotonic() + timeout
        while not predicate():
            dead = [n.node_id for n in self.nodes if n.process is not None and not n.running()]
            if dead:
                raise AssertionError(
                    f"node(s) {dead} exited while waiting for {what}\n" + self.diagnostics()
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {what}\n" + self.diagnostics()
                )
            time.sleep(0.1)

    def start(self, timeout: float = 30.0) -> None:
        """Start both daemons; return once each accepts a mutual-TLS handshake."""
        for node in self.nodes:
            node.serve()
        for node in self.nodes:
            self.wait_for(
                f"node {node.node_id} to accept TLS", lambda n=node: accepts_tls(n), timeout
            )


def make_demo(directory: Path, *, collect: str) -> Demo:
    """Run ``demo/setup.sh`` on free ports into ``directory``."""
    port_a, port_b, admin_a, admin_b = free_ports(4)
    done = run_setup(
        "--dir", str(directory), "--port-a", str(port_a), "--port-b", str(port_b),
        "--admin-a", str(admin_a), "--admin-b", str(admin_b), "--collect", collect,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    certs = directory / "certs"
    return Demo(
        directory,
        Node(NODE_A, NODE_B, directory / "node-a", port_a, certs, admin_a),
        Node(NODE_B, NODE_A, directory / "node-b", port_b, certs, admin_b),
    )


def accepts_tls(node: Node) -> bool:
    """A full handshake as the node's peer would do it (its client certificate,
    server name ``localhost``), not just an open port."""
    client = "client" if node.node_id == NODE_B else f"{NODE_B}-client"
    context = ssl.create_default_context(cafile=str(node.certs / "ca.pem"))
    context.load_cert_chain(node.certs / f"{client}.pem", node.certs / f"{client}.key")
    try:
        with (
            socket.create_connection(("127.0.0.1", node.port), timeout=2) as raw,
            context.wrap_socket(raw, server_hostname="localhost"),
        ):
            return True
    except OSError:  # refused while starting (ssl.SSLError is an OSError too)
        return False


def write_random_file(path: Path, size: int, chunk: int = 1 << 20) -> str:
    """Write ``size`` random bytes under a temp name, then rename them in (as an
    operator should); returns their SHA-256, computed as they are written."""
    digest = hashlib.sha256()
    temp = path.with_name(f".{path.name}.tmp")
    with open(temp, "wb") as handle:
        left = size
        while left:
            piece = os.urandom(min(chunk, left))
            handle.write(piece)
            digest.update(piece)
            left -= len(piece)
    temp.rename(path)
    return digest.hexdigest()


def sha256_of(paths: list[Path], *, decompress: bool = False, chunk: int = 1 << 20) -> str:
    """SHA-256 of the files' bytes joined in order (bzip2-decompressed if asked),
    streamed: a 20 MB file is never in memory whole."""
    digest = hashlib.sha256()
    for path in paths:
        with bz2.open(path, "rb") if decompress else open(path, "rb") as handle:
            while piece := handle.read(chunk):
                digest.update(piece)
    return digest.hexdigest()
