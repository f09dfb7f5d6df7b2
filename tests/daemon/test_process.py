"""Process-wide set-up of ``concentrador serve`` (daemon/process.py)."""

from __future__ import annotations

import asyncio.sslproto
import platform
import ssl

import pytest

from concentrador.daemon.process import (
    TLS_RECEIVE_BUFFER,
    limit_malloc_arenas,
    shrink_tls_receive_buffer,
)


def test_malloc_arena_cap_defers_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt(M_ARENA_MAX) is glibc-only")
    assert limit_malloc_arenas() is True


def test_tls_receive_buffer_is_shrunk_for_connections_opened_afterwards(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # monkeypatch restores the class attribute: other tests keep asyncio's default.
    monkeypatch.setattr(asyncio.sslproto.SSLProtocol, "max_size", 256 * 1024)
    assert shrink_tls_receive_buffer() is True
    loop = asyncio.new_event_loop()
    try:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        protocol = asyncio.sslproto.SSLProtocol(
            loop, asyncio.Protocol(), context, None, server_side=True
        )
        assert len(protocol._ssl_buffer) == TLS_RECEIVE_BUFFER
    finally:
        loop.close()
