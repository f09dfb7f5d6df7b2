"""Collecting one large file: our cycle, start to ``inbox/``, against ``bzip2 -t`` on the file.

    .venv/bin/python bench/large_collect_bench.py [--size-mb 500] [--runs 3]

Issue 11's third row: one file of compressed F1 text, published split into
8,000,000-byte blocks on a real daemon (``concentrador serve``), collected
by ``concentrador``'s client cycle in another process, timed from the start
of the cycle until the rebuilt file is in ``inbox/`` (and confirmed). Once
the blocks are fetched, the time goes into checking that the concatenation
is one valid bzip2 stream; the reference is ``bzip2 -t`` on the same file, a
one-thread check, in the same run. Aim: ours >= 1.7x ``bzip2 -t``'s rate.

The source (~16:1 F1-like text, as ``bench/publish_bench.py`` writes it,
compressed by ``lbzip2 -9``) takes a few minutes to build; it is built once
into ``bench/out/`` and reused. Needs ``lbzip2`` (to build it) and ``bzip2``.
Rates are compressed MB (10^6 bytes) per second. The CPU seconds beside
them tell a busy machine from a slow check (ours can only gain on idle
cores), and the last line of a run says how the stream was checked.
"""

from __future__ import annotations

import argparse
import logging
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.client_bench import (  # noqa: E402
    _collect_child,
    client_config,
    publish,
    run_collect_child,
)
from bench.publish_bench import f1_records, variant  # noqa: E402
from bench.server_bench import free_port, start_daemon, write_config  # noqa: E402
from concentrador.pki.devpki import init_dev_pki  # noqa: E402

OUT = ROOT / "bench" / "out"
NAME = "F1_0086_20240301_20240331.0.bz2"
BASE_TEXT = 64 << 20  # one base of F1 text; variants of it fill the file


def build_source(size_mb: int) -> Path:
    """``bench/out/f1-<size>mb.bz2``: about ``size_mb`` MB of one bzip2 stream."""
    target = OUT / f"f1-{size_mb}mb.bz2"
    if target.exists():
        return target
    if shutil.which("lbzip2") is None:
        raise SystemExit(f"lbzip2 not found (needed once, to build {target})")
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"building {target} (once; a few minutes)...", flush=True)
    base = f1_records(BASE_TEXT)
    partial = target.with_suffix(".tmp")
    with open(partial, "wb") as out:
        lbzip2 = subprocess.Popen(["lbzip2", "-9", "-c"], stdin=subprocess.PIPE, stdout=out)
        assert lbzip2.stdin is not None
        index = 0
        # lbzip2 writes behind its input by a few blocks: stop a little short.
        while partial.stat().st_size < size_mb * 10**6 - 4 * 10**6:
            lbzip2.stdin.write(variant(base, index))
            index += 1
        lbzip2.stdin.close()
        if lbzip2.wait() != 0:
            raise SystemExit("lbzip2 failed")
    partial.rename(target)
    return target


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bzip2_test_seconds(source: Path) -> tuple[float, float]:
    """Wall and CPU seconds of ``bzip2 -t`` on ``source``."""
    cpu, started = children_cpu(), time.perf_counter()
    subprocess.run(["bzip2", "-t", str(source)], check=True)
    return time.perf_counter() - started, children_cpu() - cpu


def run_collect(config: Path) -> dict[str, object]:
    """One collection cycle in a child process that logs how the stream was checked."""
    result, stderr = run_collect_child(__file__, config)
    checks = [line for line in stderr.splitlines() if "checked on arrival" in line]
    fallbacks = [line for line in stderr.splitlines() if "sequentially" in line]
    result["how"] = "; ".join(line.split(": ", 1)[-1] for line in checks + fallbacks)
    return result


def collect_seconds(base: Path, pki: Path, source: Path, run: int) -> tuple[float, float, str]:
    """One collection cycle of ``source`` published in 8 MB blocks: wall and CPU
    seconds (client and server processes), and how the stream was checked."""
    work = base / f"run-{run}"
    work.mkdir()
    try:
        port = free_port()
        publish(work / "spool", {NAME: source})
        cpu = children_cpu()
        daemon = start_daemon(write_config(work, pki, port), work)
        try:
            result = run_collect(client_config(work, pki, port))
        finally:
            daemon.terminate()
            daemon.wait(30)
        if result["confirmed"] != 1:
            raise SystemExit(f"the file was not collected: {result}")
        inbox = work / "client-spool" / "0086" / "inbox" / NAME
        if inbox.stat().st_size != source.stat().st_size:
            raise SystemExit(f"{inbox} is not the published file")
        return float(str(result["seconds"])), children_cpu() - cpu, str(result["how"])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "_collect":
        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
        logging.getLogger("aiohttp").setLevel(logging.WARNING)
        logging.getLogger("asyncio").setLevel(logging.WARNING)
        _collect_child(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=500, help="compressed size")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("bzip2") is None:
        raise SystemExit("bzip2 not found")
    source = build_source(args.size_mb)
    mb = source.stat().st_size / 1e6
    print(f"{source.name}: {mb:.0f} MB compressed, {-(-source.stat().st_size // 8_000_000)} blocks")
    base = Path(tempfile.mkdtemp(prefix="large-collect-bench-"))
    try:
        pki = base / "pki"
        init_dev_pki(pki, node_id="0086", peers=["CREC"])
        for run in range(1, args.runs + 1):
            ours, ours_cpu, how = collect_seconds(base, pki, source, run)
            reference, reference_cpu = bzip2_test_seconds(source)
            print(
                f"run {run}: concentrador collect {mb / ours:5.1f} MB/s, "
                f"bzip2 -t {mb / reference:5.1f} MB/s, "
                f"ratio {reference / ours:.2f}x (aim >= 1.7x)\n"
                f"       CPU seconds: ours {ours_cpu:.0f} (client + server), "
                f"bzip2 -t {reference_cpu:.0f}; check: {how or '?'}",
                flush=True,
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
