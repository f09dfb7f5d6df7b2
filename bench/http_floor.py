"""The aiohttp floor: what two bare round trips per file cost on this machine.

CPCSCC v2.3 needs two calls per file (recogerFichero, then
confirmacionRecepcionFichero), each answered before the next on one
connection. This measures a server and a client that do *nothing* but those
two exchanges: aiohttp on both sides, mutual TLS with the same dev
certificates, keep-alive, bodies of the same sizes as ours (a ~500-byte
request; a ~5.6 KB answer, then a ~400-byte one), no XML, no MD5, no disk,
no ledger. Any implementation on this stack is slower than this, so
``bench/client_bench.py`` prints it beside nginx + curl: the ratio to
nginx says how far we are from the ceiling, the ratio to this floor how much
of the gap is ours and how much is the stack's.

    .venv/bin/python bench/http_floor.py [--files 2000] [--connections 1,4]

The server runs in its own process (as our daemon does); the client in this
one. Prints files/s and each side's CPU ms per file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REQUEST = b"<x>" + b"y" * 500 + b"</x>"
FILE_ANSWER = b"z" * 5600
CONFIRM_ANSWER = b"c" * 400


def _server_process(pki: Path, port: int) -> None:
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        # The two calls alternate; the path tells which answer to give.
        answer = FILE_ANSWER if request.path == "/get" else CONFIRM_ANSWER
        return web.Response(body=answer if body else b"", content_type="text/xml")

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki / "ca.pem"))
    context.load_cert_chain(str(pki / "server.pem"), str(pki / "server.key"))
    context.verify_mode = ssl.CERT_REQUIRED

    async def serve() -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())


def _cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _client(pki: Path, port: int, files: int, connections: int) -> float:
    from aiohttp import ClientSession, TCPConnector

    context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    context.load_cert_chain(str(pki / "CREC-client.pem"), str(pki / "CREC-client.key"))
    base = f"https://localhost:{port}"
    async with ClientSession(connector=TCPConnector(ssl=context, limit=connections)) as session:

        async def lane(count: int) -> None:
            for _ in range(count):
                for path in ("/get", "/confirm"):
                    async with session.post(base + path, data=REQUEST) as answer:
                        await answer.read()

        await asyncio.gather(*[lane(10) for _ in range(connections)])  # warm the connections
        started = time.perf_counter()
        await asyncio.gather(*[lane(files // connections) for _ in range(connections)])
        return time.perf_counter() - started


def measure(pki: Path, files: int, connections: int) -> dict[str, float]:
    """files/s and CPU ms a file of each side, for ``connections`` lanes."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, __file__, "_serve", str(pki), str(port)],
        stdout=subprocess.PIPE,
    )
    try:
        assert server.stdout is not None
        if server.stdout.readline().strip() != b"ready":
            raise SystemExit("floor server did not start")
        server_cpu, client_cpu = _cpu_of(server.pid), time.process_time()
        wall = asyncio.run(_client(pki, port, files, connections))
        server_cpu, client_cpu = _cpu_of(server.pid) - server_cpu, time.process_time() - client_cpu
    finally:
        server.kill()
        server.wait()
    done = files // connections * connections
    return {
        "files_s": done / wall,
        "client_ms": client_cpu / done * 1000,
        "server_ms": server_cpu / done * 1000,
    }


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "_serve":
        _server_process(Path(sys.argv[2]), int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--connections", default="1,4")
    args = parser.parse_args()
    from concentrador.pki.devpki import init_dev_pki

    with tempfile.TemporaryDirectory(prefix="http-floor-") as tmp:
        pki = Path(tmp)
        init_dev_pki(pki, node_id="0086", peers=["CREC"])
        for connections in [int(c) for c in args.connections.split(",") if c]:
            floor = measure(pki, args.files, connections)
            print(
                f"connections={connections}: {floor['files_s']:.0f} files/s (2 calls a file), "
                f"CPU a file: client {floor['client_ms']:.2f} ms + "
                f"server {floor['server_ms']:.2f} ms"
            )


if __name__ == "__main__":
    main()
