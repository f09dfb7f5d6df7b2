import errno
import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from concentrador.protocol.names import MAX_NAME_BYTES, is_valid_peer_filename
from concentrador.spool import durable
from concentrador.spool.aside import move_aside, move_with_reason
from concentrador.spool.durable import (
    DurableWriter,
    StorageError,
    durable_move,
    fsync_dir,
    write_file_durably,
)
from concentrador.spool.layout import PeerSpool, SpoolState


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    work, dest = tmp_path / ".work", tmp_path / "dest"
    work.mkdir()
    dest.mkdir()
    return work, dest


def _record_syscalls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Log fsync (by the path behind the fd) and rename calls, in order."""
    calls: list[tuple[str, str]] = []
    real_fsync, real_replace, real_rename = os.fsync, os.replace, durable.rename_noreplace

    def fsync(fd: int) -> None:
        calls.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def rename(src: Path, dst: Path) -> None:
        calls.append(("rename", str(dst)))
        real_rename(src, dst)

    def replace(src: Path, dst: Path) -> None:
        calls.append(("rename", str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(durable, "rename_noreplace", rename)
    return calls


@pytest.mark.parametrize("replace", [False, True])
def test_commit_fsyncs_file_then_renames_then_fsyncs_dir(
    dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, replace: bool
) -> None:
    work, dest = dirs
    calls = _record_syscalls(monkeypatch)
    with DurableWriter(work) as writer:
        writer.write(b"hello ")
        writer.write(memoryview(b"world"))
        temp = writer.temp_path
        final = writer.commit(dest / "F.bz2", replace=replace)
    assert calls == [
        ("fsync", str(temp)),
        ("rename", str(dest / "F.bz2")),
        ("fsync", str(dest)),
    ]
    assert final.read_bytes() == b"hello world"
    assert list(work.iterdir()) == []


def test_md5_and_size_follow_the_writes(dirs: tuple[Path, Path]) -> None:
    work, dest = dirs
    chunks = [os.urandom(n) for n in (0, 1, 4096, 100_000)]
    with DurableWriter(work) as writer:
        for chunk in chunks:
            writer.write(chunk)
        assert writer.md5 == hashlib.md5(b"".join(chunks)).hexdigest()
        assert writer.size == sum(map(len, chunks))
        writer.commit(dest / "x")
    assert (dest / "x").read_bytes() == b"".join(chunks)


def test_hash_false_refuses_md5(dirs: tuple[Path, Path]) -> None:
    with DurableWriter(dirs[0], hash=False) as writer:
        writer.write(b"abc")
        assert writer.size == 3
        with pytest.raises(ValueError):
            _ = writer.md5


def test_enospc_on_write_leaves_no_temp_and_no_target(
    dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    work, dest = dirs
    writer = DurableWriter(work)
    writer.write(b"first part")

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(StorageError) as info:
        writer.write(b"more")
    assert info.value.errno == errno.ENOSPC
    assert str(writer.temp_path) in str(info.value)
    assert "ENOSPC" in str(info.value)
    monkeypatch.undo()
    assert list(work.iterdir()) == []
    with pytest.raises(ValueError):
        writer.commit(dest / "F")
    assert list(dest.iterdir()) == []


def test_eio_on_fsync_leaves_nothing(
    dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    work, dest = dirs

    def broken(fd: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    with DurableWriter(work) as writer:
        writer.write(b"data")
        monkeypatch.setattr(os, "fsync", broken)
        with pytest.raises(StorageError) as info:
            writer.commit(dest / "F")
    assert info.value.errno == errno.EIO
    assert list(work.iterdir()) == []
    assert list(dest.iterdir()) == []


def test_exception_inside_context_aborts(dirs: tuple[Path, Path]) -> None:
    work, _ = dirs
    with pytest.raises(RuntimeError), DurableWriter(work) as writer:
        writer.write(b"x")
        raise RuntimeError("boom")
    assert not writer.temp_path.exists()
    writer.abort()  # idempotent
    assert list(work.iterdir()) == []


def test_commit_never_overwrites_unless_asked(dirs: tuple[Path, Path]) -> None:
    work, dest = dirs
    (dest / "F").write_bytes(b"old")
    writer = DurableWriter(work)
    writer.write(b"new")
    with pytest.raises(FileExistsError):
        writer.commit(dest / "F")
    assert (dest / "F").read_bytes() == b"old"
    # The temp survives so the caller can choose another name or replace.
    assert writer.temp_path.exists()
    writer.commit(dest / "F", replace=True)
    assert (dest / "F").read_bytes() == b"new"
    assert list(work.iterdir()) == []


def test_durable_move_fsyncs_both_dirs_and_refuses_overwrite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src_dir, dst_dir = tmp_path / "a", tmp_path / "b"
    src_dir.mkdir()
    dst_dir.mkdir()
    (src_dir / "F").write_bytes(b"1")
    calls = _record_syscalls(monkeypatch)
    moved = durable_move(src_dir / "F", dst_dir)
    assert moved == dst_dir / "F" and moved.read_bytes() == b"1"
    assert calls == [("rename", str(moved)), ("fsync", str(dst_dir)), ("fsync", str(src_dir))]

    (src_dir / "F").write_bytes(b"2")
    with pytest.raises(FileExistsError):
        durable_move(src_dir / "F", dst_dir)
    assert (src_dir / "F").read_bytes() == b"2"
    assert (dst_dir / "F").read_bytes() == b"1"
    renamed = durable_move(src_dir / "F", dst_dir, "F.1")
    assert renamed.read_bytes() == b"2" and not (src_dir / "F").exists()


def test_noreplace_fallback_without_renameat2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(durable, "_renameat2", None)
    (tmp_path / "src").write_bytes(b"s")
    (tmp_path / "taken").write_bytes(b"t")
    with pytest.raises(FileExistsError):
        durable.rename_noreplace(tmp_path / "src", tmp_path / "taken")
    durable.rename_noreplace(tmp_path / "src", tmp_path / "free")
    assert (tmp_path / "free").read_bytes() == b"s"
    assert not (tmp_path / "src").exists()


def test_move_storage_error_names_the_path(tmp_path: Path) -> None:
    (tmp_path / "F").write_bytes(b"1")
    with pytest.raises(StorageError) as info:
        durable_move(tmp_path / "F", tmp_path / "missing-dir" / "sub")
    assert "F" in str(info.value)
    assert (tmp_path / "F").exists()


def test_fsync_dir_and_write_file_durably(dirs: tuple[Path, Path]) -> None:
    work, dest = dirs
    fsync_dir(dest)
    path = write_file_durably(work, dest / "F.reason", b"why\n")
    assert path.read_bytes() == b"why\n"
    assert list(work.iterdir()) == []


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


def test_escalating_a_long_block_name_keeps_both_files_within_name_limits(
    peer: PeerSpool,
) -> None:
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
    failed = peer.dir(SpoolState.FAILED)
    (failed / "X.bz2.reason").write_text("earlier escalation\n")
    src = peer.dir(SpoolState.SENDING) / "X.bz2"
    src.write_bytes(b"x")
    moved = move_with_reason(src, failed, peer.work_dir, "refused")
    assert (failed / "X.bz2.reason").read_text() == "earlier escalation\n"
    assert (failed / f"{moved.name}.reason").read_text().startswith("refused")
