"""Replicas behind HAProxy: collect and push throughput with 1 and 2 replicas, CPU per file.

The deployment of ``tests/scaleout/test_replicas_e2e.py`` (real processes,
mutual TLS through a TCP-mode HAProxy, one shared spool folder, one
PostgreSQL ledger), built by the same helpers: two remote peers (CREC and
0021) run their one-shot CLI cycles at the same time against the HAProxy
address.

* **collect**: ``--files`` small files per peer already published in the
  shared spool; both peers run ``concentrador collect 0086`` at once. The
  replicas serve the listing, every recogerFichero and every confirmacion.
* **push**: ``--files`` small files per peer in their outboxes; both run
  ``concentrador push 0086`` at once. The replicas store every enviarFichero.

For each phase: files/s (wall time of the two CLI processes, Python start-up
included), the replicas' CPU seconds per file (``/proc/<pid>/stat`` utime +
stime, per replica and summed), PostgreSQL's backends' CPU per file, and the
statements PostgreSQL ran per file (``pg_stat_statements``, BEGIN/COMMIT
included: each is one round trip). Then one extra pass with one replica under
``strace -f -c`` counts its fsync/fdatasync and renames per file (not timed:
strace slows it down).

On 2 cores, 2 replicas + PostgreSQL + HAProxy + 2 clients share the same two
cores, so the files/s ratio cannot show scaling; the CPU per file per replica
and the round trips per file are what ``docs/deploy.md``'s model uses.

    .venv/bin/python bench/replicas_bench.py [--files 500] [--runs 3]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.demo_nodes import child_env  # noqa: E402
from tests.scaleout.haproxy import HAProxy  # noqa: E402
from tests.scaleout.postgres import PostgresServer  # noqa: E402
from tests.scaleout.processes import children_of  # noqa: E402
from tests.scaleout.replicas import (  # noqa: E402
    NODE_ID,
    Cluster,
    build_cluster,
    content_for,
    file_name,
    wait_for,
)

FILE_SIZE = 3_000
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime (+ waited-for children) of ``pid``; 0 for a process gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    # Fields 14-17 of stat(5): utime, stime, cutime, cstime (after the name: index 11-14).
    return sum(int(value) for value in fields[11:15]) / TICK


def postgres_cpu(postmaster: int) -> float:
    return sum(cpu_seconds(pid) for pid in [postmaster, *children_of(postmaster)])


def statements(url: str) -> int:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE dbid = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()
    return int(row[0]) if row else 0


def reset_statements(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("SELECT pg_stat_statements_reset()")


@dataclass
class Phase:
    replicas: int
    kind: str
    files: int
    seconds: float
    replica_cpu: list[float]
    postgres_cpu: float
    statements: int

    @property
    def rate(self) -> float:
        return self.files / self.seconds


def _write(folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    temp = folder.parent / f".{name}.tmp"
    temp.write_bytes(content_for(name, FILE_SIZE))
    temp.rename(folder / name)


def _count(folder: Path) -> int:
    return sum(1 for _ in folder.iterdir()) if folder.is_dir() else 0


def _at_least(folder: Path, count: int) -> bool:
    return _count(folder) >= count


def _run_peers(cluster: Cluster, command: str) -> float:
    """``concentrador <command> 0086`` on every peer at once; the wall time."""
    started = time.monotonic()
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "concentrador", "--config", str(node.config), command, NODE_ID],
            env=child_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for node in cluster.peers.values()
    ]
    for process in processes:
        _out, err = process.communicate(timeout=600)
        if process.returncode != 0:
            raise RuntimeError(f"{command} failed: {err.decode(errors='replace')[-2000:]}")
    return time.monotonic() - started


def _phase(cluster: Cluster, pg: PostgresServer, kind: str, files: int) -> Phase:
    pids = [r.process.pid for r in cluster.replicas if r.process is not None]
    reset_statements(cluster.pg_url)
    cpu_before = [cpu_seconds(pid) for pid in pids]
    pg_before = postgres_cpu(pg.pid)
    seconds = _run_peers(cluster, kind)
    replica_cpu = [cpu_seconds(pid) - before for pid, before in zip(pids, cpu_before, strict=True)]
    return Phase(
        len(pids),
        kind,
        files,
        seconds,
        replica_cpu,
        postgres_cpu(pg.pid) - pg_before,
        statements(cluster.pg_url),
    )


def prepare(cluster: Cluster, per_peer: int) -> None:
    """Files to collect, published in the shared spool; files to push, in the peers' outboxes."""
    for peer, node in cluster.peers.items():
        for index in range(per_peer):
            _write(cluster.peer_spool(peer) / "outbox", file_name("F1", NODE_ID, index))
            _write(node.directory / "spool" / NODE_ID / "outbox", file_name("P1", peer, index))
    for peer in cluster.peers:
        published = cluster.peer_spool(peer) / "published"
        wait_for(
            f"{peer}'s files to be published",
            functools.partial(_at_least, published, per_peer),
            120,
            cluster.diagnostics,
        )


