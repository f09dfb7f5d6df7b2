"""Batched folder syncs: ``durable_move``/``move_aside`` with ``sync=False``
leave the folder fsyncs to one ``sync_folders`` call, which syncs each
distinct folder exactly once."""

from __future__ import annotations

import errno
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from concentrador.spool.aside import move_aside
from concentrador.spool.durable import StorageError, durable_move, sync_folders
from tests.spool.syscalls import record_syscalls


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    source, target = tmp_path / "published", tmp_path / "delivered"
    source.mkdir()
    target.mkdir()
    return source, target


def test_durable_move_without_sync_renames_and_syncs_nothing(
    folders: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target = folders
    (source / "F").write_bytes(b"1")
    calls = record_syscalls(monkeypatch)
    moved = durable_move(source / "F", target, sync=False)
    assert moved == target / "F" and moved.read_bytes() == b"1"
    assert calls == [("rename", str(target / "F"))]


def test_durable_move_without_sync_still_never_overwrites(folders: tuple[Path, Path]) -> None:
    source, target = folders
    (source / "F").write_bytes(b"new")
    (target / "F").write_bytes(b"old")
    with pytest.raises(FileExistsError):
        durable_move(source / "F", target, sync=False)
    assert (target / "F").read_bytes() == b"old" and (source / "F").read_bytes() == b"new"


@pytest.mark.parametrize("clash", [False, True])
def test_move_aside_without_sync_syncs_nothing(
    folders: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, clash: bool
) -> None:
    source, target = folders
    (source / "F").write_bytes(b"mine")
    if clash:
        (target / "F").write_bytes(b"theirs")
    calls = record_syscalls(monkeypatch)
    now = datetime(2024, 1, 31, 23, 59, 59, 123456, tzinfo=UTC)
    moved = move_aside(source / "F", target, now=now, sync=False)
    expected = target / ("F.20240131T235959.123456Z" if clash else "F")
    assert moved == expected and moved.read_bytes() == b"mine"
    assert calls.fsyncs() == []
    assert calls[-1] == ("rename", str(expected))


def test_move_aside_with_sync_still_syncs_both_folders(
    folders: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The default is unchanged by the batching option.
    source, target = folders
    (source / "F").write_bytes(b"x")
    calls = record_syscalls(monkeypatch)
    move_aside(source / "F", target)
    assert calls == [("rename", str(target / "F")), ("fsync", str(target)), ("fsync", str(source))]


def test_sync_folders_syncs_each_distinct_folder_once_in_order(
    folders: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target = folders
    other = tmp_path / "archive"
    other.mkdir()
    calls = record_syscalls(monkeypatch)
    # The same folder named again, rebuilt from its text or with a "." part, is one folder.
    sync_folders(target, source, Path(str(target)), other, source, target / ".")
    assert calls.fsyncs() == [str(target), str(source), str(other)]


def test_a_batch_of_moves_then_one_sync_per_folder(
    folders: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target = folders
    names = [f"P.bz2.{k}_3" for k in (1, 2, 3)]
    for name in names:
        (source / name).write_bytes(name.encode())
    calls = record_syscalls(monkeypatch)
    for name in names:
        move_aside(source / name, target, sync=False)
    sync_folders(target, source)
    assert calls == [
        *[("rename", str(target / name)) for name in names],
        ("fsync", str(target)),
        ("fsync", str(source)),
    ]


def test_sync_folders_failure_is_a_storage_error_naming_the_folder(
    folders: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target = folders

    def broken(fd: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(StorageError) as info:
        sync_folders(target, source)
    assert info.value.errno == errno.EIO
    assert str(target) in str(info.value)
