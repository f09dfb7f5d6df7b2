"""Compression overlaps the settle time; the commit still waits for it."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from concentrador.protocol.filetypes import TypeClassifier
from concentrador.spool.layout import PeerSpool, SpoolState
from concentrador.spool.ledger import Ledger
from concentrador.spool.outbound.compress import Compressor, available_cores, detect_compressor
from concentrador.spool.outbound.publisher import Publisher
from concentrador.spool.outbound.scan import OutboxFile, SettleTracker

PEER = "PEER1"
NAME = "F1_0086_20240101_20240102.0"
SETTLE = 0.6


@pytest.fixture
def compressor() -> Iterator[Compressor]:
    with detect_compressor("threads", threads=1) as made:
        yield made


@pytest.fixture
def spool(tmp_path: Path) -> PeerSpool:
    return PeerSpool(tmp_path / "spool", PEER).ensure()


def new_publisher(spool: PeerSpool, ledger: Ledger, compressor: Compressor) -> Publisher:
    return Publisher(
        spool,
        ledger,
        classifier=TypeClassifier(),
        compressor=compressor,
        settle_seconds=SETTLE,
    )


def drop(spool: PeerSpool, data: bytes, *, age: float) -> Path:
    path = spool.dir(SpoolState.OUTBOX) / NAME
    path.write_bytes(data)
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def record_steps(publisher: Publisher) -> dict[str, float]:
    steps: dict[str, float] = {}
    publisher._on_step = lambda name: steps.setdefault(name, time.monotonic())
    return steps


def test_tracker_lets_a_quiet_file_start_but_not_commit_early() -> None:
    now, wall = [100.0], [5_000.0]
    tracker = SettleTracker(2.0, clock=lambda: now[0], wall_clock=lambda: wall[0])
    fresh = OutboxFile(Path("/o/F1_a"), "F1_a", None, 10, int(4_999.5e9), 7)
    quiet = OutboxFile(Path("/o/F1_b"), "F1_b", None, 10, int(4_990e9), 8)
    assert tracker.may_start(fresh) is None  # written half a second ago: wait
    assert tracker.may_start(quiet) == 102.0  # start now, commit from the deadline on
    assert not tracker.is_settled(quiet)
    now[0] += 2.0
    assert tracker.may_start(fresh) == 102.0  # seen unchanged long enough
    grown = OutboxFile(Path("/o/F1_b"), "F1_b", None, 20, int(5_000e9), 8)
    assert tracker.may_start(grown) is None  # it changed: fresh again, the clock restarts


def test_quiet_file_is_compressed_during_its_settle_time(
    spool: PeerSpool, ledger: Ledger, compressor: Compressor
) -> None:
    drop(spool, b"a;b;c\n" * 10_000, age=3600)
    publisher = new_publisher(spool, ledger, compressor)
    steps = record_steps(publisher)
    start = time.monotonic()
    [result] = publisher.publish_pending()
    assert result.published_name == f"{NAME}.bz2"
    assert steps["staged"] - start < SETTLE  # compressed at once...
    assert steps["manifest"] - start >= SETTLE  # ...committed only once settled
    assert (spool.dir(SpoolState.PUBLISHED) / f"{NAME}.bz2").exists()


def test_fresh_file_waits_for_its_settle_time(
    spool: PeerSpool, ledger: Ledger, compressor: Compressor
) -> None:
    drop(spool, b"still being written\n", age=0)
    publisher = new_publisher(spool, ledger, compressor)
    steps = record_steps(publisher)
    assert publisher.publish_pending() == []
    assert steps == {}  # not even compressed
    time.sleep(SETTLE)
    assert len(publisher.publish_pending()) == 1


def test_file_written_during_its_settle_time_is_not_published(
    spool: PeerSpool, ledger: Ledger, compressor: Compressor
) -> None:
    path = drop(spool, b"first half\n", age=3600)
    publisher = new_publisher(spool, ledger, compressor)

    def append_after_compression(name: str) -> None:
        if name == "staged":
            with open(path, "ab") as handle:
                handle.write(b"second half\n")

    publisher._on_step = append_after_compression
    assert publisher.publish_pending() == []
    assert list(spool.dir(SpoolState.PUBLISHED).iterdir()) == []
    assert list(spool.work_dir.glob("publish-*")) == []
    assert ledger.lookup(PEER, f"{NAME}.bz2") is None
    publisher._on_step = None
    deadline = time.monotonic() + 10
    while not (results := publisher.publish_pending()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [r.published_name for r in results] == [f"{NAME}.bz2"]
    archived = spool.dir(SpoolState.ARCHIVE) / NAME
    assert archived.read_bytes() == b"first half\nsecond half\n"


def test_one_file_at_a_time_when_the_compressor_takes_every_core(
    spool: PeerSpool, ledger: Ledger
) -> None:
    with detect_compressor("threads", threads=available_cores()) as every_core:
        assert new_publisher(spool, ledger, every_core).max_parallel_files == 1
    with detect_compressor("threads", threads=1) as one_core:
        assert new_publisher(spool, ledger, one_core).max_parallel_files == available_cores()
