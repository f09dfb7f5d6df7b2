"""Server benchmarks: recogerFichero throughput vs nginx, peak RSS under 32
clients, informacionDisponible TOD latency with 10,000 published files.

Run: ``.venv/bin/python bench/server_bench.py [--requests 20] [--clients 32]``.
Needs ``curl`` and ``nginx`` (Debian ``nginx-light``) on PATH. Everything
lives in a temporary folder: a dev PKI, a config, a spool whose published
files are written directly (files + one ledger transaction), the daemon as a
subprocess (``concentrador serve``) and nginx on another loopback port.

1. **Throughput**: one curl process, one keep-alive TLS connection, N POSTs
   of the recogerFichero envelope for an 8,000,000-byte block, versus the
   same curl GETting the same bytes N times from nginx (same certificates,
   client certificate required, ``worker_processes 1`` like our single
   process). Target: ours >= 0.6x nginx.
2. **Peak RSS**: 32 curl processes at once, each fetching 8 MB blocks over
   its own connection; the server's ``VmHWM`` from ``/proc/PID/status``.
   Target: < 120 MB.
3. **TOD listing**: informacionDisponible(TOD) with 10,000 published files,
   timed by curl per request on a kept-alive connection (so without the TLS
   handshake). Target: < 150 ms.

Figures go in the lead's closing note; never into unit tests.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from concentrador.pki.devpki import init_dev_pki  # noqa: E402
from concentrador.protocol.messages import InformacionDisponible, RecogerFichero  # noqa: E402
from concentrador.protocol.soap import build_envelope  # noqa: E402
from concentrador.spool.layout import Spool, SpoolState  # noqa: E402
from concentrador.spool.ledger import Ledger, PublishedEntry  # noqa: E402

BLOCK = 8_000_000
PEER = "CREC"
LISTING_FILES = 10_000
BIG_FILES = 4  # distinct 8 MB files the RSS clients spread over


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(work: Path, pki: Path, port: int, extra: str = "") -> Path:
    """The daemon's config: CREC a v2.3 peer; ``extra`` TOML (more tables) appended."""
    path = work / "concentrador.toml"
    path.write_text(
        f'[node]\nid = "0086"\nspool = "{work / "spool"}"\n\n'
        f'[server]\nlisten = "127.0.0.1:{port}"\ncert = "{pki}/server.pem"\n'
        f'key = "{pki}/server.key"\nclient_ca = "{pki}/ca.pem"\ncrl = "{pki}/ca.crl"\n\n'
        # Any free port for the console: not a running daemon's 9180.
        '[admin]\nlisten = "127.0.0.1:0"\n\n'
        f'[[peers]]\nid = "{PEER}"\n'
        f'dn = ["CN=crec-client-1,CN=CREC,OU=Concentradores,O=REE,C=es"]\n'
        f"{extra}"
    )
    return path


def publish_directly(
    spool_root: Path,
    peers: tuple[str, ...] = (PEER,),
    *,
    big_files: int = BIG_FILES,
    big_size: int = BLOCK,
    listing_files: int = LISTING_FILES,
) -> list[str]:
    """Write published files and their ledger rows without the publisher.

    Every peer in ``peers`` gets the same bytes under the same names (so two
    profiles can be compared on the same files); the big names are returned.
    """
    spool = Spool(spool_root)
    spool.ensure(list(peers))
    now = datetime.now(UTC)
    entries = []
    big_names = []
    big = []
    for i in range(big_files):
        name = f"F1_0086_2024010{i}_2024010{i + 1}.0.bz2"
        data = os.urandom(big_size)  # incompressible: as large on the wire as on disk
        big.append((name, data, hashlib.md5(data).hexdigest()))
        big_names.append(name)
    small = b"BZh9" + b"\0" * 2044
    small_md5 = hashlib.md5(small).hexdigest()
    types = ["CUR", "INC", "TAR", "MAG", "OBJ"]
    for peer in peers:
        published = spool.peer(peer).dir(SpoolState.PUBLISHED)
        for name, data, md5 in big:
            (published / name).write_bytes(data)
            entries.append(PublishedEntry(peer, name, name, "CUR", big_size, md5, now))
        for i in range(listing_files):
            name = f"P1_0086_{i:05d}.0.bz2"
            (published / name).write_bytes(small)
            file_type = types[i % len(types)]
            entries.append(PublishedEntry(peer, name, name, file_type, len(small), small_md5, now))
    with Ledger(spool.ledger_path) as ledger:
        ledger.record_published(entries)
    return big_names


