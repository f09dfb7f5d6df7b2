"""Two replicas on one shared spool folder and one PostgreSQL ledger (issue 12).

Each "replica" is a :class:`SpoolServices` (or a whole :class:`Daemon`) of its
own in this process, with its own ledger pool and its own advisory-lock
connections, exactly as two processes would have; they share only the spool
folder and the database.
"""

from __future__ import annotations

import asyncio
import bz2
import random
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from concentrador.config.model import AdminConfig, Config, LedgerConfig, SpoolConfig
from concentrador.daemon import services as services_module
from concentrador.daemon.serve import Daemon, DaemonOptions
from concentrador.daemon.services import SpoolServices
from concentrador.spool.claims.advisory import AdvisoryClaims
from concentrador.spool.inbound import rebuilds
from concentrador.spool.inbound.rebuilds import LocalRebuilds
from concentrador.spool.inbound.store import InboundStore
from concentrador.spool.layout import Spool, SpoolState
from concentrador.spool.ledger import EventKind
from tests.scaleout.test_claims import advisory_locks_held
from tests.spool.claim_helpers import assert_no_overlap
from tests.spool.test_claims_daemon import services_config

DATA = bz2.compress(random.Random(12).randbytes(400_000))
BLOCKS = 4


def replica_config(tmp_path: Path, pg_url: str, name: str) -> Config:
    config = services_config(tmp_path)
    return replace(
        config,
        node=replace(config.node, replica=name),
        ledger=LedgerConfig(url=pg_url),
        spool=SpoolConfig(shared=True, poll_interval=0.2),
        admin=AdminConfig(port=0),
    )


@pytest.fixture
def replicas(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[SpoolServices, SpoolServices]]:
    monkeypatch.setattr(services_module, "BUSY_RETRY_SECONDS", 0.1)
    a = SpoolServices(replica_config(tmp_path, pg_url, "r1"), settle_seconds=0)
    b = SpoolServices(replica_config(tmp_path, pg_url, "r2"), settle_seconds=0)
    try:
        yield a, b
    finally:
        a.close()
        b.close()
    assert advisory_locks_held(pg_url) == 0


