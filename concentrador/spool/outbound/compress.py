"""Streaming bzip2 compression that uses every core and emits ONE bzip2 stream.

Two interchangeable back-ends behind :class:`Compressor`:

* :class:`Lbzip2Compressor` runs ``lbzip2 -n<threads>`` (its output is one
  stream). Fastest where installed: see ``bench/publish_bench.py``.
* :class:`ThreadedBzip2Compressor` needs nothing but the standard library:
  chunks are compressed by ``bz2`` in a thread pool (``bz2`` releases the GIL,
  so threads really run in parallel; processes would only add pickling of
  every chunk) and their blocks are spliced into a single stream by
  :mod:`concentrador.protocol.bzip2`.

Both are synchronous and thread-safe: the daemon calls them through
``asyncio.to_thread`` / ``run_in_executor`` so the event loop never blocks,
and several files may be compressed at once. Output goes to a ``sink``
callable piece by piece, so neither the input nor the output of a file is
ever held in memory whole.
"""

from __future__ import annotations

import bz2
import contextlib
import io
import logging
import os
import shutil
import subprocess
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, Protocol

from concentrador.protocol import (
    Bzip2Block,
    Bzip2FormatError,
    StreamJoiner,
    crc32_bzip2,
    extract_single_block,
)

__all__ = [
    "ByteReader",
    "CompressionError",
    "Compressor",
    "Lbzip2Compressor",
    "Sink",
    "Source",
    "ThreadedBzip2Compressor",
    "available_cores",
    "detect_compressor",
]

log = logging.getLogger(__name__)

Sink = Callable[[bytes], object]
"""Receives the compressed output piece by piece, in order."""


class ByteReader(Protocol):
    """A readable binary file object (a file, a pipe, ``BZ2File``, ``BytesIO``).

    Only ``read`` is needed, and short reads are expected: a Protocol rather
    than ``BinaryIO``, which ``bz2.BZ2File`` does not claim to be.
    """

    def read(self, size: int, /) -> bytes: ...


Source = ByteReader | str | os.PathLike[str]
"""A path (opened and read here) or a readable binary file object."""

_READ_SIZE = 1 << 20


class CompressionError(RuntimeError):
    """Compression failed (the compressor crashed, or produced unusable output)."""


