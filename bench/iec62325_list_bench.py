"""IEC 62325-504 ``list`` of 10,000 messages: time per call seen by the client, server CPU.

Run: ``.venv/bin/python bench/iec62325_list_bench.py [--messages 10000] [--calls 11] [--runs 3]``.
Needs ``curl``. The 504 peer (``bench/iec62325_common.py``) has 10,000
published files (5 types); each run is one curl process, one keep-alive
mutual-TLS connection, ``--calls`` lists "after code 0" (every message; the
answer is unsigned, see ``server/iec62325/answers.py``). The first call
includes the TLS handshake and is shown apart; the others are timed by curl
(``time_total``: request sent to last byte received). The server's CPU
(``/proc``) is divided over all the calls. Aim: < 200 ms a call.

Beside it, the same for v2.3 informacionDisponible(TOD) of the same 10,000
files for the v2.3 peer, on the same daemon (``server_bench.py``'s aim for
that one is < 150 ms).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.iec62325_common import NEEDS_CURL, Bench504, stop  # noqa: E402
from bench.outbox_drop_bench import process_cpu  # noqa: E402
from bench.server_bench import (  # noqa: E402
    PEER,
    curl_base,
    curl_post_args,
    keep_or_remove,
    parse_with_work,
    run_curl,
)
from concentrador.protocol.messages import InformacionDisponible  # noqa: E402
from concentrador.protocol.soap import build_envelope  # noqa: E402


def timed_calls(pid: int, args: list[str], url: str, calls: int) -> dict[str, float]:
    cpu = process_cpu(pid)
    _, rows = run_curl(args, [url] * calls)
    cpu = process_cpu(pid) - cpu
    if any(code != 200 for code, _, _ in rows):
        raise SystemExit(f"non-200 answers: {rows[:3]}")
    later = [seconds * 1000 for _, _, seconds in rows[1:]]
    return {
        "first_ms": rows[0][2] * 1000,
        "median_ms": statistics.median(later),
        "max_ms": max(later),
        "cpu_ms": cpu / calls * 1000,
        "bytes": rows[-1][1],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=11, help="calls per run (the first apart)")
    parser.add_argument("--runs", type=int, default=3)
    args, work = parse_with_work(parser, "iec62325-list-bench-", NEEDS_CURL)
    daemon = None
    try:
        bench = Bench504.prepare(work, big_files=0, big_size=0, listing_files=args.messages)
        daemon = bench.start()
        listing = bench.curl_args(bench.list_envelope(after_code=0))
        tod = work / "tod.xml"
        tod.write_bytes(
            build_envelope(InformacionDisponible(("TOD",)).to_xml(), concentrador_id=PEER)
        )
        v23 = [*curl_base(bench.pki), *curl_post_args(tod)]
        print(f"{args.messages:,} messages, {args.calls} calls on one keep-alive connection:")
        for run in range(1, args.runs + 1):
            for label, call_args, url in (
                ("504 list after code 0", listing, bench.url),
                ("v2.3 TOD (same files) ", v23, f"https://localhost:{bench.port}/"),
            ):
                r = timed_calls(daemon.pid, call_args, url, args.calls)
                verdict = ""
                if label.startswith("504"):
                    verdict = " PASS" if r["max_ms"] < 200 else " FAIL"
                print(
                    f"  run {run} {label}: median {r['median_ms']:.0f} ms, "
                    f"max {r['max_ms']:.0f} ms{verdict}; first (with handshake) "
                    f"{r['first_ms']:.0f} ms; server CPU {r['cpu_ms']:.0f} ms a call; "
                    f"answer {r['bytes']:,} bytes"
                )
        return 0
    finally:
        stop(daemon)
        keep_or_remove(work, args.keep)


if __name__ == "__main__":
    sys.exit(main())
