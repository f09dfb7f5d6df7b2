"""InboundStore.commit_group: several whole files, each fsynced and renamed,
then one fsync per destination folder and one ledger transaction; the
identical/different-file rules of store_complete kept; a failure stops the
group and leaves no temp file, what was renamed before it durable and recorded."""

from __future__ import annotations

import bz2
import errno
import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from concentrador.spool.durable import StorageError
from concentrador.spool.inbound.store import InboundStore, InboundWriter
from concentrador.spool.layout import PeerSpool, SpoolState
from concentrador.spool.ledger import EventKind, Ledger, received
from concentrador.spool.ledger.backend import Connection
from tests.spool.conftest import receive
from tests.spool.syscalls import SyscallLog, record_syscalls

NAMES = [f"F1_0086_20240101_20240102.{i}.bz2" for i in range(4)]


def payload(seed: int) -> bytes:
    return bz2.compress(f"{seed};2024/01/01 01;0;123\n".encode() * 500)


def writers(store: InboundStore, names: list[str], *, seed: int = 0) -> list[InboundWriter]:
    opened = []
    for index, name in enumerate(names):
        writer = store.open(name, manual=False)
        writer.write(payload(seed + index))
        opened.append(writer)
    return opened


def leftovers(peer: PeerSpool) -> list[Path]:
    return [p for p in peer.work_dir.iterdir() if p != peer.lock_path]


def count_transactions(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """The ``durable`` flag of every ledger transaction from now on."""
    seen: list[bool] = []
    real: Callable[..., AbstractContextManager[Connection]] = ledger._db.transaction

    @contextmanager
    def transaction(*, durable: bool = True) -> Iterator[Connection]:
        seen.append(durable)
        with real(durable=durable) as conn:
            yield conn

    monkeypatch.setattr(ledger._db, "transaction", transaction)
    return seen


def file_fsyncs(calls: SyscallLog, peer: PeerSpool) -> list[str]:
    return [p for p in calls.fsyncs() if Path(p).parent == peer.work_dir]


def test_a_group_is_one_folder_fsync_and_one_ledger_transaction(
    peer: PeerSpool, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = InboundStore(peer, ledger, decompress=False)
    group = writers(store, NAMES)
    calls = record_syscalls(monkeypatch)
    transactions = count_transactions(ledger, monkeypatch)

    paths = store.commit_group(group)

    inbox = peer.dir(SpoolState.INBOX)
    assert paths == [inbox / name for name in NAMES]
    # Each file fsynced (in .work/, before its rename), the inbox once, after all renames.
    assert len(file_fsyncs(calls, peer)) == len(NAMES)
    assert [p for p in calls.fsyncs() if Path(p) == inbox] == [str(inbox)]
    last_rename = max(i for i, (kind, _) in enumerate(calls) if kind == "rename")
    assert calls.index(("fsync", str(inbox))) > last_rename
    assert transactions == [True]
    for index, name in enumerate(NAMES):
        assert (inbox / name).read_bytes() == payload(index)
        entry = ledger.received("PEER", name)
        assert entry is not None and entry.md5 == hashlib.md5(payload(index)).hexdigest()
        assert entry.confirmed_at is None and entry.stored_path == str(inbox / name)
        kinds = [e.kind for e in ledger.events_for("PEER", name)]
        assert kinds == [EventKind.STORED]
    assert leftovers(peer) == []


def test_one_file_alone_costs_what_commit_costs(
    peer: PeerSpool, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = InboundStore(peer, ledger, decompress=False)
    (single,) = writers(store, NAMES[:1])
    calls = record_syscalls(monkeypatch)
    transactions = count_transactions(ledger, monkeypatch)
    store.commit_group([single])
    inbox = peer.dir(SpoolState.INBOX)
    assert len(file_fsyncs(calls, peer)) == 1
    assert [p for p in calls.fsyncs() if Path(p) == inbox] == [str(inbox)]
    assert transactions == [True]


def test_identical_and_different_files_follow_store_complete(
    peer: PeerSpool, ledger: Ledger
) -> None:
    store = InboundStore(peer, ledger, decompress=True)
    receive(store, NAMES[0], payload(0))  # the same bytes: a duplicate
    receive(store, NAMES[1], payload(99))  # other bytes: archived, then replaced
    store.commit_group(writers(store, NAMES[:3]))

    inbox = peer.dir(SpoolState.INBOX)
    for index, name in enumerate(NAMES[:3]):
        assert (inbox / name).read_bytes() == payload(index)
        assert (inbox / name.removesuffix(".bz2")).read_bytes() == bz2.decompress(payload(index))
    assert [e.kind for e in ledger.events_for("PEER", NAMES[0])][-1] == EventKind.DUPLICATE
    archived = [p.name for p in peer.dir(SpoolState.ARCHIVE).iterdir()]
    assert any(n.startswith(NAMES[1]) for n in archived)
    assert any(n.startswith(NAMES[1].removesuffix(".bz2")) for n in archived)
    assert [e.kind for e in ledger.events_for("PEER", NAMES[1])][-1] == EventKind.STORED
    assert leftovers(peer) == []


def test_disk_full_on_one_file_stops_the_group(
    peer: PeerSpool, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = InboundStore(peer, ledger, decompress=False)
    group = writers(store, NAMES)
    doomed = group[2].temp_path
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if Path(os.readlink(f"/proc/self/fd/{fd}")) == doomed:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(StorageError) as failure:
        store.commit_group(group)
    assert failure.value.errno == errno.ENOSPC

    # Before the failure: durable and recorded (the next cycle confirms them
    # without fetching them again); from it on: neither stored nor recorded.
    inbox = peer.dir(SpoolState.INBOX)
    for name in NAMES[:2]:
        assert (inbox / name).is_file() and ledger.received("PEER", name) is not None
    for name in NAMES[2:]:
        assert not (inbox / name).exists() and ledger.received("PEER", name) is None
    assert leftovers(peer) == []


def test_folder_fsync_failure_takes_back_the_new_names(
    peer: PeerSpool, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = InboundStore(peer, ledger, decompress=False)
    group = writers(store, NAMES[:3])
    inbox = peer.dir(SpoolState.INBOX)
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if Path(os.readlink(f"/proc/self/fd/{fd}")) == inbox:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(StorageError):
        store.commit_group(group)
    assert list(inbox.iterdir()) == []
    assert all(ledger.received("PEER", name) is None for name in NAMES[:3])
    assert leftovers(peer) == []


def test_blocks_are_refused(peer: PeerSpool, ledger: Ledger) -> None:
    store = InboundStore(peer, ledger, decompress=False)
    block = store.open("F1_0086_20240101_20240102.0.bz2.1_2", manual=False)
    with pytest.raises(ValueError):
        store.commit_group([block])
    block.abort()


def test_the_group_is_recorded_all_or_nothing(
    peer: PeerSpool, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = InboundStore(peer, ledger, decompress=False)
    real_upsert = received.upsert
    calls: list[str] = []

    def upsert(conn: Connection, peer_id: str, name: str, *args: Any, **kwargs: Any) -> None:
        calls.append(name)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "the ledger's disk is full")
        real_upsert(conn, peer_id, name, *args, **kwargs)

    monkeypatch.setattr(received, "upsert", upsert)
    with pytest.raises(OSError):
        store.commit_group(writers(store, NAMES[:3]))
    # One transaction: the first row went with the second's failure.
    assert calls == NAMES[:2]
    assert all(ledger.received("PEER", name) is None for name in NAMES[:3])
    assert leftovers(peer) == []
