"""Compression: both back-ends give one bzip2 stream that every decoder reads fully."""

from __future__ import annotations

import bz2
import io
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from concentrador.protocol.bzip2 import (
    SingleStreamChecker,
    StreamJoiner,
    crc32_bzip2,
    extract_single_block,
    looks_like_bzip2,
)
from concentrador.spool.outbound.compress import (
    CompressionError,
    Compressor,
    Lbzip2Compressor,
    ThreadedBzip2Compressor,
    detect_compressor,
)

HAVE_LBZIP2 = shutil.which("lbzip2") is not None
needs_lbzip2 = pytest.mark.skipif(not HAVE_LBZIP2, reason="lbzip2 not installed")


def compress(compressor: Compressor, source: object) -> bytes:
    out = io.BytesIO()
    compressor.compress_stream(source, out.write)  # type: ignore[arg-type]
    return out.getvalue()


def stream_count(data: bytes) -> int:
    """How many bzip2 streams ``data`` holds (a first-stream-only reader sees one)."""
    count = 0
    while data:
        decompressor = bz2.BZ2Decompressor()
        decompressor.decompress(data)
        assert decompressor.eof, "truncated stream"
        count += 1
        data = decompressor.unused_data
    return count


def cli_accepts(data: bytes, tmp_path: Path) -> None:
    """``bzip2 -t`` and ``lbzip2 -t`` (those installed) accept the bytes."""
    path = tmp_path / "check.bz2"
    path.write_bytes(data)
    tools = [t for t in ("bzip2", "lbzip2") if shutil.which(t)]
    assert tools, "no bzip2 command-line tool to check with"
    for tool in tools:
        result = subprocess.run([tool, "-t", str(path)], capture_output=True, check=False)
        assert result.returncode == 0, (tool, result.stderr)


def mixed_data(size: int, seed: int = 7) -> bytes:
    """Text, long runs (which make bzip2's run-length stage grow) and noise."""
    rnd = random.Random(seed)
    parts: list[bytes] = []
    total = 0
    while total < size:
        kind = rnd.randrange(3)
        if kind == 0:
            piece = b"".join(
                f"ES{rnd.randrange(10**16):016d}0F;11;2024/03/01 {h:02d}:00:00;0;"
                f"{rnd.randrange(5000)};0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;1;1\n".encode()
                for h in range(200)
            )
        elif kind == 1:
            piece = bytes([rnd.randrange(256)]) * rnd.randrange(4, 600_000)
        else:
            piece = rnd.randbytes(rnd.randrange(1, 200_000))
        parts.append(piece)
        total += len(piece)
    return b"".join(parts)[:size]


@pytest.fixture(params=["threads", pytest.param("lbzip2", marks=needs_lbzip2)])
def compressor(request: pytest.FixtureRequest) -> Compressor:
    made = detect_compressor(request.param, threads=2)
    assert made.name == request.param
    yield made
    made.close()


# -- bz2stream building blocks ---------------------------------------------------
def test_crc32_bzip2_check_value() -> None:
    assert crc32_bzip2(b"123456789") == 0xFC891918  # the CRC-32/BZIP2 catalogue value


def test_block_crc_is_what_bzip2_stores() -> None:
    data = b"P1_20031120.1;" * 1000
    stream = bz2.compress(data)
    assert int.from_bytes(stream[10:14], "big") == crc32_bzip2(data)
    assert extract_single_block(stream, crc32_bzip2(data)) is not None
    assert extract_single_block(stream, crc32_bzip2(data) ^ 1) is None


def test_extract_refuses_two_block_stream() -> None:
    data = random.Random(1).randbytes(150_000)
    two_blocks = bz2.compress(data, 1)  # level 1: 100k blocks, so two of them
    assert extract_single_block(two_blocks, crc32_bzip2(data)) is None


def test_empty_join_equals_bz2_of_nothing() -> None:
    assert StreamJoiner(9).finish() == bz2.compress(b"", 9)


def test_magic_detection() -> None:
    assert looks_like_bzip2(b"BZh9")
    assert looks_like_bzip2(bz2.compress(b"x", 1)[:4])
    assert not looks_like_bzip2(b"BZh")  # too short to tell
    assert not looks_like_bzip2(b"BZhX")  # text that merely starts with "BZh"
    assert not looks_like_bzip2(b"F1_0")


def test_single_stream_checker() -> None:
    one = bz2.compress(b"a" * 5000)
    checker = SingleStreamChecker()
    for i in range(0, len(one), 7):
        checker.feed(one[i : i + 7])
    checker.finish()
    assert checker.ok and checker.decompressed_size == 5000

    double = SingleStreamChecker()
    double.feed(one + bz2.compress(b"b"))
    double.finish()
    assert double.extra_data and not double.ok

    truncated = SingleStreamChecker()
    truncated.feed(one[:-5])
    truncated.finish()
    assert truncated.error is not None and "truncated" in truncated.error

    corrupt = SingleStreamChecker()
    corrupt.feed(one[:20] + bytes(40) + one[60:])
    corrupt.finish()
    assert corrupt.error is not None