def available_cores() -> int:
    """CPUs this process may run on (honours taskset/cgroup affinity)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def _opened(source: Source) -> Iterator[ByteReader]:
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as handle:
            yield handle
    else:
        yield source


def _read_full(handle: ByteReader, size: int) -> bytes:
    """Read up to ``size`` bytes, looping over short reads (pipes, BZ2File)."""
    parts: list[bytes] = []
    wanted = size
    while wanted > 0:
        piece = handle.read(wanted)
        if not piece:
            break
        parts.append(piece)
        wanted -= len(piece)
    return parts[0] if len(parts) == 1 else b"".join(parts)


class Compressor(ABC):
    """Compresses a byte stream into a single bzip2 stream, streaming."""

    name: str = "abstract"

    def __init__(self, threads: int | None = None, level: int = 9) -> None:
        if not 1 <= level <= 9:
            raise ValueError(f"bzip2 level must be 1..9, not {level}")
        self.threads = threads if threads is not None else available_cores()
        if self.threads < 1:
            raise ValueError(f"threads must be at least 1, not {self.threads}")
        self.level = level

    @abstractmethod
    def compress_stream(self, source: Source, sink: Sink) -> int:
        """Compress ``source`` into one bzip2 stream fed to ``sink``; returns input bytes.

        An exception raised by ``sink`` stops the work and propagates unchanged.
        """

    def close(self) -> None:
        """Release worker threads (idempotent); nothing to release by default."""
        return None

    def __enter__(self) -> Compressor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(threads={self.threads}, level={self.level})"


class Lbzip2Compressor(Compressor):
    """Pipes the input through ``lbzip2 -n<threads> -<level> -c``."""

    name = "lbzip2"

    def __init__(
        self,
        executable: str | os.PathLike[str] = "lbzip2",
        threads: int | None = None,
        level: int = 9,
    ) -> None:
        super().__init__(threads, level)
        found = shutil.which(os.fspath(executable))
        if found is None:
            raise CompressionError(f"lbzip2 not found ({executable})")
        self.executable = found

    def compress_stream(self, source: Source, sink: Sink) -> int:
        command = [self.executable, f"-n{self.threads}", f"-{self.level}", "-c"]
        if isinstance(source, str | os.PathLike):
            # lbzip2 reads the file itself: no copy through this process.
            with open(source, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                self._run(command, handle, None, sink)
            return size
        return self._run(command, subprocess.PIPE, source, sink)

    def _run(
        self, command: list[str], stdin: int | IO[bytes], feed: ByteReader | None, sink: Sink
    ) -> int:
        proc = subprocess.Popen(
            command, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0
        )
        pumped = [0]
        pump_error: list[BaseException] = []
        pump: threading.Thread | None = None
        if feed is not None:
            pump = threading.Thread(
                target=self._pump, args=(feed, proc, pumped, pump_error), daemon=True
            )
            pump.start()
        assert proc.stdout is not None and proc.stderr is not None
        try:
            while piece := proc.stdout.read(_READ_SIZE):
                sink(piece)
        except BaseException:
            proc.kill()
            raise
        finally:
            if pump is not None:
                pump.join()
            proc.stdout.close()
            stderr = proc.stderr.read(4096)
            proc.stderr.close()
            returncode = proc.wait()
        if pump_error:
            raise pump_error[0]
        if returncode != 0:
            detail = stderr.decode("utf-8", "replace").strip().splitlines()
            raise CompressionError(
                f"lbzip2 exited with status {returncode}: {detail[-1] if detail else 'no message'}"
            )
        return pumped[0]

    @staticmethod
    def _pump(
        feed: ByteReader,
        proc: subprocess.Popen[bytes],
        count: list[int],
        error: list[BaseException],
    ) -> None:
        assert proc.stdin is not None
        try:
            while piece := feed.read(_READ_SIZE):
                proc.stdin.write(piece)
                count[0] += len(piece)
        except BrokenPipeError:
            pass  # lbzip2 died; its exit status tells why
        except BaseException as exc:  # a read error of the source: report it, stop lbzip2
            error.append(exc)
            proc.kill()
        finally:
            with contextlib.suppress(OSError):
                proc.stdin.close()


def _compress_chunk(chunk: memoryview, level: int) -> list[Bzip2Block]:
    """Compress ``chunk`` into one or more single blocks (in order)."""
    block = extract_single_block(bz2.compress(chunk, level), crc32_bzip2(chunk))
    if block is not None:
        return [block]
    # Run-length coding made the chunk overflow one block (long byte runs grow
    # 4 -> 5 bytes): halve it. Terminates: a few KB always fit one block.
    if len(chunk) < 2:
        raise Bzip2FormatError("bz2 produced an unexpected stream for a 1-byte chunk")
    half = len(chunk) // 2
    return _compress_chunk(chunk[:half], level) + _compress_chunk(chunk[half:], level)


class ThreadedBzip2Compressor(Compressor):
    """Parallel bzip2 with the standard library, spliced into one stream.

    The input is cut into chunks that fill one bzip2 block; up to
    ``2 * threads`` chunks are in flight (bounded memory), and their blocks are
    joined in input order. One shared pool serves all concurrent calls, so a
    batch of files never runs more than ``threads`` compressions at once.
    """

    name = "threads"

    def __init__(
        self, threads: int | None = None, level: int = 9, chunk_size: int | None = None
    ) -> None:
        super().__init__(threads, level)
        # A block holds level*100k - 19 bytes after run-length coding; a little
        # headroom keeps typical text in one block (see _compress_chunk for runs).
        self.chunk_size = chunk_size or level * 100_000 - 1_000
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, not {self.chunk_size}")
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="bz2")
        self._closed = False

    def compress_stream(self, source: Source, sink: Sink) -> int:
        if self._closed:
            raise CompressionError("compressor is closed")
        joiner = StreamJoiner(self.level)
        pending: deque[Future[list[Bzip2Block]]] = deque()
        window = 2 * self.threads
        total = 0
        eof = False
        try:
            with _opened(source) as handle:
                while True:
                    while not eof and len(pending) < window:
                        chunk = _read_full(handle, self.chunk_size)
                        if not chunk:
                            eof = True
                            break
                        total += len(chunk)
                        pending.append(
                            self._pool.submit(_compress_chunk, memoryview(chunk), self.level)
                        )
                    if not pending:
                        break
                    for block in pending.popleft().result():
                        sink(joiner.add(block))
            sink(joiner.finish())
        finally:
            for future in pending:
                future.cancel()
        return total

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._pool.shutdown(wait=True, cancel_futures=True)


def detect_compressor(
    prefer: str = "auto", *, threads: int | None = None, level: int = 9
) -> Compressor:
    """The compressor to use: ``"auto"`` (lbzip2 if it works, else threads),
    ``"lbzip2"`` (an error if absent) or ``"threads"``.

    ``auto`` runs ``lbzip2`` once on a few bytes, so a broken install falls
    back to threads instead of failing every publication later.
    """
    if prefer not in ("auto", "lbzip2", "threads"):
        raise ValueError(f"unknown compressor {prefer!r}: use auto, lbzip2 or threads")
    if prefer in ("auto", "lbzip2"):
        try:
            candidate = Lbzip2Compressor(threads=threads, level=level)
            out = io.BytesIO()
            candidate.compress_stream(io.BytesIO(b"probe"), out.write)
            if bz2.decompress(out.getvalue()) != b"probe":
                raise CompressionError("lbzip2 produced a wrong result for a probe")
            return candidate
        except (CompressionError, OSError) as exc:
            if prefer == "lbzip2":
                raise CompressionError(f"lbzip2 is not usable: {exc}") from exc
            log.info("lbzip2 not usable (%s); compressing with a thread pool", exc)
    return ThreadedBzip2Compressor(threads=threads, level=level)


def describe(compressor: Compressor) -> str:
    """One line for the start-up log."""
    return f"{compressor.name} ({compressor.threads} threads, level {compressor.level})"
