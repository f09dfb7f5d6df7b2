import bz2
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from concentrador.protocol.blocks import parse_block_name
from concentrador.spool.inbound.reassembly import Reassembler
from concentrador.spool.layout import Spool
from concentrador.spool.ledger import Ledger
from concentrador.spool.watcher import SpoolWatcher

DEBOUNCE = 0.2


class Calls:
    def __init__(self) -> None:
        self.items: list[tuple[str, Path]] = []
        self.event = threading.Event()

    def __call__(self, peer: str, path: Path) -> None:
        self.items.append((peer, path))
        self.event.set()


def wait_for(predicate, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    spool = Spool(tmp_path / "spool")
    spool.ensure(["A", "B"])
    return spool


def test_blocks_copied_in_by_hand_trigger_reassembly(spool: Spool, tmp_path: Path) -> None:
    peer = spool.peer("A")
    ledger = Ledger(spool.ledger_path)
    reassembler = Reassembler(peer, ledger, decompress=False)
    data = bz2.compress(os.urandom(50_000))
    third = -(-len(data) // 3)
    source = tmp_path / "elsewhere"
    source.mkdir()
    for k in range(3):
        (source / f"F1.bz2.{k + 1}_3").write_bytes(data[k * third : (k + 1) * third])

    def on_partial(peer_id: str, path: Path) -> None:
        block = parse_block_name(path.name)
        assert peer_id == "A" and block is not None
        reassembler.try_complete(block.original)

    with SpoolWatcher(spool, ["A", "B"], Calls(), on_partial, debounce=DEBOUNCE):
        for k in (3, 1, 2):
            shutil.copyfile(source / f"F1.bz2.{k}_3", peer.dir("partial") / f"F1.bz2.{k}_3")
        assert wait_for(lambda: (peer.dir("inbox") / "F1.bz2").exists())
    assert (peer.dir("inbox") / "F1.bz2").read_bytes() == data
    assert sorted(p.name for p in peer.dir("archive").iterdir()) == [
        "F1.bz2.1_3",
        "F1.bz2.2_3",
        "F1.bz2.3_3",
    ]
    assert ledger.received("A", "F1.bz2") is not None
    ledger.close()


def test_outbox_events_are_filtered_and_debounced(spool: Spool) -> None:
    outbox, partial = Calls(), Calls()
    box = spool.peer("B").dir("outbox")
    (box / "CUR").mkdir()
    with SpoolWatcher(spool, ["A", "B"], outbox, partial, debounce=DEBOUNCE):
        (box / ".hidden").write_bytes(b"x")
        (box / "copy.part").write_bytes(b"x")
        with open(box / "CUR" / "F1_0086.txt", "wb") as handle:
            for _ in range(5):  # several writes, one callback
                handle.write(b"1;2;3\n" * 100)
                handle.flush()
                time.sleep(0.02)
        (box / ".tmp-rsync").write_bytes(b"renamed into place")
        os.rename(box / ".tmp-rsync", box / "P1_0086.bz2")
        assert wait_for(lambda: len(outbox.items) >= 2)
        time.sleep(3 * DEBOUNCE)  # no late duplicates
    assert sorted(outbox.items) == [
        ("B", box / "CUR" / "F1_0086.txt"),
        ("B", box / "P1_0086.bz2"),
    ]
    assert partial.items == []


def test_file_still_growing_is_not_handed_over(spool: Spool) -> None:
    seen: list[int] = []
    box = spool.peer("A").dir("outbox")

    def on_outbox(peer_id: str, path: Path) -> None:
        seen.append(path.stat().st_size)

    # A generous debounce: a loaded CI machine must not stretch a pause past it.
    with SpoolWatcher(spool, ["A"], on_outbox, Calls(), debounce=1.0):
        with open(box / "BIG.txt", "wb") as handle:
            for _ in range(8):  # pauses much shorter than the debounce
                handle.write(b"x" * 1000)
                handle.flush()
                time.sleep(0.1)
        assert wait_for(lambda: bool(seen))
    assert seen == [8000]


def test_callback_errors_do_not_stop_the_watcher(spool: Spool) -> None:
    calls: list[Path] = []

    def flaky(peer_id: str, path: Path) -> None:
        calls.append(path)
        if len(calls) == 1:
            raise RuntimeError("boom")

    box = spool.peer("A").dir("outbox")
    with SpoolWatcher(spool, ["A"], flaky, Calls(), debounce=DEBOUNCE):
        (box / "one").write_bytes(b"1")
        assert wait_for(lambda: len(calls) == 1)
        (box / "two").write_bytes(b"2")
        assert wait_for(lambda: len(calls) == 2)
    assert [p.name for p in calls] == ["one", "two"]


def test_file_renamed_into_the_outbox_is_handed_over_at_once(spool: Spool, tmp_path: Path) -> None:
    """A rename is a whole file: the publisher's settle rule does the waiting."""
    box = spool.peer("A").dir("outbox")
    (box / "CUR").mkdir()
    source = tmp_path / "written-elsewhere"
    source.write_bytes(b"1;2;3\n" * 1000)
    calls = Calls()
    with SpoolWatcher(spool, ["A"], calls, Calls(), debounce=5.0):
        started = time.monotonic()
        os.rename(source, box / "CUR" / "F1_0086.txt")
        assert calls.event.wait(4.0)
        assert time.monotonic() - started < 1.0
    assert calls.items == [("A", box / "CUR" / "F1_0086.txt")]


# -- polling (a spool shared between hosts: inotify never sees their changes) --

POLL = 0.1


@pytest.fixture
def no_inotify(monkeypatch: pytest.MonkeyPatch) -> None:
    """Polling mode must not start the inotify observer at all."""

    def refuse() -> None:
        raise AssertionError("the polling watcher started an inotify observer")

    monkeypatch.setattr("concentrador.spool.watcher.Observer", refuse)


@pytest.mark.usefixtures("no_inotify")
def test_polling_watcher_sees_a_rename_into_the_outbox(spool: Spool, tmp_path: Path) -> None:
    box = spool.peer("A").dir("outbox")
    (box / "CUR").mkdir()
    source = tmp_path / "written-elsewhere"
    source.write_bytes(b"1;2;3\n" * 1000)
    calls, partial = Calls(), Calls()
    watcher = SpoolWatcher(
        spool, ["A", "B"], calls, partial, debounce=DEBOUNCE, polling=True, poll_interval=POLL
    )
    with watcher:
        time.sleep(2 * POLL)  # the first listing is the baseline: the rename must be a change
        os.rename(source, box / "CUR" / "F1_0086.txt")
        assert calls.event.wait(5.0)
        time.sleep(5 * POLL)  # later polls must not hand the same file over again
    assert calls.items == [("A", box / "CUR" / "F1_0086.txt")]
    assert partial.items == []


@pytest.mark.usefixtures("no_inotify")
def test_polling_watcher_follows_a_temp_name_renamed_in_place(spool: Spool) -> None:
    """How a producer on another host drops a file: write ``.name.tmp``, then rename."""
    box = spool.peer("B").dir("outbox")
    calls = Calls()
    with SpoolWatcher(
        spool, ["B"], calls, Calls(), debounce=DEBOUNCE, polling=True, poll_interval=POLL
    ):
        (box / ".P1_0086.bz2.tmp").write_bytes(b"BZh9" + b"x" * 500)
        time.sleep(3 * POLL)  # the temp name is seen by a poll (and ignored)
        assert calls.items == []
        os.rename(box / ".P1_0086.bz2.tmp", box / "P1_0086.bz2")
        assert calls.event.wait(5.0)
        time.sleep(5 * POLL)
    assert calls.items == [("B", box / "P1_0086.bz2")]


@pytest.mark.usefixtures("no_inotify")
def test_polling_watcher_hands_over_blocks_copied_into_partial(spool: Spool) -> None:
    partial_dir = spool.peer("A").dir("partial")
    partial = Calls()
    with SpoolWatcher(
        spool, ["A"], Calls(), partial, debounce=DEBOUNCE, polling=True, poll_interval=POLL
    ):
        (partial_dir / "F1.bz2.1_2").write_bytes(b"a" * 100)
        (partial_dir / "F1.bz2.2_2").write_bytes(b"b" * 100)
        assert wait_for(lambda: len(partial.items) >= 2, timeout=5.0)
        time.sleep(5 * POLL)
    assert sorted(partial.items) == [
        ("A", partial_dir / "F1.bz2.1_2"),
        ("A", partial_dir / "F1.bz2.2_2"),
    ]


@pytest.mark.parametrize("interval", [0.0, -1.0, float("nan")])
def test_poll_interval_must_be_positive(spool: Spool, interval: float) -> None:
    with pytest.raises(ValueError, match="poll_interval must be > 0"):
        SpoolWatcher(spool, ["A"], Calls(), Calls(), polling=True, poll_interval=interval)
