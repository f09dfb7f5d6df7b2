"""Crash at every step of a publication, restart, recover: exactly one publication."""

from __future__ import annotations

import bz2
import hashlib
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from concentrador.protocol.filetypes import TypeClassifier
from concentrador.spool.layout import PeerSpool, SpoolState
from concentrador.spool.ledger import Ledger
from concentrador.spool.outbound.compress import Compressor, Sink, Source, detect_compressor
from concentrador.spool.outbound.publisher import Publisher

PEER = "PEER1"
NAME = "F1_0086_20240101_20240102.0"
PUBLISHED = f"{NAME}.bz2"
BLOCKS = [f"{PUBLISHED}.{k}_3" for k in (1, 2, 3)]


class Crash(BaseException):
    """A power cut: not an Exception, so no cleanup handler runs for it."""


class CrashingCompressor(Compressor):
    """Writes some output, then dies: leaves a half-written part in staging."""

    name = "crashing"

    def __init__(self, inner: Compressor) -> None:
        super().__init__(1)
        self.inner = inner

    def compress_stream(self, source: Source, sink: Sink) -> int:
        def dying_sink(piece: bytes) -> None:
            sink(piece)
            raise Crash("power cut during compression")

        return self.inner.compress_stream(source, dying_sink)


@pytest.fixture
def compressor() -> Iterator[Compressor]:
    with detect_compressor() as made:
        yield made


@pytest.fixture
def original() -> bytes:
    # Random bytes barely compress: ~2.5 MB makes 3 blocks of 1 MiB.
    return random.Random(42).randbytes(2_500_000)


def new_publisher(root: Path, ledger: Ledger, compressor: Compressor) -> Publisher:
    return Publisher(
        PeerSpool(root, PEER).ensure(),
        ledger,
        classifier=TypeClassifier(),
        block_size=1_048_576,
        compressor=compressor,
        settle_seconds=0,
    )


def crash_at(step: str, occurrence: int = 1) -> Callable[[str], None]:
    seen = {"count": 0}

    def hook(name: str) -> None:
        if name == step:
            seen["count"] += 1
            if seen["count"] == occurrence:
                raise Crash(f"power cut after {step} #{occurrence}")

    return hook


def assert_published_once(spool: PeerSpool, ledger: Ledger, original: bytes) -> None:
    published = spool.dir(SpoolState.PUBLISHED)
    assert sorted(p.name for p in published.iterdir()) == BLOCKS
    entries = ledger.entries_of(PEER, PUBLISHED)
    assert sorted(e.name for e in entries) == BLOCKS
    for entry in entries:
        data = (published / entry.name).read_bytes()
        assert entry.md5 == hashlib.md5(data).hexdigest() and entry.size == len(data)
    whole = b"".join((published / name).read_bytes() for name in BLOCKS)
    assert bz2.decompress(whole) == original
    assert [p.name for p in spool.dir(SpoolState.OUTBOX).iterdir()] == []
    assert [p.read_bytes() for p in spool.dir(SpoolState.ARCHIVE).iterdir()] == [original]
    assert list(spool.work_dir.glob("publish-*")) == []


@pytest.mark.parametrize(
    ("step", "occurrence", "expect_completed"),
    [
        ("staged", 1, False),  # parts durable, no manifest yet
        ("manifest", 1, False),  # manifest durable, ledger not yet
        ("ledger", 1, True),  # committed, nothing moved
        ("moved", 1, True),  # one block moved
        ("moved", 2, True),  # two of three blocks moved
        ("moved", 3, True),  # all moved, original not archived
        ("archived", 1, True),  # archived, staging not yet removed
    ],
)
def test_crash_then_recover(
    tmp_path: Path,
    compressor: Compressor,
    original: bytes,
    step: str,
    occurrence: int,
    expect_completed: bool,
) -> None:
    root = tmp_path / "spool"
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        first = new_publisher(root, ledger, compressor)
        (first.spool.dir(SpoolState.OUTBOX) / NAME).write_bytes(original)
        first._on_step = crash_at(step, occurrence)
        with pytest.raises(Crash):
            first.publish_file(first.spool.dir(SpoolState.OUTBOX) / NAME)

    # Restart: new ledger connection, new publisher; recover, then a normal scan.
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        second = new_publisher(root, ledger, compressor)
        report = second.recover()
        assert (report.completed, report.rolled_back) == (
            int(expect_completed),
            1 - expect_completed,
        )
        second.spool.clear_work()  # the daemon's start-up order: recover, then clear
        later = second.publish_pending()
        assert len(later) == (0 if expect_completed else 1)
        assert_published_once(second.spool, ledger, original)


def test_crash_during_compression(tmp_path: Path, compressor: Compressor, original: bytes) -> None:
    root = tmp_path / "spool"
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        first = new_publisher(root, ledger, CrashingCompressor(compressor))
        (first.spool.dir(SpoolState.OUTBOX) / NAME).write_bytes(original)
        with pytest.raises(Crash):
            first.publish_file(first.spool.dir(SpoolState.OUTBOX) / NAME)
        assert len(list(first.spool.work_dir.glob("publish-*/.w-*"))) == 1  # half-written part

        second = new_publisher(root, ledger, compressor)
        assert second.recover().rolled_back == 1
        assert len(second.publish_pending()) == 1
        assert_published_once(second.spool, ledger, original)


def test_ledger_failure_leaves_nothing_half_done(
    tmp_path: Path, compressor: Compressor, original: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ordinary error (not a crash) at the commit point undoes the staging at once."""
    root = tmp_path / "spool"
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        publisher = new_publisher(root, ledger, compressor)
        (publisher.spool.dir(SpoolState.OUTBOX) / NAME).write_bytes(original)

        def refuse(_entries: object) -> None:
            raise OSError("database is locked")

        monkeypatch.setattr(ledger, "record_published", refuse)
        assert publisher.publish_pending() == []  # logged, the batch goes on
        assert list(publisher.spool.work_dir.glob("publish-*")) == []
        assert (publisher.spool.dir(SpoolState.OUTBOX) / NAME).exists()
        monkeypatch.undo()
        assert len(publisher.publish_pending()) == 1
        assert_published_once(publisher.spool, ledger, original)


def test_failed_moves_are_finished_by_the_next_scan(
    tmp_path: Path, compressor: Compressor, original: bytes
) -> None:
    """A storage error after the commit point heals without a restart."""
    root = tmp_path / "spool"
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        publisher = new_publisher(root, ledger, compressor)
        (publisher.spool.dir(SpoolState.OUTBOX) / NAME).write_bytes(original)

        def disk_error(name: str) -> None:
            if name == "moved":
                raise OSError("I/O error")

        publisher._on_step = disk_error
        assert publisher.publish_pending() == []
        publisher._on_step = None
        assert publisher.publish_pending() == []  # nothing new to publish...
        assert_published_once(publisher.spool, ledger, original)  # ...but it was finished
