"""Two replicas of node 0086 behind a real HAProxy, on one shared spool and one PostgreSQL
ledger, with real processes over real mutual TLS (issue 12, "Proven").

``test_kill_9_during_collects_and_pushes``: two remote peers (CREC and 0021,
each its own config and spool) collect from and push to the HAProxy address
with the one-shot CLI (``concentrador collect 0086`` / ``push 0086``, looped
until done), while a killer thread SIGKILLs a random replica at random moments
and restarts it. The files to collect are dropped into the shared outbox in
batches during the run, so the replicas' publish passes race each other and
the kills too. Sizes: ``CONCENTRADOR_SCALEOUT_FILES`` files collected and as
many pushed, split between the two peers; the default, 500, IS the issue's
500 collects and 500 pushes (about a minute on 2 cores). Set it lower for a
quicker run, higher for a longer soak. Afterwards:

* every file is in the receiver's inbox exactly once, MD5 intact (collected
  ones at each peer, pushed ones in the shared spool), nothing in ``failed/``;
* the PostgreSQL cycle log shows no two jobs of one (peer, kind) overlapping;
  a row left open must belong to a killed replica and counts as held until
  the moment it was killed;
* nothing is left claimed: no advisory lock in ``pg_locks``, every (peer,
  kind) claim can be taken, and both replicas stop cleanly with SIGTERM.

``test_block_set_spread_over_both_replicas_is_rebuilt_once``: a file cut
into blocks, each block sent on a new connection, so HAProxy's round-robin
hands them to both replicas; it is rebuilt once.

Two replicas whose schedules fire in the same second run one cycle: that is
``test_claims.py::test_two_replicas_whose_schedules_fire_together_run_one_cycle``.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from concentrador.client.session import PeerSession
from concentrador.config import load_config
from concentrador.spool.claims.advisory import AdvisoryClaims
from concentrador.spool.layout import Spool, SpoolState
from concentrador.spool.ledger import CycleEntry, Ledger
from concentrador.spool.ledger.events import EventKind
from concentrador.spool.outbound.compress import detect_compressor
from concentrador.spool.outbound.publisher import Publisher
from tests.e2e.demo_nodes import Node
from tests.scaleout.replicas import (
    NODE_ID,
    Cluster,
    content_for,
    file_name,
    md5_plain,
    names_in,
    plain_name,
    stop_replicas_cleanly,
    wait_for,
    write_atomically,
)
from tests.scaleout.test_claims import advisory_locks_held
from tests.spool.claim_helpers import assert_no_overlap

pytest.importorskip("psycopg")

FILES = int(os.environ.get("CONCENTRADOR_SCALEOUT_FILES", "500"))
BATCHES = 5
FILE_SIZE = 3_000
RUN_TIMEOUT = 240.0


class Drivers:
    """The remote peers' CLI loops, the outbox feeder and the killer, as threads."""

    def __init__(self, cluster: Cluster, collect: dict[str, dict[str, str]]) -> None:
        self.cluster = cluster
        self.collect = collect  # peer -> name -> md5 of the plain content
        self.fed = threading.Event()
        self.done = threading.Event()
        self.errors: list[str] = []
        self.cycles = {peer: 0 for peer in cluster.peers}
        self.failed_cycles = 0
        self.random = random.Random(int(os.environ.get("CONCENTRADOR_SCALEOUT_SEED", "12")))

    def feed(self) -> None:
        """Drop the files to collect into the shared outbox, a batch at a time."""
        batches = [list(files.items()) for files in self.collect.values()]
        for batch in range(BATCHES):
            for peer, files in zip(self.collect, batches, strict=True):
                size = -(-len(files) // BATCHES)
                for name, _md5 in files[batch * size : (batch + 1) * size]:
                    write_atomically(
                        self.cluster.peer_spool(peer) / "outbox", name, content_for(name, FILE_SIZE)
                    )
            time.sleep(1.0)
        self.fed.set()

    def peer_loop(self, peer: str, pushed: set[str]) -> None:
        """Collect and push until everything arrived on both sides."""
        node = self.cluster.peers[peer]
        inbox = node.directory / "spool" / NODE_ID / "inbox"
        delivered = node.directory / "spool" / NODE_ID / "delivered"
        deadline = time.monotonic() + RUN_TIMEOUT
        try:
            while not self.done.is_set():
                collected = self.fed.is_set() and set(names_in(inbox)) >= set(self.collect[peer])
                if collected and set(names_in(delivered)) >= pushed:
                    return
                for command in ("collect", "push"):
                    # A cycle cut by a kill fails (counted), and is run again.
                    if node.cli(command, NODE_ID).returncode != 0:
                        self.failed_cycles += 1
                self.cycles[peer] += 1
                if time.monotonic() > deadline:
                    self.errors.append(f"{peer}: not done in {RUN_TIMEOUT} s")
                    return
        except BaseException as exc:  # reported by the test, not lost in a thread
            self.errors.append(f"{peer}: {exc!r}")

    def killer(self) -> None:
        """SIGKILL a random replica every 0.2-1 s, then start it again."""
        try:
            while not self.done.wait(self.random.uniform(0.2, 1.0)):
                replica = self.random.choice(self.cluster.replicas)
                self.cluster.kill_replica(replica)
                self.done.wait(self.random.uniform(0.0, 0.5))
                self.cluster.start_replica(replica)
        except BaseException as exc:
            self.errors.append(f"killer: {exc!r}")


def assert_cycles_never_overlap(rows: list[CycleEntry], kills: list[tuple[int, float]]) -> None:
    """No overlap per (peer, kind); an open row is a killed replica's, held until its kill."""
    killed_at = {pid: datetime.fromtimestamp(at, UTC) for pid, at in kills}
    closed = []
    for row in rows:
        if row.ended_at is None:
            pid = int(row.replica.rpartition(":")[2])
            assert pid in killed_at, f"cycle left open by a replica that was not killed: {row}"
            # The kill's time was taken before the signal: a lower bound of the release.
            row = CycleEntry(
                row.id, row.peer, row.kind, row.replica, row.started_at, killed_at[pid], "killed"
            )
        closed.append(row)
    assert_no_overlap(closed)


def assert_nothing_claimed(cluster: Cluster, rows: list[CycleEntry]) -> None:
    wait_for(
        "the advisory locks to be released",
        lambda: advisory_locks_held(cluster.pg_url) == 0,
        10,
        cluster.diagnostics,
    )
    checker = AdvisoryClaims(cluster.pg_url, replica="checker")
    try:
        for peer, kind in sorted({(row.peer, row.kind) for row in rows}):
            with checker.hold(peer, kind):
                pass
    finally:
        checker.close()


def test_kill_9_during_collects_and_pushes(cluster: Cluster) -> None:
    peers = list(cluster.peers)
    per_peer = FILES // len(peers)
    collect: dict[str, dict[str, str]] = {}
    pushed: dict[str, dict[str, str]] = {}
    for peer in peers:
        names = [file_name("F1", NODE_ID, i) for i in range(per_peer)]
        collect[peer] = {n: md5_of(content_for(n, FILE_SIZE)) for n in names}
        # What the peer pushes waits in its own outbox from the start.
        outbox = cluster.peers[peer].directory / "spool" / NODE_ID / "outbox"
        pushed[peer] = {}
        for i in range(per_peer):
            name = file_name("P1", peer, i)
            write_atomically(outbox, name, content_for(name, FILE_SIZE))
            pushed[peer][name] = md5_of(content_for(name, FILE_SIZE))

    drivers = Drivers(cluster, collect)
    threads = [threading.Thread(target=drivers.feed), threading.Thread(target=drivers.killer)]
    threads += [
        threading.Thread(target=drivers.peer_loop, args=(peer, set(pushed[peer]))) for peer in peers
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads[2:]:
        thread.join(RUN_TIMEOUT + 60)
    drivers.done.set()
    for thread in threads[:2]:
        thread.join(60)
    elapsed = time.monotonic() - started
    assert drivers.errors == [], f"{drivers.errors}\n{cluster.diagnostics()}"
    assert len(cluster.kills) >= 3, f"only {len(cluster.kills)} kill(s) in {elapsed:.0f} s"
    assert drivers.failed_cycles >= 1, "no kill cut a peer's cycle: the run proved nothing"
    for replica in cluster.replicas:  # the killer restarted the last one it killed
        assert replica.running(), cluster.diagnostics()

    for peer in peers:
        # Collected: at the peer, once each, intact; confirmed, so delivered at the replicas.
        peer_spool = cluster.peers[peer].directory / "spool" / NODE_ID
        inbox = sorted((peer_spool / "inbox").iterdir())
        assert sorted(plain_name(p) for p in inbox) == sorted(collect[peer]), peer
        assert {plain_name(p): md5_plain(p) for p in inbox} == collect[peer]
        shared = cluster.peer_spool(peer)
        assert names_in(shared / "delivered") == sorted(collect[peer])
        for state in ("outbox", "published", "failed", "manual"):
            assert names_in(shared / state) == [], (peer, state)
        # Pushed: in the shared inbox, once each, intact; delivered at the peer.
        received = sorted((shared / "inbox").iterdir())
        assert sorted(plain_name(p) for p in received) == sorted(pushed[peer])
        assert {plain_name(p): md5_plain(p) for p in received} == pushed[peer]
        assert names_in(peer_spool / "delivered") == sorted(pushed[peer])
        for state in ("sending", "failed", "partial"):
            assert names_in(peer_spool / state) == [], (peer, state)

    with Ledger(url=cluster.pg_url) as ledger:
        rows = ledger.cycles()
        open_rows = sum(row.ended_at is None for row in rows)
        assert {row.kind for row in rows} >= {"publish"}, rows
        assert_cycles_never_overlap(rows, cluster.kills)
        assert_nothing_claimed(cluster, rows)
        stop_replicas_cleanly(cluster)
        # Every cycle of the replicas that stopped cleanly ended.
        assert_cycles_never_overlap(ledger.cycles(), cluster.kills)
    assert advisory_locks_held(cluster.pg_url) == 0
    print(
        f"\n{FILES} collects + {FILES} pushes in {elapsed:.1f} s, {len(cluster.kills)} kills, "
        f"{drivers.cycles} CLI rounds per peer ({drivers.failed_cycles} cycles cut), "
        f"{len(rows)} replica jobs in the cycle log, {open_rows} of them cut by a kill"
    )


def md5_of(data: bytes) -> str:
    import hashlib

    return hashlib.md5(data).hexdigest()


def served_by(replica: Node, original: str) -> set[str]:
    """The block names of ``original`` this replica's log says it received."""
    pattern = re.compile(rf"received ({re.escape(original)}\.\d+_\d+)\b")
    return set(pattern.findall(replica.log_text()))


async def _push_each_block_on_its_own_connection(
    node: Node, blocks: list[tuple[Path, str]]
) -> None:
    config = load_config(node.config)
    peer = config.peer_by_id(NODE_ID)
    assert peer is not None
    for path, md5 in blocks:
        # A new session is a new TCP connection: HAProxy picks the next replica.
        async with PeerSession.open(config, peer) as session:
            assert await session.enviar_fichero(path.name, path, md5) == 0


def test_block_set_spread_over_both_replicas_is_rebuilt_once(cluster: Cluster) -> None:
    node = cluster.peers["CREC"]
    config = load_config(node.config)
    data = os.urandom(int(3.5 * config.node.block_size))  # incompressible: 4 blocks
    name = file_name("P1", "CREC", 0)
    original = f"{name}.bz2"
    peer_spool = Spool(config.node.spool).peer(NODE_ID).ensure()
    write_atomically(peer_spool.dir(SpoolState.OUTBOX), name, data)
    # The peer's own publisher compresses and cuts the file, as `concentrador push` does.
    with Ledger(Spool(config.node.spool).ledger_path) as ledger, detect_compressor() as compressor:
        Publisher(
            peer_spool,
            ledger,
            classifier=config.type_classifier(),
            block_size=config.node.block_size,
            deliver="push",
            compressor=compressor,
            settle_seconds=0,
        ).publish_pending()
    blocks = sorted(peer_spool.dir(SpoolState.SENDING).iterdir())
    assert len(blocks) == 4, blocks
    from concentrador.spool.durable import file_md5

    asyncio.run(_push_each_block_on_its_own_connection(node, [(p, file_md5(p)[0]) for p in blocks]))
    # Both replicas got blocks of the set: the round-robin alternated.
    seen = [served_by(replica, original) for replica in cluster.replicas]
    assert all(seen), seen
    assert set().union(*seen) == {p.name for p in blocks}

    shared = cluster.peer_spool("CREC")
    wait_for(
        "the set to be rebuilt",
        lambda: names_in(shared / "inbox") == [name],
        30,
        cluster.diagnostics,
    )
    (rebuilt,) = (shared / "inbox").iterdir()
    assert md5_plain(rebuilt) == md5_of(data)
    time.sleep(1.0)  # room for a second rebuild, were there one
    assert names_in(shared / "inbox") == [name]
    assert names_in(shared / "partial") == []
    with Ledger(url=cluster.pg_url) as ledger:
        kinds = [event.kind for event in ledger.events_for("CREC", original)]
        rows = ledger.cycles("CREC", "rebuild")
        assert rows, "no rebuild job in the cycle log"
        assert_no_overlap(rows)
    assert kinds.count(EventKind.REASSEMBLED) == 1, kinds
    assert kinds.count(EventKind.BLOCK_RECEIVED) == len(blocks), kinds
    stop_replicas_cleanly(cluster)
