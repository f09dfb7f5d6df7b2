"""Regression tests for the hostile-peer / data-loss review of the spool."""

from __future__ import annotations

import bz2
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from concentrador.protocol.names import MAX_NAME_BYTES, is_valid_peer_filename
from concentrador.spool.durable import move_aside
from concentrador.spool.inbound.store import InboundStore
from concentrador.spool.layout import PeerSpool, SpoolState
from concentrador.spool.ledger import Ledger

# Valid peer names (<= 255 bytes) whose "NAME.txt" copy would be 256+ bytes.
LONG_NAME = "F1_" + "x" * 250
LONG_UTF8_NAME = "F1_" + "ñ" * 126  # 255 bytes, 129 characters


@pytest.fixture
def peer(tmp_path: Path) -> PeerSpool:
    return PeerSpool(tmp_path, "PEER").ensure()


@pytest.fixture
def ledger(tmp_path: Path):
    led = Ledger(tmp_path / "ledger.sqlite3")
    yield led
    led.close()


def receive(store: InboundStore, name: str, data: bytes) -> Path:
    with store.open(name, manual=False) as writer:
        writer.write(data)
        return store.commit(writer, name)


@pytest.mark.parametrize("name", [LONG_NAME, LONG_UTF8_NAME])
def test_long_name_is_stored_and_recorded_without_a_copy(
    peer: PeerSpool, ledger: Ledger, name: str
) -> None:
    """Before the fix the copy's ENAMETOOLONG left the file unrecorded and
    every retry of the peer was answered "could not store"."""
    assert is_valid_peer_filename(name)
    store = InboundStore(peer, ledger, decompress=True)
    data = bz2.compress(b"1;2;3\n")
    first = receive(store, name, data)
    again = receive(store, name, data)  # the peer's retry: idempotent, no error
    assert first == again == peer.dir(SpoolState.INBOX) / name
    assert ledger.received("PEER", name) is not None
    assert os.listdir(peer.dir(SpoolState.INBOX)) == [name]


@pytest.mark.parametrize("name", [LONG_NAME, LONG_UTF8_NAME])
def test_long_name_can_be_replaced_and_the_old_file_is_archived(
    peer: PeerSpool, ledger: Ledger, name: str
) -> None:
    """Before the fix the stamped archive name was too long: a different file
    under a long name could never be stored (code 2 forever)."""
    store = InboundStore(peer, ledger, decompress=False)
    old, new = bz2.compress(b"old\n"), bz2.compress(b"new\n")
    receive(store, name, old)
    receive(store, name, new)
    assert (peer.dir(SpoolState.INBOX) / name).read_bytes() == new
    archived = list(peer.dir(SpoolState.ARCHIVE).iterdir())
    assert [p.read_bytes() for p in archived] == [old]
    assert len(os.fsencode(archived[0].name)) <= MAX_NAME_BYTES


LONG_NAMES = st.builds(
    lambda length, tail: "F" * length + tail,
    st.integers(min_value=1, max_value=252),
    st.text(
        st.characters(codec="utf-8", exclude_categories=("Cc", "Cf", "Cs", "Zl", "Zp", "Zs")),
        max_size=3,
    ),
).filter(is_valid_peer_filename)


@given(name=LONG_NAMES)
def test_move_aside_stamped_keeps_every_valid_name_movable(name: str, tmp_path_factory) -> None:
    base = tmp_path_factory.mktemp("aside")
    source_dir, archive = base / "src", base / "archive"
    source_dir.mkdir()
    archive.mkdir()
    source = source_dir / name
    source.write_bytes(b"kept")
    now = datetime(2024, 1, 31, 23, 59, 59, 123456, tzinfo=UTC)
    first = move_aside(source, archive, stamp=True, now=now)
    source.write_bytes(b"kept too")
    second = move_aside(source, archive, stamp=True, now=now)  # same stamp: counter
    assert first != second
    assert sorted(p.read_bytes() for p in archive.iterdir()) == [b"kept", b"kept too"]
    for path in (first, second):
        assert len(os.fsencode(path.name)) <= MAX_NAME_BYTES
        assert path.name.startswith(name[:10])
        path.name.encode("utf-8")  # a UTF-8 name stays UTF-8 (cut between characters)


