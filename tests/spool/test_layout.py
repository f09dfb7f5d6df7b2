from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from concentrador.spool.layout import (
    InvalidPeerId,
    PeerSpool,
    Spool,
    SpoolState,
    is_temp_name,
    validate_peer_id,
)


def test_ensure_creates_every_state_folder_and_work(tmp_path: Path) -> None:
    peer = Spool(tmp_path).peer("REE").ensure()
    for state in SpoolState:
        assert (tmp_path / "REE" / state.value).is_dir()
    assert peer.work_dir == tmp_path / "REE" / ".work"
    assert peer.work_dir.is_dir()
    assert peer.dir("inbox") == peer.dir(SpoolState.INBOX) == tmp_path / "REE" / "inbox"


def test_ledger_path_and_peers_listing(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.ensure(["B", "A"])
    (tmp_path / ".hidden").mkdir()
    assert spool.ledger_path == tmp_path / "ledger.sqlite3"
    assert spool.peers() == ["A", "B"]


@pytest.mark.parametrize(
    "bad", ["", ".", "..", "../x", "a/b", "a\\b", ".hidden", "-rf", "a\x00", "x" * 65, "á"]
)
def test_bad_peer_ids_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(InvalidPeerId):
        PeerSpool(tmp_path, bad)


@given(st.text(max_size=80))
def test_accepted_peer_ids_stay_inside_the_root(peer_id: str) -> None:
    root = Path("/spool")
    try:
        validate_peer_id(peer_id)
    except InvalidPeerId:
        return
    base = PeerSpool(root, peer_id).base
    assert base.parent == root
    assert base.name == peer_id


def test_temp_names() -> None:
    assert is_temp_name(".F1_0086.bz2.XyZ12")
    assert is_temp_name("F1.bz2.part")
    assert is_temp_name("F1.txt~")
    assert not is_temp_name("F1_0086_20040612_20040617.9.bz2")
    assert not is_temp_name("P1_20031120.1.2_3")


def test_files_lists_only_real_files_sorted(tmp_path: Path) -> None:
    peer = PeerSpool(tmp_path, "P").ensure()
    for name in ["b", "a", ".tmp", "c.part"]:
        (peer.dir("published") / name).write_bytes(b"x")
    (peer.dir("published") / "sub").mkdir()
    assert [p.name for p in peer.files("published")] == ["a", "b"]


def test_clear_work_keeps_lock_file(tmp_path: Path) -> None:
    peer = PeerSpool(tmp_path, "P").ensure()
    peer.lock_path.write_bytes(b"")
    (peer.work_dir / ".w-1.part").write_bytes(b"junk")
    (peer.work_dir / "d").mkdir()
    assert peer.clear_work() == 2
    assert [p.name for p in peer.work_dir.iterdir()] == [peer.lock_path.name]
