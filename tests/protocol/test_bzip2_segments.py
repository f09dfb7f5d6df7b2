"""Cutting one bzip2 stream into runs of whole blocks that check on their own."""

from __future__ import annotations

import bz2
import random

import pytest

from concentrador.protocol.bzip2 import DecompressionBudget
from concentrador.protocol.bzip2_segments import BlockRun, StreamSegmenter, check_run


def metering_text(size: int, seed: int = 7) -> bytes:
    """Text that compresses about 5:1, so level 1 (100 kB blocks) gives many blocks."""
    rnd = random.Random(seed)
    lines = []
    total = 0
    while total < size:
        day, value = rnd.randrange(1, 29), rnd.randrange(4000)
        line = f"ES{rnd.randrange(10**8):08d};11;2024/03/{day:02d};{value}\n"
        lines.append(line)
        total += len(line)
    return "".join(lines).encode("ascii")[:size]


PLAIN = metering_text(700_000)
STREAM = bz2.compress(PLAIN, 1)
BLOCKS = -(-len(PLAIN) // 99_981)  # a level-1 block holds 100 kB less 19 bytes


def cut(data: bytes, feed: int, run_bytes: int = 8_000) -> tuple[StreamSegmenter, list[BlockRun]]:
    segmenter = StreamSegmenter(run_bytes)
    runs = []
    for i in range(0, len(data), feed):
        runs += segmenter.feed(data[i : i + feed])
    runs += segmenter.finish()
    return segmenter, runs


@pytest.mark.parametrize("feed", [1 << 20, 4099, 7], ids=["whole", "odd-pieces", "tiny-pieces"])
def test_runs_decompress_to_the_original_in_order(feed: int) -> None:
    segmenter, runs = cut(STREAM, feed)
    assert segmenter.failed is None
    assert segmenter.blocks == BLOCKS
    assert len(runs) == BLOCKS  # each block is over run_bytes, so a run holds one block
    assert b"".join(bz2.decompress(run.to_stream()) for run in runs) == PLAIN


def test_a_run_may_hold_several_blocks() -> None:
    segmenter, runs = cut(STREAM, 65536, run_bytes=len(STREAM) // 3)
    assert segmenter.failed is None and 2 <= len(runs) < segmenter.blocks
    assert sum(len(run.crcs) for run in runs) == segmenter.blocks
    assert b"".join(bz2.decompress(run.to_stream()) for run in runs) == PLAIN


def test_runs_check_clean_and_spend_one_shared_budget() -> None:
    _, runs = cut(STREAM, 65536)
    budget = DecompressionBudget(None)
    assert [check_run(run, budget) for run in runs] == [None] * len(runs)
    assert budget.spent == len(PLAIN)


def test_the_budget_is_the_sum_over_the_runs() -> None:
    _, runs = cut(STREAM, 65536)
    budget = DecompressionBudget(len(PLAIN) // 2)
    errors = [check_run(run, budget) for run in runs]
    assert errors[0] is None  # one run alone is well within the budget
    assert errors[-1] is not None and "decompression bomb" in errors[-1]
    # Once spent, the rest is refused without being decompressed.
    assert budget.spent < len(PLAIN) // 2 + 200_000


def test_a_wrong_stream_crc_cannot_be_decided_by_runs() -> None:
    tail = bytearray(STREAM)
    tail[-2] ^= 0x01  # inside the combined CRC (the last byte may be padding)
    segmenter, _ = cut(bytes(tail), 65536)
    assert segmenter.failed is not None and "CRC" in segmenter.failed


@pytest.mark.parametrize(
    "data",
    [STREAM + b"trailing garbage", STREAM[:-100], b"BZh9" + b"\0" * 1000, b"not bzip2 at all"],
    ids=["garbage", "truncated", "no-blocks", "no-header"],
)
def test_streams_that_are_not_cut_fall_to_the_sequential_checker(data: bytes) -> None:
    segmenter, _ = cut(data, 65536)
    assert segmenter.failed is not None


def test_two_streams_never_pass_as_one() -> None:
    segmenter, runs = cut(STREAM + STREAM, 65536)
    budget = DecompressionBudget(None)
    assert segmenter.failed is not None or any(check_run(run, budget) for run in runs)


def test_a_corrupt_block_fails_its_run() -> None:
    corrupt = bytearray(STREAM)
    corrupt[len(corrupt) // 2] ^= 0x10
    segmenter, runs = cut(bytes(corrupt), 65536)
    budget = DecompressionBudget(None)
    assert segmenter.failed is not None or any(check_run(run, budget) for run in runs)