# -- both back-ends ------------------------------------------------------------
@pytest.mark.parametrize("size", [0, 1, 5000, 2_500_000])
def test_single_stream_round_trip(compressor: Compressor, size: int, tmp_path: Path) -> None:
    data = mixed_data(size)
    src = tmp_path / "in"
    src.write_bytes(data)
    out = compress(compressor, src)
    assert bz2.decompress(out) == data
    assert stream_count(out) == 1
    cli_accepts(out, tmp_path)


def test_file_object_source(compressor: Compressor) -> None:
    data = mixed_data(1_200_000, seed=3)
    out = compress(compressor, io.BytesIO(data))
    assert bz2.decompress(out) == data and stream_count(out) == 1


def test_sink_error_propagates(compressor: Compressor, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.write_bytes(mixed_data(3_000_000, seed=5))

    class Full(Exception):
        pass

    def sink(_piece: bytes) -> None:
        raise Full

    with pytest.raises(Full):
        compressor.compress_stream(src, sink)


def test_threads_join_many_blocks_into_one_stream() -> None:
    """Small chunks force many spliced blocks and the run-length fallback."""
    data = mixed_data(900_000, seed=11)
    with ThreadedBzip2Compressor(threads=2, level=1, chunk_size=60_000) as comp:
        out = compress(comp, io.BytesIO(data))
    assert bz2.decompress(out) == data
    assert stream_count(out) == 1


def test_runs_that_overflow_a_block_are_split() -> None:
    # 4-byte runs grow by 25 % in bzip2's first stage, so a chunk of them that
    # fits the nominal block size does not fit one block.
    data = b"".join(bytes([i % 251]) * 4 for i in range(250_000))
    with ThreadedBzip2Compressor(threads=2, level=1, chunk_size=99_000) as comp:
        out = compress(comp, io.BytesIO(data))
    assert bz2.decompress(out) == data and stream_count(out) == 1


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=3000), st.integers(min_value=1, max_value=700), st.integers(1, 9))
def test_threads_any_bytes_any_chunking(data: bytes, chunk_size: int, level: int) -> None:
    with ThreadedBzip2Compressor(threads=2, level=level, chunk_size=chunk_size) as comp:
        out = compress(comp, io.BytesIO(data))
    assert bz2.decompress(out) == data
    assert stream_count(out) == 1
    assert out[:4] == f"BZh{level}".encode()


# -- choosing a back-end ----------------------------------------------------------
def test_fallback_to_threads_without_lbzip2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    chosen = detect_compressor()
    try:
        assert isinstance(chosen, ThreadedBzip2Compressor)
        assert bz2.decompress(compress(chosen, io.BytesIO(b"abc" * 100))) == b"abc" * 100
    finally:
        chosen.close()
    with pytest.raises(CompressionError, match="lbzip2"):
        detect_compressor("lbzip2")


@needs_lbzip2
def test_auto_prefers_lbzip2() -> None:
    assert isinstance(detect_compressor(), Lbzip2Compressor)


def test_broken_lbzip2_falls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "lbzip2"
    fake.write_text("#!/bin/sh\necho 'lbzip2: cannot allocate' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(CompressionError, match="status 3: lbzip2: cannot allocate"):
        Lbzip2Compressor().compress_stream(io.BytesIO(b"data"), lambda _b: None)
    chosen = detect_compressor()
    try:
        assert isinstance(chosen, ThreadedBzip2Compressor)
    finally:
        chosen.close()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        ThreadedBzip2Compressor(level=0)
    with pytest.raises(ValueError):
        detect_compressor("pigz")


def test_closed_threads_compressor_refuses() -> None:
    comp = ThreadedBzip2Compressor(threads=1)
    comp.close()
    with pytest.raises(CompressionError):
        comp.compress_stream(io.BytesIO(b"x"), lambda _b: None)


def test_concurrent_calls_share_the_pool() -> None:
    """Thread safety: several files at once through one compressor."""
    from concurrent.futures import ThreadPoolExecutor

    inputs = [mixed_data(400_000, seed=s) for s in range(4)]
    with (
        ThreadedBzip2Compressor(threads=2, chunk_size=50_000) as comp,
        ThreadPoolExecutor(4) as pool,
    ):
        outs = list(pool.map(lambda d: compress(comp, io.BytesIO(d)), inputs))
    assert [bz2.decompress(o) for o in outs] == inputs


def test_urandom_is_not_special(compressor: Compressor) -> None:
    data = os.urandom(300_000)
    assert bz2.decompress(compress(compressor, io.BytesIO(data))) == data
