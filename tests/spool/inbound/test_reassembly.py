import bz2
import hashlib
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from concentrador.spool.inbound.reassembly import Reassembler
from concentrador.spool.inbound.store import InboundStore, InboundWriter
from concentrador.spool.layout import PeerSpool, SpoolState
from concentrador.spool.ledger import Ledger

# Random bytes do not compress: ~3.2 MB of bzip2, so each of 3 blocks is over
# the 1 MiB read size and the concatenation crosses read and block boundaries.
PLAIN = os.urandom(3_200_000)
DATA = bz2.compress(PLAIN)
ORIGINAL = "P1_20031120.1.bz2"

# Every test with runs decoded by lbzip2, and by bz2 (see conftest).
pytestmark = pytest.mark.usefixtures("run_decoder")


def split(data: bytes, n: int) -> list[bytes]:
    size = -(-len(data) // n)
    return [data[i * size : (i + 1) * size] for i in range(n)]


def block_names(n: int, original: str = ORIGINAL) -> list[str]:
    return [f"{original}.{k}_{n}" for k in range(1, n + 1)]


def drop_blocks(peer: PeerSpool, data: bytes, n: int, original: str = ORIGINAL) -> None:
    """Copy blocks into partial/ by hand (as an operator or the collector would)."""
    for name, piece in zip(block_names(n, original), split(data, n), strict=True):
        (peer.dir("partial") / name).write_bytes(piece)


def names(peer: PeerSpool, state: SpoolState | str) -> list[str]:
    return sorted(p.name for p in peer.dir(state).iterdir())


def assert_rebuilt_once(peer: PeerSpool, ledger: Ledger, n: int = 3) -> None:
    assert (peer.dir("inbox") / ORIGINAL).read_bytes() == DATA
    assert names(peer, "inbox") == [ORIGINAL]
    assert names(peer, "partial") == []
    assert names(peer, "archive") == block_names(n)  # no stamped duplicates
    entry = ledger.received("PEER", ORIGINAL)
    assert entry is not None and entry.md5 == hashlib.md5(DATA).hexdigest()
    assert len(ledger.unconfirmed("PEER")) == 1


def store_block(store: InboundStore, name: str, data: bytes, *, manual: bool = False) -> Path:
    """Receive one block as enviarFichero does (``manual``: outside the load window)."""
    with store.open(name, manual=manual) as writer:
        writer.write(data)
        return store.commit(writer, name)


def test_out_of_order_arrival_through_the_inbound_store(peer: PeerSpool, ledger: Ledger) -> None:
    store = InboundStore(peer, ledger, decompress=True)
    pieces = dict(zip(block_names(3), split(DATA, 3), strict=True))
    for name in [block_names(3)[2], block_names(3)[0], block_names(3)[1]]:
        assert store_block(store, name, pieces[name]) == peer.dir("partial") / name
    # The store only stores: rebuilding is the reassembler's, when asked.
    assert names(peer, "inbox") == [] and len(names(peer, "partial")) == 3
    assert Reassembler(peer, ledger, decompress=True).try_complete(ORIGINAL) is not None
    assert (peer.dir("inbox") / "P1_20031120.1").read_bytes() == PLAIN
    (peer.dir("inbox") / "P1_20031120.1").unlink()
    assert_rebuilt_once(peer, ledger)


@pytest.mark.parametrize("late", [0, 1], ids=["first-block-late", "last-block-late"])
def test_set_with_a_block_outside_the_load_window_rebuilds_into_manual_by_sweep(
    peer: PeerSpool, ledger: Ledger, late: int
) -> None:
    # As the server stores them; the rebuild right after never happens, the sweep does it.
    store = InboundStore(peer, ledger, decompress=False)
    for k, (name, piece) in enumerate(zip(block_names(2), split(DATA, 2), strict=True)):
        store_block(store, name, piece, manual=k == late)
    assert ledger.marked_outside_window("PEER", block_names(2)) == [block_names(2)[late]]
    assert Reassembler(peer, ledger, decompress=False).sweep() == [peer.dir("manual") / ORIGINAL]
    assert (peer.dir("manual") / ORIGINAL).read_bytes() == DATA
    assert names(peer, "inbox") == [] and names(peer, "partial") == []
    assert ledger.marked_outside_window("PEER", block_names(2)) == []  # forgotten once rebuilt
    # A later copy of the same set, all inside the window, goes to inbox/ again.
    other = bz2.compress(PLAIN[:50_000])
    for name, piece in zip(block_names(2), split(other, 2), strict=True):
        store_block(store, name, piece)
    assert Reassembler(peer, ledger, decompress=False).sweep() == [peer.dir("inbox") / ORIGINAL]


def test_set_inside_the_load_window_goes_to_inbox(peer: PeerSpool, ledger: Ledger) -> None:
    store = InboundStore(peer, ledger, decompress=False)
    for name, piece in zip(block_names(2), split(DATA, 2), strict=True):
        store_block(store, name, piece)
    assert Reassembler(peer, ledger, decompress=False).sweep() == [peer.dir("inbox") / ORIGINAL]
    assert names(peer, "manual") == []


def test_mark_is_written_before_the_block_is_committed(
    peer: PeerSpool, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = InboundStore(peer, ledger, decompress=False)
    seen: list[list[str]] = []
    real_commit = InboundWriter.commit

    def commit(self: InboundWriter, target: Path) -> Path:
        seen.append(ledger.marked_outside_window("PEER", [target.name]))
        return real_commit(self, target)

    monkeypatch.setattr(InboundWriter, "commit", commit)
    store_block(store, block_names(2)[0], split(DATA, 2)[0], manual=True)
    assert seen == [[block_names(2)[0]]]


# The child stores the blocks it finds in <root>/pieces/ (in name order, the
# last one outside the window) as the server does, says so, and hangs there.
_CHILD = """
import sys, time
from pathlib import Path
from concentrador.spool.inbound.store import InboundStore
from concentrador.spool.layout import PeerSpool
from concentrador.spool.ledger import Ledger

root = Path(sys.argv[1])
store = InboundStore(PeerSpool(root, "PEER"), Ledger(root / "ledger.sqlite3"), decompress=False)
pieces = sorted((root / "pieces").iterdir())
for piece in pieces:
    with store.open(piece.name, manual=piece == pieces[-1]) as writer:
        writer.write(piece.read_bytes())
        store.commit(writer, piece.name)
print("stored", flush=True)
time.sleep(600)
"""


def test_kill_9_between_the_blocks_and_the_rebuild_still_ends_in_manual(
    tmp_path: Path, peer: PeerSpool
) -> None:
    (tmp_path / "pieces").mkdir()
    for name, piece in zip(block_names(2), split(DATA, 2), strict=True):
        (tmp_path / "pieces" / name).write_bytes(piece)
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "stored\n"
    finally:
        child.send_signal(signal.SIGKILL)  # before any rebuild
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    assert names(peer, "partial") == block_names(2)

    with Ledger(tmp_path / "ledger.sqlite3") as fresh:  # the "restarted" process
        stored = Reassembler(peer, fresh, decompress=False).sweep()
        assert stored == [peer.dir("manual") / ORIGINAL]
        assert fresh.received("PEER", ORIGINAL) is not None
        assert fresh.marked_outside_window("PEER", block_names(2)) == []
    assert (peer.dir("manual") / ORIGINAL).read_bytes() == DATA
    assert names(peer, "inbox") == []


def test_incomplete_set_waits(peer: PeerSpool, ledger: Ledger) -> None:
    drop_blocks(peer, DATA, 3)
    (peer.dir("partial") / block_names(3)[1]).unlink()
    reassembler = Reassembler(peer, ledger, decompress=False)
    assert reassembler.try_complete(ORIGINAL) is None
    assert reassembler.sweep() == []
    assert len(names(peer, "partial")) == 2
    assert names(peer, "inbox") == []


def test_sweep_handles_every_complete_set(peer: PeerSpool, ledger: Ledger) -> None:
    other = bz2.compress(b"x" * 1000)
    drop_blocks(peer, DATA, 3)
    drop_blocks(peer, other, 2, "F5_X.bz2")
    (peer.dir("partial") / "unrelated.bz2").write_bytes(b"not a block")
    stored = Reassembler(peer, ledger, decompress=False).sweep()
    assert sorted(p.name for p in stored) == ["F5_X.bz2", ORIGINAL]
    assert (peer.dir("inbox") / "F5_X.bz2").read_bytes() == other
    assert names(peer, "partial") == ["unrelated.bz2"]


def test_blocks_of_another_cut_are_left_alone(peer: PeerSpool, ledger: Ledger) -> None:
    drop_blocks(peer, DATA, 3)
    (peer.dir("partial") / f"{ORIGINAL}.1_4").write_bytes(b"a stale block of another cut")
    assert Reassembler(peer, ledger, decompress=False).try_complete(ORIGINAL) is not None
    assert names(peer, "partial") == [f"{ORIGINAL}.1_4"]
    assert (peer.dir("inbox") / ORIGINAL).read_bytes() == DATA


def test_two_threads_racing_rebuild_once(peer: PeerSpool, ledger: Ledger) -> None:
    drop_blocks(peer, DATA, 3)
    barrier = threading.Barrier(2)
    results: list[Path | None] = []

    def run() -> None:
        reassembler = Reassembler(peer, ledger, decompress=False)  # separate instances
        barrier.wait()
        results.append(reassembler.try_complete(ORIGINAL))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results, key=lambda r: r is None) == [peer.dir("inbox") / ORIGINAL, None]
    assert_rebuilt_once(peer, ledger)


def _race_in_process(root: str, barrier, queue) -> None:  # type: ignore[no-untyped-def]
    peer = PeerSpool(Path(root), "PEER")
    ledger = Ledger(Path(root) / "ledger.sqlite3")
    barrier.wait()
    result = Reassembler(peer, ledger, decompress=False).try_complete(ORIGINAL)
    ledger.close()
    queue.put(str(result) if result else None)


def test_two_processes_racing_rebuild_once(tmp_path: Path, peer: PeerSpool, ledger: Ledger) -> None:
    drop_blocks(peer, DATA, 3)
    ctx = multiprocessing.get_context("fork")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=_race_in_process, args=(str(tmp_path), barrier, queue)) for _ in range(2)
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert sorted(results, key=lambda r: r is None) == [str(peer.dir("inbox") / ORIGINAL), None]
    assert_rebuilt_once(peer, ledger)


