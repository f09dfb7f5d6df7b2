"""A batch dropped into the outbox of the running daemon, against ``lbzip2 -9 -n<cores>``.

Usage: ``.venv/bin/python bench/outbox_drop_bench.py [--size-mb 200] [--files 10] [--rounds 3]``

The scenario an operator (and the issue-11 benchmark) sees, end to end:

1. Generate ``--files`` P.O. 10.11 F1 files (``CUPS;fecha;valores...``,
   hourly records of many supply points, varied so they compress like real
   ones, ~16:1; see :func:`publish_bench.f1_records`).
2. **Reference**: ``lbzip2 -9 -n<cores> -k -f`` on copies of the same files,
   one command, timed; run before the first drop and after each.
3. **Ours**: ``concentrador serve`` as a subprocess (dev PKI, generated config,
   default settings: settle time, watcher, sweeps), ready through a private
   ``NOTIFY_SOCKET``. The files are renamed into ``spool/CREC/outbox/CUR/``
   at once; the clock runs from the first rename until every ``NAME.bz2`` is
   in ``published/`` (polled every 5 ms). ``--rounds`` drops (3), the same
   files under new names each time, between reference runs.

MB/s is input megabytes (10^6 bytes) per wall-clock second; the last line
compares the best run of each. Target: ours >= 0.85x the reference. The CPU
seconds (user + system, the daemon with its ``lbzip2`` children, from
``/proc``) show the cost apart from any waiting: on a busy machine the
wall-clock figures scatter, the CPU ones much less. Figures depend on the
machine: on a shared one, run it three times and report every run.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from publish_bench import f1_records, variant  # noqa: E402
from server_bench import (  # noqa: E402
    PEER,
    free_port,
    keep_or_remove,
    parse_with_work,
    start_daemon,
    write_config,
)

from concentrador.pki.devpki import init_dev_pki  # noqa: E402
from concentrador.spool.layout import Spool, SpoolState  # noqa: E402
from concentrador.spool.outbound.compress import available_cores  # noqa: E402

POLL_SECONDS = 0.005
TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its waited-for children (utime, stime, cutime, cstime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / TICKS


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def generate(folder: Path, count: int, size_mb: int) -> list[Path]:
    folder.mkdir(parents=True)
    per_file = size_mb * 1_000_000 // count
    base = f1_records(per_file)
    files = []
    for i in range(count):
        path = folder / f"F1_0086_202403{i % 28 + 1:02d}_202403{i % 28 + 1:02d}.{i}"
        path.write_bytes(variant(base, i))
        files.append(path)
    return files


def run_reference(files: list[Path], folder: Path, threads: int) -> tuple[float, float]:
    """Wall and CPU seconds of ``lbzip2 -9 -n<threads>`` over copies of ``files``."""
    folder.mkdir(exist_ok=True)
    copies = []
    for path in files:
        copy = folder / path.name
        shutil.copyfile(path, copy)
        copies.append(copy)
    cpu = children_cpu()
    start = time.perf_counter()
    subprocess.run(["lbzip2", "-9", f"-n{threads}", "-k", "-f", *map(str, copies)], check=True)
    elapsed = time.perf_counter() - start
    shutil.rmtree(folder)
    return elapsed, children_cpu() - cpu


class DaemonDrop:
    """The running daemon and its outbox: drop a batch, wait until it is published."""

    def __init__(self, work: Path) -> None:
        self.work = work
        pki = work / "pki"
        init_dev_pki(pki, peers=[PEER])
        config = write_config(work, pki, free_port())
        spool = Spool(work / "spool")
        spool.ensure([PEER])
        peer = spool.peer(PEER)
        self.dropbox = peer.dir(SpoolState.OUTBOX) / "CUR"
        self.dropbox.mkdir(parents=True, exist_ok=True)
        self.published = peer.dir(SpoolState.PUBLISHED)
        self.archive = peer.dir(SpoolState.ARCHIVE)
        self.daemon = start_daemon(config, work)

    def close(self) -> None:
        self.daemon.send_signal(signal.SIGTERM)
        self.daemon.wait(60)

    def drop(self, files: list[Path]) -> tuple[float, float, float, int]:
        """Rename ``files`` into the outbox at once; they end up in ``archive/``.

        Returns seconds to the first published file and to the last, the
        daemon's CPU seconds meanwhile, and the compressed bytes.
        """
        expected = {f"{path.name}.bz2" for path in files}
        cpu = process_cpu(self.daemon.pid)
        start = time.perf_counter()
        for path in files:
            os.rename(path, self.dropbox / path.name)
        first = None
        while True:
            present = expected.intersection(os.listdir(self.published))
            now = time.perf_counter()
            if present and first is None:
                first = now - start
            if len(present) == len(expected):
                break
            if now > start + 600 or self.daemon.poll() is not None:
                raise SystemExit(f"published {len(present)} of {len(expected)}; see {self.work}")
            time.sleep(POLL_SECONDS)
        last = now - start
        cpu = process_cpu(self.daemon.pid) - cpu
        out = sum((self.published / name).stat().st_size for name in expected)
        return first or last, last, cpu, out


def next_batch(files: list[Path], archive: Path, round_no: int) -> list[Path]:
    """The archived originals under new names (a published name is never reused)."""
    batch = []
    for path in files:
        stem = path.name.rsplit(".", 1)[0]
        renamed = path.with_name(f"{stem}.{round_no}{path.name.rsplit('.', 1)[1]}")
        os.rename(archive / path.name, renamed)  # keeps the mtime: written long ago
        batch.append(renamed)
    return batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200, help="total input, 10^6 bytes")
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="drops, each between two refs")
    parser.add_argument("--threads", type=int, default=available_cores(), help="lbzip2 -n")
    args, work = parse_with_work(
        parser, "outbox-drop-bench-", {"lbzip2": "lbzip2 is needed for the reference run"}
    )
    try:
        files = generate(work / "drop", args.files, args.size_mb)
        mb = sum(path.stat().st_size for path in files) / 1e6
        print(f"{args.files} F1 files, {mb:.0f} MB; cores: {available_cores()}")
        refs = [run_reference(files, work / "reference", args.threads)]
        drops = []
        target = DaemonDrop(work)
        try:
            for round_no in range(1, args.rounds + 1):
                if round_no > 1:
                    files = next_batch(files, target.archive, round_no)
                drops.append(target.drop(files))
                files = [target.archive / path.name for path in files]
                refs.append(run_reference(files, work / "reference", args.threads))
        finally:
            target.close()
        label = f"lbzip2 -9 -n{args.threads}"
        for wall, cpu in refs:
            print(f"{label:<28} {mb / wall:6.1f} MB/s  ({wall:.2f} s; {cpu:.2f} s CPU)")
        for first, last, cpu, out in drops:
            print(
                f"{'daemon, rename -> published':<28} {mb / last:6.1f} MB/s  ({last:.2f} s,"
                f" first file after {first:.2f} s; {cpu:.2f} s CPU; {mb * 1e6 / out:.1f}:1)"
            )
        best_ref = min(wall for wall, _ in refs)
        best = min(last for _, last, _, _ in drops)
        print(
            f"best of each: reference {mb / best_ref:.1f} MB/s, ours {mb / best:.1f} MB/s,"
            f" ratio {best_ref / best:.2f}x (target >= 0.85x)"
        )
    finally:
        keep_or_remove(work, args.keep)


if __name__ == "__main__":
    main()
