"""Process-wide set-up of ``concentrador serve`` (daemon/process.py)."""

from __future__ import annotations

import platform

import pytest

from concentrador.daemon.process import limit_malloc_arenas


def test_malloc_arena_cap_defers_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt(M_ARENA_MAX) is glibc-only")
    assert limit_malloc_arenas() is True