@contextlib.contextmanager
def prepared_cluster(
    pg: PostgresServer, prefix: str, database: str, replicas: int, per_peer: int
) -> Iterator[Cluster]:
    r"""A cluster of ``replicas`` behind HAProxy on a fresh database, files
    :func:`prepare`\ d; stopped and removed, database and all, afterwards."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    url = pg.create_database(database)
    proxies: list[HAProxy] = []

    def start_haproxy(backends: Sequence[int]) -> HAProxy:
        proxies.append(HAProxy(root / "haproxy", backends, health_check=False))
        return proxies[-1].start()

    cluster = build_cluster(root, url, start_haproxy, replicas=replicas)
    try:
        prepare(cluster, per_peer)
        yield cluster
    finally:
        cluster.stop_all()
        for proxy in proxies:
            proxy.stop()
        pg.drop_database(url)
        shutil.rmtree(root, ignore_errors=True)


def run_once(pg: PostgresServer, replicas: int, per_peer: int, run: int) -> list[Phase]:
    with prepared_cluster(
        pg, f"replicas-bench-{replicas}-", f"bench_{replicas}_{run}", replicas, per_peer
    ) as cluster:
        files = per_peer * len(cluster.peers)
        collect = _phase(cluster, pg, "collect", files)
        push = _phase(cluster, pg, "push", files)
        for peer in cluster.peers:
            assert _count(cluster.peer_spool(peer) / "inbox") == per_peer, peer
        return [collect, push]


STRACE_RE = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$")


def count_syscalls(pg: PostgresServer, per_peer: int) -> dict[str, dict[str, float]]:
    """fsync/fdatasync/rename calls per file of one replica, per phase, under strace."""
    result: dict[str, dict[str, float]] = {}
    with prepared_cluster(pg, "replicas-bench-strace-", "bench_strace", 1, per_peer) as cluster:
        replica = cluster.replicas[0]
        assert replica.process is not None
        files = per_peer * len(cluster.peers)
        for kind in ("collect", "push"):
            out = cluster.root / f"strace-{kind}.txt"
            tracer = subprocess.Popen(
                [
                    "strace",
                    "-f",
                    "-c",
                    "-o",
                    str(out),
                    "-p",
                    str(replica.process.pid),
                    "-e",
                    "trace=fsync,fdatasync,rename,renameat,renameat2",
                ],
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)  # attached to every thread
            _run_peers(cluster, kind)
            tracer.send_signal(signal.SIGINT)
            tracer.wait(30)
            counts: dict[str, float] = {}
            for line in out.read_text().splitlines():
                match = STRACE_RE.match(line)
                if match and match.group(2) != "total":
                    counts[match.group(2)] = int(match.group(1)) / files
            result[kind] = counts
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=500, help="files per peer per phase")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-strace", action="store_true")
    args = parser.parse_args()
    pg = PostgresServer(["shared_preload_libraries=pg_stat_statements"]).start()
    try:
        phases: list[Phase] = []
        for run in range(args.runs):
            for replicas in (1, 2):
                phases += run_once(pg, replicas, args.files, run)
        syscalls = {} if args.no_strace or not shutil.which("strace") else count_syscalls(pg, 200)
    finally:
        pg.stop()
    print(
        f"{os.cpu_count()} cores; {args.files} files of {FILE_SIZE} B per peer, 2 peers; "
        f"{args.runs} runs (median, [min-max] of files/s)"
    )
    print(
        "| phase | replicas | files/s | replica CPU ms/file (each) | all replicas ms/file "
        "| PostgreSQL CPU ms/file | PG statements/file |"
    )
    print("|---|---|---|---|---|---|---|")
    for kind in ("collect", "push"):
        for replicas in (1, 2):
            chosen = [p for p in phases if p.kind == kind and p.replicas == replicas]
            rates = [p.rate for p in chosen]
            per_replica = [
                statistics.median(p.replica_cpu[i] for p in chosen) * 1000 / chosen[0].files
                for i in range(replicas)
            ]
            total = statistics.median(sum(p.replica_cpu) for p in chosen) * 1000 / chosen[0].files
            pg_ms = statistics.median(p.postgres_cpu for p in chosen) * 1000 / chosen[0].files
            stmts = statistics.median(p.statements for p in chosen) / chosen[0].files
            print(
                f"| {kind} | {replicas} | {statistics.median(rates):.0f} "
                f"[{min(rates):.0f}-{max(rates):.0f}] | "
                f"{' + '.join(f'{v:.2f}' for v in per_replica)} | {total:.2f} | "
                f"{pg_ms:.2f} | {stmts:.1f} |"
            )
    for kind, counts in syscalls.items():
        described = ", ".join(f"{name} {value:.2f}" for name, value in sorted(counts.items()))
        print(f"syscalls per file, {kind}, 1 replica (strace -f -c): {described}")


if __name__ == "__main__":
    main()
