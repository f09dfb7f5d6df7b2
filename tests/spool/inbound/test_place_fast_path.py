"""The common case of storing a whole file (a name in neither inbox/ nor manual/)
takes one stat and one rename; every other case still takes the full path."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from concentrador.spool import durable
from concentrador.spool.durable import DurableWriter
from concentrador.spool.inbound.store import InboundStore
from concentrador.spool.layout import PeerSpool, SpoolState
from concentrador.spool.ledger import Ledger
from tests.spool.conftest import receive

NAME = "P1_0086_00001.0.bz2"


def test_a_new_name_lands_and_is_recorded(peer: PeerSpool, ledger: Ledger) -> None:
    store = InboundStore(peer, ledger, decompress=False)
    path = receive(store, NAME, b"new")
    assert path == peer.dir(SpoolState.INBOX) / NAME and path.read_bytes() == b"new"
    entry = ledger.received("PEER", NAME)
    assert entry is not None and entry.md5 == hashlib.md5(b"new").hexdigest()


def test_an_identical_file_in_manual_is_still_found(peer: PeerSpool, ledger: Ledger) -> None:
    store = InboundStore(peer, ledger, decompress=False)
    (peer.dir(SpoolState.MANUAL) / NAME).write_bytes(b"same")
    path = receive(store, NAME, b"same")
    assert path == peer.dir(SpoolState.MANUAL) / NAME
    assert not (peer.dir(SpoolState.INBOX) / NAME).exists()


def test_an_identical_file_already_in_inbox_is_kept(peer: PeerSpool, ledger: Ledger) -> None:
    store = InboundStore(peer, ledger, decompress=False)
    target = peer.dir(SpoolState.INBOX) / NAME
    target.write_bytes(b"same")
    before = target.stat().st_ino
    assert receive(store, NAME, b"same") == target
    assert target.stat().st_ino == before  # not replaced
    assert list(peer.dir(SpoolState.ARCHIVE).iterdir()) == []


def test_a_different_file_in_inbox_is_archived_not_lost(peer: PeerSpool, ledger: Ledger) -> None:
    store = InboundStore(peer, ledger, decompress=False)
    (peer.dir(SpoolState.INBOX) / NAME).write_bytes(b"old")
    path = receive(store, NAME, b"new")
    assert path.read_bytes() == b"new"
    archived = list(peer.dir(SpoolState.ARCHIVE).iterdir())
    assert [p.read_bytes() for p in archived] == [b"old"]


def test_a_group_takes_the_full_path_for_a_name_already_there(
    peer: PeerSpool, ledger: Ledger
) -> None:
    store = InboundStore(peer, ledger, decompress=False)
    (peer.dir(SpoolState.INBOX) / "b.bz2").write_bytes(b"old b")
    writers = []
    for name, data in (("a.bz2", b"a"), ("b.bz2", b"new b")):
        writer = store.open(name, manual=False)
        writer.write(data)
        writers.append(writer)
    paths = store.commit_group(writers)
    assert [p.read_bytes() for p in paths] == [b"a", b"new b"]
    assert [p.read_bytes() for p in peer.dir(SpoolState.ARCHIVE).iterdir()] == [b"old b"]
    assert {e.name for e in ledger.unconfirmed("PEER")} == {"a.bz2", "b.bz2"}


def test_temp_files_are_private_unique_and_excluded(tmp_path: Path) -> None:
    writers = [DurableWriter(tmp_path) for _ in range(50)]
    names = {w.temp_path.name for w in writers}
    assert len(names) == 50
    assert all(n.startswith(".w-") and n.endswith(".part") for n in names)
    assert all(stat.S_IMODE(w.temp_path.stat().st_mode) == 0o600 for w in writers)
    for writer in writers:
        writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_a_temp_name_in_use_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    taken = DurableWriter(tmp_path)
    taken.write(b"keep me")
    # The counter runs back to the name just taken: O_EXCL skips it.
    number = int(taken.temp_path.name.rsplit("-", 1)[1].removesuffix(".part"), 16)
    monkeypatch.setattr(durable, "_temp_count", iter(range(number, number + 5)))
    other = DurableWriter(tmp_path)
    assert other.temp_path != taken.temp_path
    other.abort()
    taken.commit(tmp_path / "kept")
    assert (tmp_path / "kept").read_bytes() == b"keep me"


def test_write_hashed_hashes_once_and_agrees(tmp_path: Path) -> None:
    data = os.urandom(5000)
    md5 = hashlib.md5(data)
    with DurableWriter(tmp_path) as writer:
        writer.write_hashed(data, md5)
        writer.write(b"tail")
        assert writer.md5 == hashlib.md5(data + b"tail").hexdigest()
        assert writer.size == len(data) + 4
        path = writer.commit(tmp_path / "f")
    assert path.read_bytes() == data + b"tail"
    with DurableWriter(tmp_path) as writer:
        writer.write(b"x")
        with pytest.raises(ValueError):
            writer.write_hashed(b"y", hashlib.md5(b"y"))