def pieces(data: bytes, count: int) -> list[bytes]:
    size = -(-len(data) // count)
    return [data[i * size : (i + 1) * size] for i in range(count)]


async def upload_block(replica: SpoolServices, original: str, k: int, piece: bytes) -> None:
    """What enviarFichero does on a replica: store the block, then ask for its set's rebuild."""
    store = InboundStore(replica.spool.peer("CREC"), replica.ledger, decompress=False)
    name = f"{original}.{k}_{BLOCKS}"

    def commit() -> None:
        with store.open(name, manual=False) as writer:
            writer.write(piece)
            store.commit(writer, name)

    await asyncio.to_thread(commit)
    await replica.rebuild("CREC", original)


async def test_a_set_uploaded_half_to_each_replica_is_rebuilt_once(
    replicas: tuple[SpoolServices, SpoolServices],
) -> None:
    a, b = replicas
    loop = asyncio.get_running_loop()
    a.bind_loop(loop)
    b.bind_loop(loop)
    originals = [f"P1_0086_2024010{n}.0.bz2" for n in range(1, 9)]
    # The load balancer alternates: odd blocks to a, even ones to b, all at once.
    await asyncio.gather(
        *(
            upload_block(a if k % 2 else b, original, k, piece)
            for original in originals
            for k, piece in enumerate(pieces(DATA, BLOCKS), start=1)
        )
    )
    # And both replicas' sweeps run over it afterwards, at the same time.
    a.request_reassembly_all()
    b.request_reassembly_all()
    await a.drain()
    await b.drain()

    peer = a.spool.peer("CREC")
    assert peer.files(SpoolState.PARTIAL) == []
    assert sorted(p.name for p in peer.files(SpoolState.INBOX)) == originals
    assert len(peer.files(SpoolState.ARCHIVE)) == len(originals) * BLOCKS
    for original in originals:
        assert (peer.dir(SpoolState.INBOX) / original).read_bytes() == DATA
        kinds = [event.kind for event in a.ledger.events_for("CREC", original)]
        assert kinds.count(EventKind.REASSEMBLED) == 1, kinds
        assert EventKind.DUPLICATE not in kinds, kinds
    rows = a.ledger.cycles("CREC", "rebuild")
    assert {row.replica for row in rows} == {"r1", "r2"}  # both took part
    assert_no_overlap(rows)
    # Nothing left behind in either replica's temp folder.
    assert list(a.spool.peer("CREC").work_dir.iterdir()) == []
    assert list(b.spool.peer("CREC").work_dir.iterdir()) == []


def test_a_replica_restart_keeps_the_others_upload_in_progress(
    replicas: tuple[SpoolServices, SpoolServices], tmp_path: Path, pg_url: str
) -> None:
    a, b = replicas
    a_peer, b_peer = a.spool.peer("CREC"), b.spool.peer("CREC")
    assert a_peer.work_dir != b_peer.work_dir
    leftover = b_peer.work_dir / ".w-killed.part"  # what b's previous life left
    leftover.write_bytes(b"x")
    store = InboundStore(a_peer, a.ledger, decompress=False)
    with store.open("F1_0086_20240101.0.bz2", manual=False) as upload:
        upload.write(DATA[:1000])
        # b restarts (a new process under the same name) while a receives.
        b.close()
        restarted = SpoolServices(replica_config(tmp_path, pg_url, "r2"), settle_seconds=0)
        try:
            restarted.startup_pass()
        finally:
            restarted.close()
        assert not leftover.exists()  # its own folder was emptied
        assert upload.temp_path.exists()  # a's is untouched
        upload.write(DATA[1000:])
        stored = store.commit(upload, "F1_0086_20240101.0.bz2")
    assert stored.read_bytes() == DATA


def test_the_cli_rebuild_takes_the_rebuild_claim(
    replicas: tuple[SpoolServices, SpoolServices], pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rebuilds, "BUSY_RETRY_SECONDS", 0.05)
    a, _ = replicas
    peer = a.spool.peer("CREC")
    store = InboundStore(peer, a.ledger, decompress=False)
    original = "P1_0086_20240301.0.bz2"
    for k, piece in enumerate(pieces(DATA, BLOCKS), start=1):
        with store.open(f"{original}.{k}_{BLOCKS}", manual=False) as writer:
            writer.write(piece)
            store.commit(writer, f"{original}.{k}_{BLOCKS}")
    # A one-shot `concentrador collect` on another host: same spool, same database.
    cli = LocalRebuilds(
        Spool(peer.root, replica="cli:1"), a.ledger, a.config.peer_by_id,
        ledger_url=pg_url, busy_timeout=0.3,
    )  # fmt: skip
    holder = AdvisoryClaims(pg_url, replica="r9")
    try:
        with holder.hold("CREC", "rebuild"):  # a replica is rebuilding that peer
            assert cli.rebuild_now("CREC", original) is None
            assert len(peer.files(SpoolState.PARTIAL)) == BLOCKS
    finally:
        holder.close()
    assert cli.rebuild_now("CREC", original) == peer.dir(SpoolState.INBOX) / original
    (row,) = a.ledger.cycles("CREC", "rebuild")
    assert (row.replica, row.result) == ("cli:1", "ok")


async def test_a_daemon_on_a_shared_spool_polls(tmp_path: Path, pg_url: str) -> None:
    config = replica_config(tmp_path, pg_url, "r1")
    daemon = Daemon(config, DaemonOptions(settle_seconds=0.1, outbox_sweep_seconds=3600))
    await daemon.start()
    try:
        watcher = daemon._watcher
        assert watcher is not None and watcher.polling and watcher.poll_interval == 0.2
        assert daemon.services is not None
        assert daemon.services.spool.peer("CREC").work_dir.name == "r1"
        outbox = daemon.services.spool.peer("CREC").dir(SpoolState.OUTBOX)
        # Seen by a listing (on NFS no inotify event would come for another host's file).
        (outbox / "F1_0086_20240101_20240102.0").write_bytes(b"x;1\n" * 50)
        deadline = time.monotonic() + 15
        while not daemon.services.ledger.entries_for("CREC"):
            assert time.monotonic() < deadline, "the polling watcher never saw the file"
            await asyncio.sleep(0.1)
    finally:
        await daemon.stop()