def start_daemon(
    config: Path, work: Path, command: list[str] | None = None
) -> subprocess.Popen[bytes]:
    """``concentrador serve`` (or ``command``, which must notify systemd), once READY=1."""
    notify_path = work / "notify.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify.settimeout(60)
    env = dict(os.environ, NOTIFY_SOCKET=str(notify_path), INVOCATION_ID="bench")
    env.update(json.loads(os.environ.get("BENCH_ENV", "{}")))
    process = subprocess.Popen(
        command or [sys.executable, "-m", "concentrador", "--config", str(config), "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(work / "daemon.log", "wb"),  # noqa: SIM115 (lives as long as the process)
    )
    try:
        message = notify.recv(4096).decode()
    finally:
        notify.close()
    if not message.startswith("READY=1"):
        raise SystemExit(f"daemon did not become ready: {message!r}")
    return process


def start_nginx(work: Path, pki: Path, port: int, docroot: Path) -> subprocess.Popen[bytes]:
    conf = work / "nginx.conf"
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf.write_text(
        f"{user}worker_processes 1;\npid {work}/nginx.pid;\nerror_log {work}/nginx-error.log;\n"
        "events { worker_connections 1024; }\n"
        "http {\n  access_log off;\n  sendfile on;\n"
        f"  client_body_temp_path {work}/nginx-tmp;\n"
        f"  server {{\n    listen 127.0.0.1:{port} ssl;\n"
        f"    ssl_certificate {pki}/server.pem;\n    ssl_certificate_key {pki}/server.key;\n"
        f"    ssl_client_certificate {pki}/ca.pem;\n    ssl_verify_client on;\n"
        f"    keepalive_requests 100000;\n    root {docroot};\n  }}\n}}\n"
    )
    process = subprocess.Popen(
        ["nginx", "-c", str(conf), "-p", str(work), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.05)
    raise SystemExit(f"nginx did not start; see {work}/nginx-error.log")


def curl_base(pki: Path, peer: str = PEER) -> list[str]:
    """curl with mutual TLS as ``peer``'s dev client certificate."""
    return [
        "curl",
        "--silent",
        "--show-error",
        "--cacert",
        str(pki / "ca.pem"),
        "--cert",
        str(pki / f"{peer}-client.pem"),
        "--key",
        str(pki / f"{peer}-client.key"),
    ]


def to_null(urls: list[str]) -> list[str]:
    """curl's ``-o`` applies to one URL: give every URL its own."""
    return [arg for url in urls for arg in ("-o", "/dev/null", url)]


def curl_post_args(envelope: Path) -> list[str]:
    return [
        "--data-binary",
        f"@{envelope}",
        "-H",
        "Content-Type: text/xml; charset=utf-8",
        "-H",
        "Expect:",
    ]


def curl_transfers(
    args: list[str], urls: list[str], variables: tuple[str, ...]
) -> tuple[float, list[list[str]]]:
    """Wall time of one curl invocation and, per transfer, curl's ``variables``
    (``--write-out`` names, e.g. ``time_starttransfer``), as text."""
    write_out = " ".join(f"%{{{name}}}" for name in (*variables, "num_connects")) + "\\n"
    started = time.perf_counter()
    out = subprocess.run(
        [*args, "--write-out", write_out, *to_null(urls)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    wall = time.perf_counter() - started
    rows = [line.split() for line in out.strip().splitlines()]
    connects = sum(int(row.pop()) for row in rows)
    if connects != 1:
        raise SystemExit(f"curl opened {connects} connections, expected 1 (keep-alive)")
    return wall, rows


def run_curl(args: list[str], urls: list[str]) -> tuple[float, list[tuple[int, int, float]]]:
    """Wall time and (status, bytes, seconds) per transfer of one curl invocation."""
    wall, rows = curl_transfers(args, urls, ("http_code", "size_download", "time_total"))
    return wall, [(int(code), int(size), float(seconds)) for code, size, seconds in rows]


def throughput(pki: Path, work: Path, port: int, nginx_port: int, name: str, n: int) -> dict:
    envelope = work / "recoger.xml"
    envelope.write_bytes(build_envelope(RecogerFichero(name).to_xml(), concentrador_id=PEER))
    ours_args = [*curl_base(pki), *curl_post_args(envelope)]
    ours_urls = [f"https://localhost:{port}/"] * n
    nginx_urls = [f"https://localhost:{nginx_port}/{name}"] * n
    results = {}
    for label, args, urls in (
        ("concentrador", ours_args, ours_urls),
        ("nginx", curl_base(pki), nginx_urls),
    ):
        best = 0.0
        for _ in range(3):  # best of three: the machine is shared
            wall, rows = run_curl(args, urls)
            if any(code != 200 for code, _, _ in rows):
                raise SystemExit(f"{label}: non-200 answers: {rows[:3]}")
            total = sum(size for _, size, _ in rows)
            best = max(best, total / wall / 1e6)
        results[label] = best
    return results


def vm_hwm_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise SystemExit("no VmHWM")


def peak_rss(pki: Path, work: Path, port: int, names: list[str], clients: int) -> dict:
    base = [*curl_base(pki)]
    processes = []
    for i in range(clients):
        envelope = work / f"recoger-{i}.xml"
        name = names[i % len(names)]
        envelope.write_bytes(build_envelope(RecogerFichero(name).to_xml(), concentrador_id=PEER))
        args = [*base, *curl_post_args(envelope), "--write-out", "%{http_code}\\n"]
        processes.append(
            subprocess.Popen(
                [*args, *to_null([f"https://localhost:{port}/"] * 3)],
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    codes = []
    for process in processes:
        out, _ = process.communicate(timeout=300)
        codes += out.split()
    if set(codes) != {"200"}:
        raise SystemExit(f"RSS run: answers {sorted(set(codes))}")
    return {"fetches": len(codes)}


def tod_listing(pki: Path, work: Path, port: int) -> dict:
    envelope = work / "tod.xml"
    envelope.write_bytes(
        build_envelope(InformacionDisponible(("TOD",)).to_xml(), concentrador_id=PEER)
    )
    args = [*curl_base(pki), *curl_post_args(envelope)]
    _, rows = run_curl(args, [f"https://localhost:{port}/"] * 11)
    if any(code != 200 for code, _, _ in rows):
        raise SystemExit(f"TOD: non-200 answers {rows[:3]}")
    # The first transfer includes the TLS handshake; the rest reuse the connection.
    later = [seconds * 1000 for _, _, seconds in rows[1:]]
    return {
        "first_ms": rows[0][2] * 1000,
        "median_ms": statistics.median(later),
        "max_ms": max(later),
        "bytes": rows[1][1],
    }


def parse_with_work(
    parser: argparse.ArgumentParser, prefix: str, needs: dict[str, str]
) -> tuple[argparse.Namespace, Path]:
    """Add ``--keep``, parse, check the tools ``needs`` names (tool: what to say
    when it is missing), and make a fresh temporary folder: every bench's start."""
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    for tool, missing in needs.items():
        if shutil.which(tool) is None:
            raise SystemExit(missing)
    return args, Path(tempfile.mkdtemp(prefix=prefix))


def keep_or_remove(work: Path, keep: bool) -> None:
    """Every bench's end: say where the folder is (``--keep``) or remove it."""
    if keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


TOOLS = ("curl", "nginx")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20, help="8 MB fetches per curl run")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (RSS)")
    args, work = parse_with_work(
        parser,
        "server-bench-",
        {
            tool: f"{tool} not found (apt-get install -y curl nginx-light)"
            for tool in ("curl", "nginx")
        },
    )
    daemon = nginx = None
    try:
        pki = work / "pki"
        init_dev_pki(pki, peers=[PEER])
        port, nginx_port = free_port(), free_port()
        config = write_config(work, pki, port)
        names = publish_directly(work / "spool")
        daemon = start_daemon(config, work)
        nginx = start_nginx(
            work, pki, nginx_port, Spool(work / "spool").peer(PEER).dir("published")
        )
        idle_kb = vm_hwm_kb(daemon.pid)

        tput = throughput(pki, work, port, nginx_port, names[0], args.requests)
        tod = tod_listing(pki, work, port)
        peak_rss(pki, work, port, names, args.clients)
        peak_kb = vm_hwm_kb(daemon.pid)

        ratio = tput["concentrador"] / tput["nginx"]
        rows = [
            ("recogerFichero 8 MB, 1 keep-alive conn", f"{tput['concentrador']:.0f} MB/s", ""),
            ("nginx, same bytes, same certs", f"{tput['nginx']:.0f} MB/s", ""),
            ("ratio concentrador / nginx", f"{ratio:.2f}x", "PASS" if ratio >= 0.6 else "FAIL"),
            ("server VmHWM after start-up", f"{idle_kb / 1024:.0f} MB", ""),
            (
                f"server VmHWM, {args.clients} clients x 8 MB",
                f"{peak_kb / 1024:.0f} MB",
                "PASS" if peak_kb < 120 * 1024 else "FAIL",
            ),
            ("TOD, 10,000 files: first (with TLS handshake)", f"{tod['first_ms']:.0f} ms", ""),
            (
                "TOD, 10,000 files: median / max (kept-alive)",
                f"{tod['median_ms']:.0f} / {tod['max_ms']:.0f} ms",
                "PASS" if tod["max_ms"] < 150 else "FAIL",
            ),
        ]
        width = max(len(r[0]) for r in rows)
        print(f"{'benchmark':<{width}}  {'result':>14}  target")
        for label, value, verdict in rows:
            print(f"{label:<{width}}  {value:>14}  {verdict}")
        print(f"(TOD answer: {tod['bytes']:,} bytes; cores: {os.cpu_count()})")
        return 0
    finally:
        for process in (daemon, nginx):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM if process is daemon else signal.SIGQUIT)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
        keep_or_remove(work, args.keep)


if __name__ == "__main__":
    sys.exit(main())
