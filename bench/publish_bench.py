"""Outbox → published throughput, against plain ``lbzip2 -n<cores>`` on the same bytes.

Usage: ``.venv/bin/python bench/publish_bench.py [--size-mb 200] [--files 10]``

It writes synthetic P.O. 10.11 F1-like files (``;``-separated hourly
records of many supply points, varied so they compress like real ones,
~15:1) into a temporary spool, then measures, in the same run:

* ``lbzip2 -n<cores> -c`` over the same bytes to /dev/null (the reference);
* the publisher with the lbzip2 compressor (compress + split + MD5 + fsync +
  ledger + moves + archive);
* the publisher with the thread-pool compressor.

MB/s is input megabytes (10^6 bytes) per wall-clock second. The target is a
publisher at >= 0.8x the reference. On a shared machine run it twice.

This measures the publisher alone: ``publish_pending()`` called directly with
``settle_seconds=0`` on files already in the outbox, so no watcher, no settle
time and no scan interval are in the figure. That is why it once read 0.92x
while the operator's view, a batch renamed into the running daemon's outbox,
read 0.45x: ``bench/outbox_drop_bench.py`` measures that one.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from concentrador.protocol.filetypes import TypeClassifier
from concentrador.spool.layout import PeerSpool, SpoolState
from concentrador.spool.ledger import Ledger
from concentrador.spool.outbound.compress import (
    Compressor,
    Lbzip2Compressor,
    ThreadedBzip2Compressor,
    available_cores,
)
from concentrador.spool.outbound.publisher import Publisher

_LETTERS = "ABCDEFGHJKLMNPQRSTVWXYZ"


def f1_records(size: int, seed: int = 1) -> bytes:
    """``size`` bytes of F1-like lines: a week of hourly values per supply point."""
    rnd = random.Random(seed)
    parts: list[bytes] = []
    total = 0
    while total < size:
        cups = (
            f"ES{rnd.randrange(10**4):04d}{rnd.randrange(10**12):012d}"
            f"{rnd.choice(_LETTERS)}{rnd.choice(_LETTERS)}0F"
        )
        kind = rnd.choice((11, 11, 11, 21, 22))
        base = rnd.randrange(4000)
        day = rnd.randrange(28)
        rows = []
        for hour in range(24 * 7):
            d, h = divmod(hour, 24)
            active = max(0, base + rnd.randrange(-300, 300))
            q1 = rnd.randrange(200) if rnd.random() < 0.3 else 0
            q4 = rnd.randrange(80) if rnd.random() < 0.2 else 0
            method = rnd.choice((1, 1, 1, 2, 4))
            rows.append(
                f"{cups};{kind};2024/03/{(day + d) % 28 + 1:02d} {h:02d}:00:00;{d % 2};"
                f"{active};0;0;0;{q1};0;0;0;0;0;{q4};0;0;0;0;0;{method};1\n"
            )
        chunk = "".join(rows).encode("ascii")
        parts.append(chunk)
        total += len(chunk)
    return b"".join(parts)[:size]


def variant(base: bytes, index: int) -> bytes:
    """A cheap, different-looking copy: digits permuted (bzip2 blocks never see the reuse)."""
    digits = list(b"0123456789")
    random.Random(index).shuffle(digits)
    return base.translate(bytes.maketrans(b"0123456789", bytes(digits)))


def run_reference(files: list[Path], threads: int) -> float:
    start = time.perf_counter()
    for path in files:
        subprocess.run(
            ["lbzip2", f"-n{threads}", "-c", str(path)], stdout=subprocess.DEVNULL, check=True
        )
    return time.perf_counter() - start


def run_publisher(
    workdir: Path, files: list[Path], compressor: Compressor, block_size: int
) -> tuple[float, int]:
    root = workdir / f"spool-{compressor.name}"
    spool = PeerSpool(root, "BENCH").ensure()
    outbox = spool.dir(SpoolState.OUTBOX)
    for path in files:
        shutil.copyfile(path, outbox / path.name)
    with Ledger(root / "ledger.sqlite3") as ledger:
        publisher = Publisher(
            spool,
            ledger,
            classifier=TypeClassifier(),
            block_size=block_size,
            compressor=compressor,
            settle_seconds=0,
        )
        start = time.perf_counter()
        results = publisher.publish_pending()
        elapsed = time.perf_counter() - start
    if len(results) != len(files):
        raise SystemExit(f"published {len(results)} of {len(files)} files")
    out = sum(b.size for r in results for b in r.blocks)
    shutil.rmtree(root)
    return elapsed, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200, help="total input, 10^6 bytes")
    parser.add_argument("--files", type=int, default=10, help="number of outbox files")
    parser.add_argument("--block-size", type=int, default=8_000_000)
    parser.add_argument("--threads", type=int, default=available_cores())
    parser.add_argument("--skip-threads", action="store_true", help="skip the slow pool run")
    args = parser.parse_args()
    if shutil.which("lbzip2") is None:
        raise SystemExit("lbzip2 is needed for the reference run")

    total = args.size_mb * 1_000_000
    per_file = total // args.files
    with tempfile.TemporaryDirectory(prefix="publish-bench-") as tmp:
        workdir = Path(tmp)
        start = time.perf_counter()
        base = f1_records(per_file)
        files = []
        for i in range(args.files):
            path = workdir / f"F1_0086_202403{i % 28 + 1:02d}_202403{i % 28 + 1:02d}.{i}"
            path.write_bytes(variant(base, i))
            files.append(path)
        mb = per_file * args.files / 1e6
        print(f"generated {args.files} files, {mb:.0f} MB, in {time.perf_counter() - start:.1f} s")
        print(f"cores: {available_cores()}, threads per compression: {args.threads}")

        ref = run_reference(files, args.threads)
        print(f"lbzip2 -n{args.threads} (reference)     {mb / ref:7.1f} MB/s  ({ref:.1f} s)")
        rows = [("publisher + lbzip2", Lbzip2Compressor(threads=args.threads))]
        if not args.skip_threads:
            rows.append(("publisher + threads", ThreadedBzip2Compressor(threads=args.threads)))
        for label, compressor in rows:
            with compressor:
                elapsed, out = run_publisher(workdir, files, compressor, args.block_size)
            print(
                f"{label:<32} {mb / elapsed:7.1f} MB/s  ({elapsed:.1f} s)"
                f"  ratio {ref / elapsed:.2f}x of reference, compressed {mb * 1e6 / out:.1f}:1"
            )


if __name__ == "__main__":
    main()
