"""What the audit trail and the request metrics cost: the same transfers with and without them.

Issue 10: recording the trail must not cost throughput (at most 5 % slower).
Each round starts two real daemons in turn (``concentrador serve`` through
:func:`serve_with`, readiness through a private ``NOTIFY_SOCKET``), one with
the trail and the ``/metrics`` request middleware (the default) and one with
``DaemonOptions(trail=False, metrics=False)``, and against each measures:

1. **collect of 1,000 small files** (about 5 KB): one v2.3 collection cycle
   in a child process (list, recogerFichero, MD5, durable store,
   confirmation), whose ledger records the trail or not like the daemon's;
   files/s.
2. **recogerFichero of an 8,000,000-byte block**: one curl, one keep-alive
   TLS connection, N POSTs of the envelope (each a ``fetched`` event on the
   server); MB/s.

Beside each rate, the CPU it cost (the daemon's from ``/proc``, plus the
collecting child's own): on a shared, busy machine wall-clock rates scatter
by tens of percent from run to run, CPU seconds far less, and CPU is what the
trail adds (its writes skip the fsync or share the state change's).

Rounds alternate which variant goes first, to cancel the machine's drift.
The last lines compare the best round of each variant (a shared machine only
ever makes a run slower) and the medians, of the rates and of the CPU costs.

    .venv/bin/python bench/trail_cost_bench.py [--rounds 3] [--small 1000] [--requests 100]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.client_bench import PEER, client_config, publish  # noqa: E402
from bench.outbox_drop_bench import process_cpu  # noqa: E402
from bench.server_bench import (  # noqa: E402
    BLOCK,
    curl_base,
    curl_post_args,
    free_port,
    run_curl,
    start_daemon,
    write_config,
)
from concentrador.pki.devpki import init_dev_pki  # noqa: E402
from concentrador.protocol.messages import RecogerFichero  # noqa: E402
from concentrador.protocol.soap import build_envelope  # noqa: E402

VARIANTS = {"with": True, "without": False}
BIG = "F1_0086_20240101_20240102.0.bz2"


def serve_with(config_path: str, trail: bool) -> int:
    """Child: ``concentrador serve`` with the trail and the request metrics on or off."""
    from concentrador.config import load_config
    from concentrador.daemon.serve import DaemonOptions, serve

    return serve(load_config(config_path), DaemonOptions(trail=trail, metrics=trail))


def collect_with(config_path: str, trail: bool) -> None:
    """Child: one collection cycle; prints its seconds and how many files it confirmed."""
    import asyncio

    from concentrador.client.runner import ClientRunner
    from concentrador.config import load_config
    from concentrador.spool.layout import Spool
    from concentrador.spool.ledger import Ledger

    config = load_config(config_path)
    spool = Spool(config.node.spool)
    spool.ensure()
    with Ledger(spool.ledger_path, trail=trail) as ledger:
        started, cpu = time.perf_counter(), time.process_time()
        summary = asyncio.run(ClientRunner(config, ledger).collect("0086"))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(json.dumps({"seconds": seconds, "cpu": cpu, "confirmed": len(summary.confirmed)}))


def _child(*args: str) -> list[str]:
    return [sys.executable, __file__, *args]


def collect_rate(work: Path, pki: Path, port: int, count: int, trail: bool) -> tuple[float, float]:
    """Files/s of one collection cycle, and the client's CPU seconds."""
    out = subprocess.run(
        _child("_collect", str(client_config(work, pki, port)), str(trail)),
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"collect failed: {out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["confirmed"] != count:
        raise SystemExit(f"collect confirmed {result['confirmed']} of {count} files")
    return count / result["seconds"], result["cpu"]


def recoger_rate(work: Path, pki: Path, port: int, requests: int) -> float:
    envelope = work / "recoger.xml"
    envelope.write_bytes(build_envelope(RecogerFichero(BIG).to_xml(), concentrador_id=PEER))
    args = [*curl_base(pki), *curl_post_args(envelope)]
    wall, rows = run_curl(args, [f"https://localhost:{port}/"] * requests)
    if any(code != 200 or size < BLOCK for code, size, _ in rows):
        raise SystemExit(f"recogerFichero: unexpected answers {rows[:3]}")
    return sum(size for _, size, _ in rows) / wall / 1e6


def one_variant(work: Path, pki: Path, args: argparse.Namespace, trail: bool) -> dict[str, float]:
    small = {f"P1_0086_{i:05d}.0.bz2": b"BZh9" + os.urandom(4996) for i in range(args.small)}
    publish(work / "spool", small)
    port = free_port()
    config = write_config(work, pki, port)
    daemon = start_daemon(config, work, _child("_serve", str(config), str(trail)))
    try:
        server_cpu = process_cpu(daemon.pid)
        files_s, client_cpu = collect_rate(work, pki, port, args.small, trail)
        collect_cpu = client_cpu + process_cpu(daemon.pid) - server_cpu
        # Published only now, so the collection above does not fetch it.
        publish(work / "spool", {BIG: os.urandom(BLOCK)})
        server_cpu = process_cpu(daemon.pid)
        mb_s = recoger_rate(work, pki, port, args.requests)
        recoger_cpu = process_cpu(daemon.pid) - server_cpu
    finally:
        daemon.terminate()
        daemon.wait(30)
    return {
        "collect": files_s,
        "collect_cpu": collect_cpu / args.small * 1000,  # ms a file, both sides
        "recoger": mb_s,
        "recoger_cpu": recoger_cpu / (args.requests * BLOCK / 1e9),  # server s a GB
    }


# (key, label, unit) of each figure; a ``_cpu`` figure is a cost (lower is better).
FIGURES = (
    ("collect", "collect", "files/s"),
    ("collect_cpu", "  its CPU, client + server", "ms a file"),
    ("recoger", "recogerFichero 8 MB", "MB/s"),
    ("recoger_cpu", "  its CPU, server", "s a GB"),
)


def summary_line(label: str, unit: str, runs: dict[str, list[float]], *, cost: bool) -> str:
    """Best and median of each variant; ``cost``: lower is better (CPU), else a rate."""
    pick = min if cost else max
    best = {v: pick(r) for v, r in runs.items()}
    median = {v: statistics.median(r) for v, r in runs.items()}
    # As a throughput ratio: with / without for a rate, without / with for a cost.
    ratio = best["without"] / best["with"] if cost else best["with"] / best["without"]
    mid = median["without"] / median["with"] if cost else median["with"] / median["without"]
    verdict = "PASS" if ratio >= 0.95 else "FAIL"
    return (
        f"{label}: best with {best['with']:.2f} {unit}, without {best['without']:.2f} {unit}: "
        f"{ratio:.3f}x ({(1 - ratio) * 100:+.1f} % slower, aim <= 5 %) {verdict}; "
        f"medians {median['with']:.2f} / {median['without']:.2f} ({mid:.3f}x)"
    )


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] in ("_serve", "_collect"):
        trail = sys.argv[3] == "True"
        if sys.argv[1] == "_serve":
            sys.exit(serve_with(sys.argv[2], trail))
        collect_with(sys.argv[2], trail)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--small", type=int, default=1000, help="small files collected")
    parser.add_argument("--requests", type=int, default=100, help="8 MB recogerFichero calls")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    if shutil.which("curl") is None:
        raise SystemExit("curl not found (apt-get install -y curl)")
    base = Path(tempfile.mkdtemp(prefix="trail-bench-"))
    runs: dict[str, dict[str, list[float]]] = {}
    try:
        pki = base / "pki"
        init_dev_pki(pki, peers=[PEER])
        print(
            f"{args.small} small files collected; {args.requests} x recogerFichero of 8 MB "
            f"on one keep-alive connection; {args.rounds} rounds, {os.cpu_count()} cores"
        )
        for round_no in range(1, args.rounds + 1):
            order = list(VARIANTS) if round_no % 2 else list(reversed(VARIANTS))
            for variant in order:
                work = base / f"round{round_no}-{variant}"
                work.mkdir()
                figures = one_variant(work, pki, args, VARIANTS[variant])
                for bench, value in figures.items():
                    runs.setdefault(bench, {}).setdefault(variant, []).append(value)
                print(f"  round {round_no} {variant:>7} trail: " + ", ".join(
                    f"{label.strip()} {figures[key]:.2f} {unit}" for key, label, unit in FIGURES
                ))  # fmt: skip
                if not args.keep:
                    shutil.rmtree(work)
        for key, label, unit in FIGURES:
            print(summary_line(label, unit, runs[key], cost=key.endswith("_cpu")))
    finally:
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
