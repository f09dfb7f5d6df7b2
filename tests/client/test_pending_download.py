"""PendingDownload: a small file touches the disk only in its commit hop."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from concentrador.client.download import PendingDownload
from concentrador.spool.inbound.store import InboundStore, InboundWriter
from concentrador.spool.layout import PeerSpool, SpoolState
from concentrador.spool.ledger import Ledger

NAME = "F1_0086_20240101.0.bz2"


@pytest.fixture
def store(tmp_path: Path) -> InboundStore:
    peer = PeerSpool(tmp_path, "PEER").ensure()
    return InboundStore(peer, Ledger(tmp_path / "ledger.sqlite3"), decompress=False)


def temp_files(store: InboundStore) -> list[Path]:
    return list(store.spool.work_dir.iterdir())


def test_a_held_attachment_is_written_and_committed_by_finish(store: InboundStore) -> None:
    download = PendingDownload(lambda: store.open(NAME, manual=False))
    download.hold(b"BZh9 small file")
    assert temp_files(store) == []  # nothing on disk before the commit hop
    assert download.md5 == hashlib.md5(b"BZh9 small file").hexdigest()
    stored = store.commit(download.finish(), NAME)
    assert stored == store.spool.dir(SpoolState.INBOX) / NAME
    assert stored.read_bytes() == b"BZh9 small file"
    entry = store.ledger.received("PEER", NAME)
    assert entry is not None and entry.md5 == download.md5


def test_batches_open_the_temp_file_and_cannot_be_followed_by_a_hold(
    store: InboundStore,
) -> None:
    download = PendingDownload(lambda: store.open(NAME, manual=False))
    download.write(b"first batch ")
    assert len(temp_files(store)) == 1
    with pytest.raises(ValueError, match="held"):
        download.hold(b"tail")
    download.write(b"second batch")
    assert download.md5 == hashlib.md5(b"first batch second batch").hexdigest()
    download.abort()
    assert temp_files(store) == []


def test_an_aborted_held_download_leaves_nothing(store: InboundStore) -> None:
    opened: list[str] = []

    def open_writer() -> InboundWriter:
        opened.append(NAME)
        return store.open(NAME, manual=False)

    download = PendingDownload(open_writer)
    download.hold(b"never stored")
    download.abort()
    assert opened == [] and temp_files(store) == []
