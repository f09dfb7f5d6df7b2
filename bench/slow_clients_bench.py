"""Slow-client benchmark (issue 13): 300 idle TLS connections plus 200 slowloris.

Run: ``.venv/bin/python bench/slow_clients_bench.py [--idle 300] [--slow 200] [--no-trim]``.

A dev PKI, a config and the daemon as a subprocess (``concentrador serve``)
in a temporary folder. The caps are raised so that every attacker is
admitted (the bench measures the cost of a held connection, not the cap);
``header_timeout`` is 20 s so they are all held while we measure. Then:

1. RSS (``VmRSS`` of the daemon) at rest;
2. 300 TLS connections that complete the handshake and send nothing, and
   200 that send a request head one byte every 2 s; while they are held,
   20 peticionFechaHora calls on a kept-alive connection from another
   address (127.0.0.2): each latency (target < 100 ms) and RSS "during";
3. wait until the deadlines have closed them all (the 408s), then RSS
   "after" (the daemon calls malloc_trim once a burst drains; ``--no-trim``
   runs it without, to compare).

The figures are printed; they are never a unit test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from concentrador.pki.devpki import init_dev_pki  # noqa: E402
from concentrador.protocol.messages import PeticionFechaHora  # noqa: E402
from concentrador.protocol.soap import build_envelope  # noqa: E402

PEER = "CREC"
DN = "CN=crec-client-1,CN=CREC,OU=Concentradores,O=REE,C=es"
HEAD = b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/xml\r\nX-Slow: " + b"x" * 64
# Started with the allocator patched out, for the --no-trim comparison.
NO_TRIM = (
    "import sys, concentrador.daemon.process as p; p.release_free_memory = lambda: False; "
    "from concentrador.cli import main; sys.exit(main(sys.argv[1:]))"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def write_config(root: Path, pki: Path, port: int) -> Path:
    path = root / "concentrador.toml"
    path.write_text(
        f'[node]\nid = "0086"\nspool = "{root / "spool"}"\n\n'
        f'[server]\nlisten = "127.0.0.1:{port}"\ncert = "{pki}/server.pem"\n'
        f'key = "{pki}/server.key"\nclient_ca = "{pki}/ca.pem"\n'
        "header_timeout = 20\nmax_connections = 2000\nmax_connections_per_address = 2000\n\n"
        # Any free port for the console: not a running daemon's 9180.
        '[admin]\nlisten = "127.0.0.1:0"\n\n'
        f'[[peers]]\nid = "{PEER}"\ndn = ["{DN}"]\n'
    )
    return path


async def wait_for_port(port: int, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise RuntimeError("the daemon did not start")


class Attack:
    """Holds the idle and slowloris connections; counts how they end."""

    def __init__(self, port: int, context: ssl.SSLContext) -> None:
        self.port = port
        self.context = context
        self.tasks: list[asyncio.Task[None]] = []
        self.open = 0
        self.ended_with_408 = 0

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(
            "127.0.0.1", self.port, ssl=self.context, server_hostname="localhost"
        )

    async def hold(self, drip: bool) -> None:
        reader, writer = await self.connect()
        self.open += 1
        dripping = asyncio.create_task(self._drip(writer)) if drip else None
        try:
            answer = await reader.read()
            self.ended_with_408 += answer.startswith(b"HTTP/1.1 408")
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            self.open -= 1
            if dripping is not None:
                dripping.cancel()
            writer.close()

    @staticmethod
    async def _drip(writer: asyncio.StreamWriter) -> None:
        with_errors = (ConnectionError, RuntimeError)
        for byte in HEAD:
            await asyncio.sleep(2)
            try:
                writer.write(bytes([byte]))
            except with_errors:
                return

    async def start(self, idle: int, slow: int) -> None:
        for index in range(idle + slow):
            self.tasks.append(asyncio.create_task(self.hold(drip=index >= idle)))
            if index % 50 == 49:
                await asyncio.sleep(0.2)  # the listen backlog is 128
        while self.open < idle + slow:
            await asyncio.sleep(0.1)


async def normal_latencies(port: int, context: ssl.SSLContext, count: int) -> list[float]:
    """peticionFechaHora on one kept-alive connection from 127.0.0.2; ms each."""
    body = build_envelope(PeticionFechaHora().to_xml(), concentrador_id=PEER)
    request = (
        b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/xml; charset=utf-8\r\n"
        b'SOAPAction: "urn:peticionFechaHora"\r\nContent-Length: %d\r\n\r\n' % len(body) + body
    )
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname="localhost", local_addr=("127.0.0.2", 0)
    )
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        writer.write(request)
        answer = await reader.readuntil(b"Envelope>")
        latencies.append((time.perf_counter() - started) * 1000)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:100]
        await asyncio.sleep(0.05)
    writer.close()
    return latencies


async def run(args: argparse.Namespace, root: Path) -> None:
    pki = root / "pki"
    init_dev_pki(pki, peers=[PEER])
    port = free_port()
    config = write_config(root, pki, port)
    command = ["--config", str(config), "serve"]
    launcher = ["-c", NO_TRIM] if args.no_trim else ["-m", "concentrador"]
    daemon = subprocess.Popen(
        [sys.executable, *launcher, *command],
        cwd=ROOT,
        stderr=subprocess.DEVNULL if not args.verbose else None,
    )
    context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    context.load_cert_chain(str(pki / "CREC-client.pem"), str(pki / "CREC-client.key"))
    try:
        await wait_for_port(port)
        await asyncio.sleep(1)
        await normal_latencies(port, context, 3)  # warm up
        rest = rss_mb(daemon.pid)
        attack = Attack(port, context)
        opening = time.monotonic()
        await asyncio.wait_for(attack.start(args.idle, args.slow), 120)
        opened_in = time.monotonic() - opening
        await asyncio.sleep(2)
        latencies = await normal_latencies(port, context, 20)
        during = rss_mb(daemon.pid)
        held = attack.open
        await asyncio.wait_for(asyncio.gather(*attack.tasks), 120)
        closed_in = time.monotonic() - opening
        await asyncio.sleep(3)
        after = rss_mb(daemon.pid)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(60)
    total = args.idle + args.slow
    print(f"slow clients: {args.idle} idle TLS + {args.slow} slowloris, trim={not args.no_trim}")
    print(f"  opened all {total} in {opened_in:.1f} s; {held} held while measuring")
    print(
        f"  normal peticionFechaHora meanwhile: median {statistics.median(latencies):.1f} ms, "
        f"max {max(latencies):.1f} ms (target < 100 ms)"
    )
    print(
        f"  closed by the deadlines {closed_in:.1f} s after opening; "
        f"{attack.ended_with_408} answered 408"
    )
    per_connection = (during - rest) * 1024 / total
    print(
        f"  RSS: rest {rest:.1f} MB, during {during:.1f} MB (~{per_connection:.0f} KB per "
        f"connection), after {after:.1f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--idle", type=int, default=300)
    parser.add_argument("--slow", type=int, default=200)
    parser.add_argument("--no-trim", action="store_true", help="daemon without malloc_trim")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the daemon's log")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="slow-clients-") as tmp:
        os.chmod(tmp, 0o700)
        asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    main()
