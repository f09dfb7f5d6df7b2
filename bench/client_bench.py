"""Client benchmarks: a collection cycle of many small files, and of one large file.

Needs ``curl``, ``nginx`` and ``lbzip2`` on PATH. Our server runs as a real
daemon (``concentrador serve``) in its own process; the client cycle runs in
another process, so its peak RSS is its own.

1. **1,000 small files** (about 5 KB) published for CREC: one collection
   cycle (list, 1,000 × recogerFichero + MD5 + durable store + confirmation,
   over the peer's ``connections`` keep-alive connections: 1, the spec's
   advice, and 4), in files/s; beside it, in the same run, one curl fetching
   the same 1,000 files from nginx over HTTPS on one keep-alive connection
   (``curl -K urls.txt``, no ``--parallel``; mutual TLS, same certificates),
   and the ratio. nginx does no MD5, no fsync and no confirmation, so it is a
   ceiling, not a peer. Each run starts from fresh spools; ``--runs`` runs.
   Beside both, the bare aiohttp floor (``bench/http_floor.py``: the same two
   calls a file over mutual TLS with nothing behind them), which any
   implementation on our stack stays under.
2. **One large compressed file** cut in 8,000,000-byte blocks: collection
   throughput (fetch + verify + store every block, rebuild, confirm) and the
   client's peak RSS, at several sizes to show that RSS is flat in file size.

    .venv/bin/python bench/client_bench.py [--small 1000] [--file-kb 5] [--connections 1,4]
        [--runs 3] [--sizes 128,256,512]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.http_floor import measure as http_floor  # noqa: E402
from bench.outbox_drop_bench import process_cpu  # noqa: E402
from bench.server_bench import (  # noqa: E402
    curl_base,
    free_port,
    start_daemon,
    start_nginx,
    write_config,
)
from concentrador.pki.devpki import init_dev_pki  # noqa: E402
from concentrador.protocol.blocks import split_plan  # noqa: E402
from concentrador.spool.layout import Spool, SpoolState  # noqa: E402
from concentrador.spool.ledger import Ledger, PublishedEntry  # noqa: E402

PEER = "CREC"
BLOCK = 8_000_000


def client_config(work: Path, pki: Path, port: int, connections: int = 1) -> Path:
    path = work / "client.toml"
    path.write_text(
        f'[node]\nid = "CREC"\nspool = "{work / "client-spool"}"\n\n'
        "[server]\ninsecure_http = true\n\n"
        f'[client]\ncert = "{pki}/CREC-client.pem"\nkey = "{pki}/CREC-client.key"\n'
        f'ca = "{pki}/ca.pem"\ntimeout = 120\n\n'
        f'[[peers]]\nid = "0086"\nurl = "https://localhost:{port}/"\n'
        f"connections = {connections}\n"
    )
    return path


def publish(spool_root: Path, files: dict[str, Path | bytes], block_size: int = BLOCK) -> list[str]:
    """Published files and ledger rows for CREC, split in blocks like the publisher."""
    spool = Spool(spool_root)
    spool.ensure([PEER])
    published = spool.peer(PEER).dir(SpoolState.PUBLISHED)
    now = datetime.now(UTC)
    entries, names = [], []
    for name, content in files.items():
        if isinstance(content, bytes):
            (published / name).write_bytes(content)
            md5 = hashlib.md5(content).hexdigest()
            entries.append(PublishedEntry(PEER, name, name, "CUR", len(content), md5, now))
            names.append(name)
            continue
        size = content.stat().st_size
        with open(content, "rb") as source:
            for span in split_plan(name, size, block_size):
                piece = source.read(span.length)
                (published / span.name).write_bytes(piece)
                md5 = hashlib.md5(piece).hexdigest()
                entries.append(PublishedEntry(PEER, span.name, name, "CUR", len(piece), md5, now))
                names.append(span.name)
    with Ledger(spool.ledger_path) as ledger:
        ledger.record_published(entries)
    return names


def run_collect_child(script: str, config: Path) -> tuple[dict, str]:
    """Run ``script _collect CONFIG`` (a bench's child mode): its JSON result and stderr."""
    out = subprocess.run(
        [sys.executable, script, "_collect", str(config)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"collect failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr


def run_collect(config: Path) -> dict:
    """One collection cycle in a child process; its wall time and peak RSS."""
    return run_collect_child(__file__, config)[0]


def _collect_child(config_path: str) -> None:
    import asyncio

    from concentrador.client.runner import ClientRunner
    from concentrador.config import load_config

    config = load_config(config_path)
    spool = Spool(config.node.spool)
    spool.ensure()
    with Ledger(spool.ledger_path) as ledger:
        started, cpu = time.perf_counter(), time.process_time()
        summary = asyncio.run(ClientRunner(config, ledger).collect("0086"))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({
        "seconds": elapsed, "cpu": cpu, "stored": len(summary.stored),
        "confirmed": len(summary.confirmed),
        "fetched": summary.fetched, "bytes": summary.bytes, "rss_mb": rss_mb,
    }))  # fmt: skip


def curl_keepalive(pki: Path, work: Path, urls: list[str]) -> float:
    """Wall time of one curl fetching ``urls`` from a ``-K`` file (one connection)."""
    config = work / "urls.txt"
    config.write_text("".join(f'url = "{url}"\noutput = "/dev/null"\n' for url in urls))
    write_out = "%{http_code} %{num_connects}\\n"
    started = time.perf_counter()
    out = subprocess.run(
        [*curl_base(pki), "--write-out", write_out, "-K", str(config)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    wall = time.perf_counter() - started
    rows = [line.split() for line in out.strip().splitlines()]
    if len(rows) != len(urls) or any(code != "200" for code, _ in rows):
        raise SystemExit(f"curl: unexpected answers {rows[:3]}")
    if sum(int(connects) for _, connects in rows) != 1:
        raise SystemExit("curl opened more than one connection")
    return wall


def bench_small(work: Path, pki: Path, count: int, file_kb: int, connections: int) -> dict:
    body = file_kb * 1000 - 4
    small = {f"P1_0086_{i:05d}.0.bz2": b"BZh9" + os.urandom(body) for i in range(count)}
    port, nginx_port = free_port(), free_port()
    publish(work / "spool", small)
    daemon = start_daemon(write_config(work, pki, port), work)
    docroot = Spool(work / "spool").peer(PEER).dir(SpoolState.PUBLISHED)
    nginx = start_nginx(work, pki, nginx_port, docroot)
    try:
        wall = curl_keepalive(pki, work, [f"https://localhost:{nginx_port}/{n}" for n in small])
        server_cpu = process_cpu(daemon.pid)
        result = run_collect(client_config(work, pki, port, connections))
        server_cpu = process_cpu(daemon.pid) - server_cpu
        assert result["confirmed"] == count, result
    finally:
        for process in (daemon, nginx):
            process.terminate()
            process.wait(30)
    ours, nginx_rate = count / result["seconds"], count / wall
    floor = http_floor(pki, count, connections)
    return {
        "ours_files_s": ours, "nginx_files_s": nginx_rate, "ratio": ours / nginx_rate,
        "floor_files_s": floor["files_s"], "floor_ratio": ours / floor["files_s"],
        "nginx_floor": nginx_rate / floor["files_s"],
        # CPU ms a file: scatters far less than wall rates on a busy machine.
        "client_ms": result["cpu"] / count * 1000, "server_ms": server_cpu / count * 1000,
        **result,
    }  # fmt: skip


def bench_large(work: Path, pki: Path, size_mb: int) -> dict:
    source = work / "big.bz2"
    with open(source, "wb") as out:
        head = subprocess.Popen(["head", "-c", str(size_mb << 20), "/dev/urandom"],
                                stdout=subprocess.PIPE)  # fmt: skip
        subprocess.run(["lbzip2", "-1", "-c"], stdin=head.stdout, stdout=out, check=True)
        head.wait()
    compressed = source.stat().st_size
    port = free_port()
    names = publish(work / "spool", {"F1_0086_BIG.0.bz2": source})
    source.unlink()
    daemon = start_daemon(write_config(work, pki, port), work)
    try:
        result = run_collect(client_config(work, pki, port))
    finally:
        daemon.terminate()
        daemon.wait(30)
    assert result["confirmed"] == 1, result
    return {"compressed_mb": compressed / 1e6, "blocks": len(names),
            "mb_s": compressed / 1e6 / result["seconds"], **result}  # fmt: skip


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "_collect":
        _collect_child(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--file-kb", type=int, default=5, help="size of each small file")
    parser.add_argument("--connections", default="1,4", help="peer connections to measure")
    parser.add_argument("--runs", type=int, default=3, help="runs of the small-file cycle")
    parser.add_argument("--sizes", default="128,256,512", help="large-file sizes in MB")
    args = parser.parse_args()
    for tool in ("curl", "nginx", "lbzip2"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found")
    base = Path(tempfile.mkdtemp(prefix="client-bench-"))
    try:
        pki = base / "pki"
        init_dev_pki(pki, node_id="0086", peers=[PEER])
        print(f"{args.small} files of {args.file_kb} KB, one cycle; "
              "nginx + one curl on one keep-alive connection beside it (ceiling):")  # fmt: skip
        for connections in [int(c) for c in args.connections.split(",") if c]:
            for run in range(1, args.runs + 1):
                work = base / f"small-{connections}-{run}"
                work.mkdir()
                small = bench_small(work, pki, args.small, args.file_kb, connections)
                print(f"  connections={connections} run {run}: ours {small['ours_files_s']:6.0f} "
                      f"files/s, nginx+curl {small['nginx_files_s']:6.0f} files/s, "
                      f"ratio {small['ratio']:.3f}x (aim >= 0.17x), CPU a file: client "
                      f"{small['client_ms']:.2f} ms + server {small['server_ms']:.2f} ms, "
                      f"client peak RSS {small['rss_mb']:.0f} MB; bare aiohttp floor "
                      f"{small['floor_files_s']:.0f} files/s (ours {small['floor_ratio']:.2f}x "
                      f"of it; nginx+curl {small['nginx_floor']:.1f}x)")  # fmt: skip
                shutil.rmtree(work)
        for size in [int(s) for s in args.sizes.split(",") if s]:
            work = base / f"large-{size}"
            work.mkdir()
            large = bench_large(work, pki, size)
            print(f"{large['compressed_mb']:.0f} MB compressed, {large['blocks']} blocks: "
                  f"{large['mb_s']:.1f} MB/s, peak RSS {large['rss_mb']:.0f} MB "
                  f"({large['seconds']:.1f} s)")  # fmt: skip
            shutil.rmtree(work)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
