"""IEC 62325-504 ``get`` of 8 MB files vs v2.3 recogerFichero of the same files.

Run: ``.venv/bin/python bench/iec62325_get_bench.py [--requests 20] [--runs 3] [--keep]``.
Needs ``curl``. One daemon serves both profiles (``bench/iec62325_common.py``):
CREC (v2.3) and CNOR (504) have the same four published 8,000,000-byte
files. Each run, on one keep-alive mutual-TLS curl connection each:

- v2.3: N recogerFichero POSTs of one file (DIME answer: the file's bytes);
- 504: N ``get`` (by MessageIdentification) of the same file (the answer is
  the file as base64 in ``Payload/Compressed``, 4/3 of its bytes, signed
  with a digest over the base64, computed once per file and kept in the
  ledger, so a get reads the file once; see the output's "answer digest" line).

Both rates are MB/s of *file* bytes (8 MB a request), so the base64
overhead counts against 504; aim: 504 >= 0.6x v2.3. Beside them, the
server's CPU seconds per GB of file bytes (``/proc``), steadier than wall
time on a shared machine. Runs alternate which profile goes first. One get
is checked (decoded bytes and signature) before timing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.iec62325_common import NEEDS_CURL, Bench504, check_get, stop  # noqa: E402
from bench.outbox_drop_bench import process_cpu  # noqa: E402
from bench.server_bench import (  # noqa: E402
    BLOCK,
    PEER,
    curl_base,
    curl_post_args,
    curl_transfers,
    keep_or_remove,
    parse_with_work,
)
from concentrador.protocol.messages import RecogerFichero  # noqa: E402
from concentrador.protocol.soap import build_envelope  # noqa: E402


def timed(pid: int, args: list[str], urls: list[str], label: str) -> tuple[float, float, float]:
    """(MB/s of file bytes, server CPU s per GB of file bytes, median ms to the
    first byte of an answer) of one curl run."""
    cpu = process_cpu(pid)
    wall, rows = curl_transfers(args, urls, ("http_code", "time_pretransfer", "time_starttransfer"))
    cpu = process_cpu(pid) - cpu
    if any(code != "200" for code, _, _ in rows):
        raise SystemExit(f"{label}: non-200 answers: {rows[:3]}")
    first_byte = statistics.median(float(start) - float(sent) for _, sent, start in rows)
    file_bytes = BLOCK * len(urls)
    return file_bytes / wall / 1e6, cpu / (file_bytes / 1e9), first_byte * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20, help="8 MB fetches per curl run")
    parser.add_argument("--runs", type=int, default=3)
    args, work = parse_with_work(parser, "iec62325-get-bench-", NEEDS_CURL)
    daemon = None
    try:
        bench = Bench504.prepare(work, big_files=1, big_size=BLOCK, listing_files=0)
        name = bench.names[0]
        daemon = bench.start()
        check_get(bench, name)
        recoger = work / "recoger.xml"
        recoger.write_bytes(build_envelope(RecogerFichero(name).to_xml(), concentrador_id=PEER))
        v23 = ([*curl_base(bench.pki), *curl_post_args(recoger)],
               [f"https://localhost:{bench.port}/"] * args.requests)  # fmt: skip
        v3 = (bench.curl_args(bench.get_envelope(name)), [bench.url] * args.requests)
        ratios = []
        print(f"{args.requests} x {BLOCK:,}-byte file, one keep-alive TLS connection each:")
        # The files are recorded straight into the ledger (no publish pass), so the
        # answer digest a daemon's publish pass computes ahead of time is computed
        # here by that first get, and stored: the timed gets sign it (one pass).
        print("504 answer digest: computed and stored by the untimed check get (first get)")
        for run in range(1, args.runs + 1):
            order = [("v2.3", v23), ("504", v3)]
            if run % 2 == 0:
                order.reverse()
            figures = {label: timed(daemon.pid, *spec, label) for label, spec in order}
            (old_rate, old_cpu, old_ttfb), (new_rate, new_cpu, new_ttfb) = (
                figures["v2.3"],
                figures["504"],
            )
            ratio = new_rate / old_rate
            ratios.append(ratio)
            print(
                f"  run {run}: v2.3 recogerFichero {old_rate:4.0f} MB/s "
                f"({old_cpu:.2f} s CPU/GB, first byte {old_ttfb:.0f} ms); "
                f"504 get {new_rate:4.0f} MB/s ({new_cpu:.2f} s CPU/GB, first byte "
                f"{new_ttfb:.0f} ms); ratio {ratio:.2f}x {'PASS' if ratio >= 0.6 else 'FAIL'}"
            )
        print(f"ratio best {max(ratios):.2f}x, median {statistics.median(ratios):.2f}x")
        return 0
    finally:
        stop(daemon)
        keep_or_remove(work, args.keep)


if __name__ == "__main__":
    sys.exit(main())
