"""Process-wide set-up for ``concentrador serve``, done once before the loop starts.

Neither belongs to the :class:`~concentrador.daemon.serve.Daemon` object (tests run
several daemons in one process and must not have their logging or malloc
replaced): both are about the long-running process itself.
"""

from __future__ import annotations

import asyncio.sslproto
import ctypes
import logging
import os
import sys

from concentrador.daemon.logs import setup_logging

__all__ = [
    "MALLOC_ARENAS",
    "TLS_RECEIVE_BUFFER",
    "limit_malloc_arenas",
    "release_free_memory",
    "shrink_tls_receive_buffer",
    "take_over_logging",
]


def take_over_logging() -> None:
    """Replace the CLI's timestamped handlers by the journald-aware one.

    ``serve`` gets no ``args``; the CLI has already set the root level from
    ``-v``, so that level is what "verbose" means here.
    """
    root = logging.getLogger()
    verbose = root.level <= logging.DEBUG and root.level != logging.NOTSET
    for handler in list(root.handlers):
        root.removeHandler(handler)
    setup_logging(verbose)


# glibc's mallopt(M_ARENA_MAX): by default every thread that allocates may get
# its own 64 MB malloc arena. The daemon's worker threads (file reads for 32
# concurrent 8 MB downloads, fsyncs, compression) then each keep freed
# 256 KiB pieces in their own arena. Two arenas cut the peak RSS of
# bench/server_bench.py's 32-client run from ~121 MB to ~102 MB with no
# measurable throughput cost; one arena (the 256 KiB pieces are read in a
# worker thread and freed on the loop's, so a second arena only strands
# them) cut it by another ~6 MB (issue 11), again with no measurable CPU
# cost: the threads allocate little besides those pieces, so they rarely
# contend for the one arena's lock.
_M_ARENA_MAX = -8
MALLOC_ARENAS = 1


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc malloc arenas unless ``$MALLOC_ARENA_MAX`` already says; True if set."""
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(_M_ARENA_MAX, arenas))
    except (OSError, AttributeError):  # not glibc (musl has no mallopt arenas)
        return False


def release_free_memory() -> bool:
    """glibc's ``malloc_trim(0)``: give freed heap pages back to the OS; True if any.

    Freed memory inside the heap is otherwise kept: after 300 slow TLS
    connections (256 KiB of read buffer each) RSS stayed ~110 MB above the
    baseline (issue 13); bench/slow_clients_bench.py measures the effect.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        return bool(ctypes.CDLL(None).malloc_trim(0))
    except (OSError, AttributeError):  # not glibc
        return False


# asyncio's SSLProtocol receives ciphertext into a buffer of ``max_size`` bytes
# (256 KiB), allocated and zeroed when each TLS connection opens and held as
# long as it lives: 8 MB for 32 clients, 75 MB for 300 idle connections. TLS
# records are at most 16 KiB, so 64 KiB still takes several per ``recv`` (and
# ``SSLObject.read`` returns one record's plaintext whatever it is asked for).
# It cut bench/server_bench.py's 32-client peak by ~4-7 MB (issue 11).
TLS_RECEIVE_BUFFER = 64 * 1024


def shrink_tls_receive_buffer(size: int = TLS_RECEIVE_BUFFER) -> bool:
    """Make asyncio's TLS connections opened from now on use a ``size``-byte
    receive buffer; False (nothing changed) if this Python's asyncio has no
    such class attribute (it is not a public API)."""
    protocol = asyncio.sslproto.SSLProtocol
    if not isinstance(getattr(protocol, "max_size", None), int):
        return False
    protocol.max_size = size
    return True