def test_crash_before_moving_blocks_is_finished_once_by_sweep(
    peer: PeerSpool, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    drop_blocks(peer, DATA, 3)
    reassembler = Reassembler(peer, ledger, decompress=True)

    def crash(self: Reassembler, paths: list[Path]) -> None:
        raise RuntimeError("power cut")

    monkeypatch.setattr(Reassembler, "_archive_blocks", crash)
    with pytest.raises(RuntimeError):
        reassembler.try_complete(ORIGINAL)
    assert (peer.dir("inbox") / ORIGINAL).read_bytes() == DATA
    assert len(names(peer, "partial")) == 3
    monkeypatch.undo()
    (peer.dir("inbox") / "P1_20031120.1").unlink()  # and the copy never got written

    stored = Reassembler(peer, ledger, decompress=True).sweep()
    assert stored == [peer.dir("inbox") / ORIGINAL]
    assert (peer.dir("inbox") / "P1_20031120.1").read_bytes() == PLAIN
    (peer.dir("inbox") / "P1_20031120.1").unlink()
    assert_rebuilt_once(peer, ledger)
    assert Reassembler(peer, ledger, decompress=True).sweep() == []


def test_crash_between_block_moves_is_finished_by_sweep(peer: PeerSpool, ledger: Ledger) -> None:
    drop_blocks(peer, DATA, 3)
    (peer.dir("inbox") / ORIGINAL).write_bytes(DATA)  # stored, not yet recorded
    os.rename(peer.dir("partial") / block_names(3)[0], peer.dir("archive") / block_names(3)[0])
    stored = Reassembler(peer, ledger, decompress=False).sweep()
    assert stored == [peer.dir("inbox") / ORIGINAL]
    assert_rebuilt_once(peer, ledger)


def test_new_copy_of_an_archived_set_waits_for_its_siblings(
    peer: PeerSpool, ledger: Ledger
) -> None:
    drop_blocks(peer, DATA, 3)
    Reassembler(peer, ledger, decompress=False).sweep()
    newer = bz2.compress(PLAIN[:100_000])
    (peer.dir("partial") / block_names(3)[0]).write_bytes(split(newer, 3)[0])
    assert Reassembler(peer, ledger, decompress=False).sweep() == []
    assert names(peer, "partial") == [block_names(3)[0]]


@pytest.mark.parametrize(
    "payload",
    [
        DATA[: len(DATA) // 2] + bytes([DATA[len(DATA) // 2] ^ 0xFF]) + DATA[len(DATA) // 2 + 1 :],
        DATA + bz2.compress(b"second stream"),
        DATA + b"trailing garbage",
        DATA[:-100],
    ],
    ids=["corrupt", "two-streams", "garbage", "truncated"],
)
def test_bad_set_goes_to_failed_with_reasons(
    peer: PeerSpool, ledger: Ledger, payload: bytes
) -> None:
    drop_blocks(peer, payload, 3)
    assert Reassembler(peer, ledger, decompress=False).try_complete(ORIGINAL) is None
    expected = sorted([*block_names(3), *(f"{n}.reason" for n in block_names(3))])
    assert names(peer, "failed") == expected
    reason = (peer.dir("failed") / f"{block_names(3)[0]}.reason").read_text()
    assert reason.count("\n") == 1 and ORIGINAL in reason and "at 20" in reason
    assert names(peer, "inbox") == [] and names(peer, "partial") == []
    assert ledger.received("PEER", ORIGINAL) is None


def test_failed_set_forgets_its_outside_window_marks(peer: PeerSpool, ledger: Ledger) -> None:
    store = InboundStore(peer, ledger, decompress=False)
    for name, piece in zip(block_names(2), split(DATA + b"garbage", 2), strict=True):
        store_block(store, name, piece, manual=True)
    assert Reassembler(peer, ledger, decompress=False).sweep() == []
    assert len(names(peer, "failed")) == 4
    assert ledger.marked_outside_window("PEER", block_names(2)) == []


def test_expired_set_forgets_its_outside_window_marks(peer: PeerSpool, ledger: Ledger) -> None:
    store = InboundStore(peer, ledger, decompress=False)
    store_block(store, block_names(3)[0], split(DATA, 3)[0], manual=True)
    later = datetime.now(UTC) + timedelta(days=60)
    reassembler = Reassembler(peer, ledger, decompress=False)
    assert reassembler.expire_incomplete(now=later, max_age=timedelta(days=30)) == [ORIGINAL]
    assert ledger.marked_outside_window("PEER", block_names(3)) == []
