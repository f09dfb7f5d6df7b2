"""Recording the fsyncs and renames of ``spool.durable``, to test when folders are synced."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from concentrador.spool import durable


class SyscallLog(list[tuple[str, str]]):
    """fsyncs (by the path behind the descriptor) and renames, in call order."""

    def note(self, *event: str) -> None:
        self.append((event[0], event[1]))

    def fsyncs(self) -> list[str]:
        return [path for kind, path in self if kind == "fsync"]


def record_syscalls(monkeypatch: pytest.MonkeyPatch) -> SyscallLog:
    calls = SyscallLog()
    real_fsync, real_rename = os.fsync, durable.rename_noreplace

    def fsync(fd: int) -> None:
        calls.note("fsync", os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    def rename(src: Path, dst: Path) -> None:
        calls.note("rename", str(dst))
        real_rename(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(durable, "rename_noreplace", rename)
    return calls
