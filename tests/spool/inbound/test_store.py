import bz2
import hashlib
import os
from pathlib import Path

import pytest

from concentrador.protocol.names import InvalidFileName
from concentrador.spool.inbound.store import InboundStore, decompressed_name
from concentrador.spool.layout import PeerSpool, SpoolState
from concentrador.spool.ledger import Ledger
from tests.spool.conftest import receive

PLAIN = b"1;2024/01/01 01;0;123;0;0;0;0;0;0;0\n" * 2000
DATA = bz2.compress(PLAIN)


def leftovers(peer: PeerSpool) -> list[Path]:
    """Temp files left in .work/ (the lock file lives there on purpose)."""
    return [p for p in peer.work_dir.iterdir() if p != peer.lock_path]


def names(peer: PeerSpool, state: SpoolState) -> list[str]:
    return sorted(p.name for p in peer.dir(state).iterdir())


def test_whole_file_lands_in_inbox_and_ledger(peer: PeerSpool, ledger: Ledger) -> None:
    store = InboundStore(peer, ledger, decompress=False)
    path = receive(store, "F1_0086_20040612_20040617.9.bz2", DATA)
    assert path == peer.dir("inbox") / "F1_0086_20040612_20040617.9.bz2"
    assert path.read_bytes() == DATA
    entry = ledger.received("PEER", path.name)
    assert entry is not None
    assert (entry.md5, entry.size, entry.stored_path) == (
        hashlib.md5(DATA).hexdigest(),
        len(DATA),
        str(path),
    )
    assert [e.name for e in ledger.unconfirmed("PEER")] == [path.name]
    assert leftovers(peer) == []


def test_manual_goes_to_manual(peer: PeerSpool, ledger: Ledger) -> None:
    store = InboundStore(peer, ledger, decompress=False)
    path = receive(store, "F1.bz2", DATA, manual=True)
    assert path == peer.dir("manual") / "F1.bz2"
    assert names(peer, SpoolState.INBOX) == []


@pytest.mark.parametrize("bad", ["../x", "a/b", ".hidden", "a\x00b", "x" * 300, ""])
def test_unsafe_names_are_refused_before_writing(peer: PeerSpool, ledger: Ledger, bad: str) -> None:
    store = InboundStore(peer, ledger, decompress=False)
    with pytest.raises(InvalidFileName):
        store.open(bad, manual=False)
    assert leftovers(peer) == []


def test_identical_resend_is_a_noop(peer: PeerSpool, ledger: Ledger) -> None:
    store = InboundStore(peer, ledger, decompress=False)
    first = receive(store, "F1.bz2", DATA)
    ledger.mark_confirmed("PEER", "F1.bz2")
    inode = first.stat().st_ino
    again = receive(store, "F1.bz2", DATA)
    assert again == first and again.stat().st_ino == inode
    assert names(peer, SpoolState.ARCHIVE) == []
    assert leftovers(peer) == []
    assert ledger.unconfirmed("PEER") == []  # still confirmed: same file


def test_different_file_archives_the_old_one(peer: PeerSpool, ledger: Ledger) -> None:
    store = InboundStore(peer, ledger, decompress=False)
    receive(store, "F1.bz2", DATA)
    ledger.mark_confirmed("PEER", "F1.bz2")
    newer = bz2.compress(PLAIN + b"extra\n")
    path = receive(store, "F1.bz2", newer)
    assert path.read_bytes() == newer
    archived = names(peer, SpoolState.ARCHIVE)
    assert len(archived) == 1 and archived[0].startswith("F1.bz2.")
    assert (peer.dir("archive") / archived[0]).read_bytes() == DATA
    entry = ledger.received("PEER", "F1.bz2")
    assert entry is not None and entry.md5 == hashlib.md5(newer).hexdigest()
    assert entry.confirmed_at is None  # a new file needs a new confirmation


def test_decompressed_copy(peer: PeerSpool, ledger: Ledger) -> None:
    store = InboundStore(peer, ledger, decompress=True)
    receive(store, "F1.bz2", DATA)
    receive(store, "P1_20031120.1", DATA)
    assert (peer.dir("inbox") / "F1").read_bytes() == PLAIN
    assert (peer.dir("inbox") / "P1_20031120.1.txt").read_bytes() == PLAIN
    # Only the compressed files are received files.
    assert sorted(e.name for e in ledger.unconfirmed("PEER")) == ["F1.bz2", "P1_20031120.1"]


