"""Peak RSS of the server while 32 clients ``get`` 40 MB files over IEC 62325-504.

Run: ``.venv/bin/python bench/iec62325_rss_bench.py [--clients 32] [--size-mb 40] [--runs 3]``.
Needs ``curl``. The 504 peer (``bench/iec62325_common.py``) has four
published files of 40,000,000 random bytes (53 MB of base64 each on the
wire); 32 curl processes start at once, each with its own mutual-TLS
connection, each getting one of them (by MessageIdentification) ``--fetches``
times. Each run starts a fresh daemon, so its ``VmHWM`` (peak RSS, from
``/proc/PID/status``) is that run's own; ``VmRSS`` is also sampled every
20 ms, and read again after the burst. Aim: peak < 150 MB.

Every answer must be a 200 of the expected length (the base64 text plus
the envelope); one get is checked in full (bytes and signature) before the
burst.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.iec62325_common import NEEDS_CURL, PEER504, Bench504, check_get, stop  # noqa: E402
from bench.server_bench import keep_or_remove, parse_with_work, to_null, vm_hwm_kb  # noqa: E402
from bench.slow_clients_bench import rss_mb  # noqa: E402

FILES = 4


class RssSampler(threading.Thread):
    """The largest ``VmRSS`` of ``pid`` seen every ``interval`` seconds until stopped."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak = 0.0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            self.done.wait(self.interval)


def burst(bench: Bench504, clients: int, fetches: int) -> tuple[float, list[tuple[str, int]]]:
    """``clients`` curl processes at once; wall time and (status, bytes) of every get."""
    # Written before any curl starts: curl reads its file while the next one starts.
    envelopes = [bench.get_envelope(name) for name in bench.names]
    processes = []
    for index in range(clients):
        envelope = envelopes[index % len(envelopes)]
        args = [*bench.curl_args(envelope), "--write-out", "%{http_code} %{size_download}\\n"]
        processes.append(
            subprocess.Popen(
                [*args, *to_null([bench.url] * fetches)], stdout=subprocess.PIPE, text=True
            )
        )
    started = time.perf_counter()
    answers = []
    for process in processes:
        out, _ = process.communicate(timeout=600)
        answers += [
            (code, int(size)) for code, size in (line.split() for line in out.split("\n") if line)
        ]
    return time.perf_counter() - started, answers


def one_run(bench: Bench504, clients: int, fetches: int, size: int) -> dict[str, float]:
    daemon = bench.start()
    try:
        check_get(bench, bench.names[0])
        time.sleep(1)
        rest = vm_hwm_kb(daemon.pid) / 1024
        sampler = RssSampler(daemon.pid)
        sampler.start()
        wall, answers = burst(bench, clients, fetches)
        sampler.done.set()
        sampler.join()
        peak = vm_hwm_kb(daemon.pid) / 1024
        time.sleep(2)
        after = rss_mb(daemon.pid)
    finally:
        stop(daemon)
    base64_bytes = 4 * ((size + 2) // 3)
    wrong = [a for a in answers if a[0] != "200" or a[1] < base64_bytes]
    if wrong or len(answers) != clients * fetches:
        raise SystemExit(f"{len(wrong)} bad answers of {len(answers)}: {wrong[:3]}")
    return {
        "rest": rest,
        "peak": peak,
        "sampled": sampler.peak,
        "after": after,
        "wall": wall,
        "mb_s": size * len(answers) / wall / 1e6,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--size-mb", type=int, default=40, help="file size, in 10^6 bytes")
    parser.add_argument("--fetches", type=int, default=1, help="gets per client")
    parser.add_argument("--runs", type=int, default=3)
    args, work = parse_with_work(parser, "iec62325-rss-bench-", NEEDS_CURL)
    size = args.size_mb * 1_000_000
    try:
        bench = Bench504.prepare(
            work, big_files=FILES, big_size=size, listing_files=0, peers=(PEER504,)
        )
        print(
            f"{args.clients} clients at once, each {args.fetches} x 504 get of a "
            f"{args.size_mb} MB file ({FILES} distinct files), own TLS connection each:"
        )
        for run in range(1, args.runs + 1):
            r = one_run(bench, args.clients, args.fetches, size)
            verdict = "PASS" if r["peak"] < 150 else "FAIL"
            print(
                f"  run {run}: VmHWM after start-up + one get {r['rest']:.0f} MB, "
                f"peak {r['peak']:.0f} MB {verdict} (aim < 150 MB; sampled VmRSS max "
                f"{r['sampled']:.0f} MB), VmRSS 2 s after {r['after']:.0f} MB; "
                f"burst {r['wall']:.1f} s, {r['mb_s']:.0f} MB/s of file bytes"
            )
        return 0
    finally:
        keep_or_remove(work, args.keep)


if __name__ == "__main__":
    sys.exit(main())