@pytest.fixture
def small_budget(monkeypatch: pytest.MonkeyPatch) -> int:
    """A 1 MiB floor instead of 256 MiB, so a bomb is caught in milliseconds."""
    from concentrador.protocol import bzip2 as bz2stream

    monkeypatch.setattr(bz2stream, "MIN_DECOMPRESSION_BUDGET", 1 << 20)
    return 1 << 20


def bomb(size: int = 64 << 20) -> bytes:
    return bz2.compress(b"\0" * size)  # a few hundred bytes


def test_block_set_that_is_a_decompression_bomb_fails_instead_of_tying_up_the_peer(
    peer: PeerSpool, ledger: Ledger, small_budget: int
) -> None:
    from concentrador.spool.inbound.reassembly import Reassembler

    data = bomb()
    cut = len(data) // 2
    partial = peer.dir(SpoolState.PARTIAL)
    (partial / "F1_X.bz2.1_2").write_bytes(data[:cut])
    (partial / "F1_X.bz2.2_2").write_bytes(data[cut:])
    assert Reassembler(peer, ledger, decompress=False).try_complete("F1_X.bz2") is None
    assert os.listdir(peer.dir(SpoolState.INBOX)) == []
    failed = sorted(os.listdir(peer.dir(SpoolState.FAILED)))
    assert failed == ["F1_X.bz2.1_2", "F1_X.bz2.1_2.reason", "F1_X.bz2.2_2", "F1_X.bz2.2_2.reason"]
    assert "decompression bomb" in (peer.dir(SpoolState.FAILED) / "F1_X.bz2.1_2.reason").read_text()


def test_honest_block_set_within_the_budget_still_rebuilds(
    peer: PeerSpool, ledger: Ledger, small_budget: int
) -> None:
    from concentrador.spool.inbound.reassembly import Reassembler

    data = bz2.compress(os.urandom(200_000))  # incompressible: ratio ~1
    cut = len(data) // 2
    partial = peer.dir(SpoolState.PARTIAL)
    (partial / "F1_Y.bz2.1_2").write_bytes(data[:cut])
    (partial / "F1_Y.bz2.2_2").write_bytes(data[cut:])
    stored = Reassembler(peer, ledger, decompress=False).try_complete("F1_Y.bz2")
    assert stored is not None and stored.read_bytes() == data


def test_decompressed_copy_of_a_bomb_is_skipped_but_the_file_is_kept(
    peer: PeerSpool, ledger: Ledger, small_budget: int
) -> None:
    store = InboundStore(peer, ledger, decompress=True)
    data = bomb()
    path = receive(store, "F1_Z.bz2", data)
    assert path.read_bytes() == data
    assert os.listdir(peer.dir(SpoolState.INBOX)) == ["F1_Z.bz2"]  # no huge F1_Z copy


def test_escalating_a_long_block_name_keeps_both_files_within_name_limits(
    peer: PeerSpool,
) -> None:
    from concentrador.spool.durable import move_with_reason

    name = "F1_" + "b" * 246 + ".1_2"  # 253 bytes: valid, but NAME.reason is not
    assert is_valid_peer_filename(name)
    src = peer.dir(SpoolState.PARTIAL) / name
    src.write_bytes(b"block")
    failed = peer.dir(SpoolState.FAILED)
    moved = move_with_reason(src, failed, peer.work_dir, "does not rebuild")
    assert moved.read_bytes() == b"block" and not src.exists()
    reason = failed / f"{moved.name}.reason"
    assert len(os.fsencode(reason.name)) <= MAX_NAME_BYTES
    assert name in reason.read_text()  # the operator still learns the real name


def test_escalation_never_overwrites_an_earlier_reason(peer: PeerSpool) -> None:
    from concentrador.spool.durable import move_with_reason

    failed = peer.dir(SpoolState.FAILED)
    (failed / "X.bz2.reason").write_text("earlier escalation\n")
    src = peer.dir(SpoolState.SENDING) / "X.bz2"
    src.write_bytes(b"x")
    moved = move_with_reason(src, failed, peer.work_dir, "refused")
    assert (failed / "X.bz2.reason").read_text() == "earlier escalation\n"
    assert (failed / f"{moved.name}.reason").read_text().startswith("refused")