def test_replaced_file_replaces_its_copy_and_archives_the_old_copy(
    peer: PeerSpool, ledger: Ledger
) -> None:
    store = InboundStore(peer, ledger, decompress=True)
    receive(store, "F1.bz2", DATA)
    receive(store, "F1.bz2", bz2.compress(b"new\n"))
    assert (peer.dir("inbox") / "F1").read_bytes() == b"new\n"
    archived = names(peer, SpoolState.ARCHIVE)
    assert len(archived) == 2
    contents = {(peer.dir("archive") / n).read_bytes() for n in archived}
    assert contents == {DATA, PLAIN}


def test_multistream_copy_is_complete(peer: PeerSpool, ledger: Ledger) -> None:
    store = InboundStore(peer, ledger, decompress=True)
    receive(store, "M.bz2", bz2.compress(b"part one\n") + bz2.compress(b"part two\n"))
    assert (peer.dir("inbox") / "M").read_bytes() == b"part one\npart two\n"


@pytest.mark.parametrize(
    "payload",
    [os.urandom(5000), DATA[:-10], DATA + b"garbage", b""],
    ids=["random", "truncated", "trailing-garbage", "empty"],
)
def test_bad_bzip2_is_stored_but_not_decompressed(
    peer: PeerSpool, ledger: Ledger, payload: bytes
) -> None:
    store = InboundStore(peer, ledger, decompress=True)
    path = receive(store, "B.bz2", payload)
    assert path.read_bytes() == payload
    assert names(peer, SpoolState.INBOX) == ["B.bz2"]
    assert leftovers(peer) == []


def test_bomb_is_capped(peer: PeerSpool, ledger: Ledger) -> None:
    store = InboundStore(peer, ledger, decompress=True, max_decompressed=len(PLAIN) - 1)
    receive(store, "F1.bz2", DATA)
    assert names(peer, SpoolState.INBOX) == ["F1.bz2"]
    assert leftovers(peer) == []


def test_copy_never_clobbers_a_received_file(peer: PeerSpool, ledger: Ledger) -> None:
    store = InboundStore(peer, ledger, decompress=True)
    other = bz2.compress(b"other\n")
    receive(store, "X", other)  # a compressed file whose name has no .bz2
    receive(store, "X.bz2", DATA)  # its copy would be called X
    assert (peer.dir("inbox") / "X").read_bytes() == other
    assert names(peer, SpoolState.ARCHIVE) == []


def test_blocks_go_to_partial_and_identical_block_is_noop(peer: PeerSpool, ledger: Ledger) -> None:
    store = InboundStore(peer, ledger, decompress=False)
    path = receive(store, "F1.bz2.1_3", DATA[:100])
    assert path == peer.dir("partial") / "F1.bz2.1_3"
    assert receive(store, "F1.bz2.1_3", DATA[:100]) == path
    receive(store, "F1.bz2.1_3", DATA[:200])  # a different block 1: old one archived
    assert path.read_bytes() == DATA[:200]
    assert len(names(peer, SpoolState.ARCHIVE)) == 1
    assert ledger.received("PEER", "F1.bz2.1_3") is None  # blocks are not received files
    assert names(peer, SpoolState.INBOX) == []


def test_block_outside_the_window_is_marked_and_stays_in_partial(
    peer: PeerSpool, ledger: Ledger
) -> None:
    store = InboundStore(peer, ledger, decompress=False)
    path = receive(store, "F1.bz2.2_2", DATA[100:], manual=True)
    assert path == peer.dir("partial") / "F1.bz2.2_2"  # not manual/: it is only a block
    assert names(peer, SpoolState.MANUAL) == []
    assert ledger.marked_outside_window("PEER", ["F1.bz2.1_2", "F1.bz2.2_2"]) == ["F1.bz2.2_2"]
    receive(store, "F1.bz2.1_2", DATA[:100])  # completes the set, but only stores
    assert names(peer, SpoolState.PARTIAL) == ["F1.bz2.1_2", "F1.bz2.2_2"]
    assert ledger.marked_outside_window("PEER", ["F1.bz2.1_2"]) == []
    assert ledger.received("PEER", "F1.bz2") is None


def test_whole_file_outside_the_window_needs_no_mark(peer: PeerSpool, ledger: Ledger) -> None:
    store = InboundStore(peer, ledger, decompress=False)
    receive(store, "F1.bz2", DATA, manual=True)
    assert ledger.marked_outside_window("PEER", ["F1.bz2"]) == []


def test_commit_checks_the_name(peer: PeerSpool, ledger: Ledger) -> None:
    store = InboundStore(peer, ledger, decompress=False)
    with store.open("A.bz2", manual=False) as writer, pytest.raises(ValueError):
        store.commit(writer, "B.bz2")


def test_decompressed_name() -> None:
    assert decompressed_name("F1.bz2") == "F1"
    assert decompressed_name("F1.BZ2") == "F1"
    assert decompressed_name("F1.9") == "F1.9.txt"
