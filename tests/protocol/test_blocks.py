"""Tests for concentrador.protocol.blocks (CPCSCC.md §6)."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from concentrador.protocol.blocks import (
    DEFAULT_BLOCK_SIZE,
    MAX_BLOCK_COUNT,
    MAX_BLOCK_SIZE,
    MAX_RECEIVE_SIZE,
    MIN_BLOCK_SIZE,
    BlockError,
    BlockName,
    BlockSizeError,
    BlockSpan,
    BlockSplitter,
    DuplicateBlockError,
    InconsistentBlockCountError,
    MissingBlocksError,
    MixedOriginalsError,
    NotABlockError,
    ReassemblyError,
    block_name,
    group_listing,
    parse_block_name,
    reassembly_plan,
    split_plan,
)
from concentrador.protocol.errors import ProtocolError

# Names made of the characters real P.O. 10.11 names use, dots included so
# that originals can themselves end in something block-like.
originals = st.text(alphabet="ABCFPT0123456789_.-", min_size=1, max_size=30)
block_sizes = st.integers(MIN_BLOCK_SIZE, MAX_BLOCK_SIZE)


def test_constants_match_the_spec_decision() -> None:
    assert (MIN_BLOCK_SIZE, MAX_BLOCK_SIZE, DEFAULT_BLOCK_SIZE) == (2**20, 8_000_000, 8_000_000)
    assert MAX_RECEIVE_SIZE == 8 * 2**20


# --- names -------------------------------------------------------------------


def test_spec_example_names() -> None:
    assert [block_name("P1_20031120.1", k, 3) for k in (1, 2, 3)] == [
        "P1_20031120.1.1_3",
        "P1_20031120.1.2_3",
        "P1_20031120.1.3_3",
    ]
    assert parse_block_name("P1_20031120.1.1_3") == BlockName("P1_20031120.1", 1, 3)
    assert parse_block_name("P1_CEMI_20031120.1.2_2") == BlockName("P1_CEMI_20031120.1", 2, 2)


@pytest.mark.parametrize(
    "name",
    [
        "P1_20031120.1",  # X.1: not a block
        "F1_0086_20040612_20040617.9.bz2",
        "X.1_1",  # a single block is never split
        "X.0_3",  # k from 1
        "X.4_3",  # k > n
        "X.01_3",  # leading zeros would give two names for one block
        "X.1_03",
        "X.1_",
        "X._3",
        ".1_3",  # empty original
        "X1_3",  # no dot before the suffix
        "X.1_3 ",
        "X.+1_3",
        "X.1_100000",  # n over MAX_BLOCK_COUNT
        "X." + "9" * 5000 + "_" + "9" * 5000,  # hostile huge numbers
        "X.١_٣",  # Arabic-Indic digits are not ASCII digits
    ],
)
def test_names_that_are_not_blocks(name: str) -> None:
    assert parse_block_name(name) is None


def test_original_may_itself_look_like_a_block() -> None:
    assert parse_block_name("X.1_3.2_2") == BlockName("X.1_3", 2, 2)
    assert parse_block_name("a\nb.1_2") == BlockName("a\nb", 1, 2)
    assert parse_block_name(f"X.{MAX_BLOCK_COUNT}_{MAX_BLOCK_COUNT}") == BlockName(
        "X", MAX_BLOCK_COUNT, MAX_BLOCK_COUNT
    )


@pytest.mark.parametrize(
    ("original", "index", "count"),
    [("", 1, 2), ("X", 0, 2), ("X", 3, 2), ("X", 1, 1), ("X", 1, MAX_BLOCK_COUNT + 1)],
)
def test_block_name_refuses_impossible_blocks(original: str, index: int, count: int) -> None:
    with pytest.raises(BlockError):
        BlockName(original, index, count)


def test_block_name_is_frozen() -> None:
    block = BlockName("X", 1, 2)
    with pytest.raises(AttributeError):
        block.index = 2  # type: ignore[misc]


@given(
    originals,
    st.integers(2, MAX_BLOCK_COUNT).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n))),
)
def test_block_names_round_trip(original: str, k_n: tuple[int, int]) -> None:
    index, count = k_n
    name = block_name(original, index, count)
    assert parse_block_name(name) == BlockName(original, index, count)
    assert str(parse_block_name(name)) == name


# --- split plan --------------------------------------------------------------


def test_small_file_is_not_split() -> None:
    assert split_plan("F1_X.bz2", 10) == [BlockSpan("F1_X.bz2", 1, 1, 0, 10)]
    assert split_plan("F1_X.bz2", DEFAULT_BLOCK_SIZE) == [
        BlockSpan("F1_X.bz2", 1, 1, 0, DEFAULT_BLOCK_SIZE)
    ]
    assert split_plan("E", 0) == [BlockSpan("E", 1, 1, 0, 0)]


def test_spec_example_twenty_mb_in_three_blocks() -> None:
    # Annex 2's 20 MB file in 8 MB blocks, reading MB as 10**6 (8 MiB is
    # above MAX_BLOCK_SIZE by the project's decision).
    mb = 10**6
    spans = split_plan("P1_20031120.1", 20 * mb, 8 * mb)
    assert [(s.name, s.offset, s.length) for s in spans] == [
        ("P1_20031120.1.1_3", 0, 8 * mb),
        ("P1_20031120.1.2_3", 8 * mb, 8 * mb),
        ("P1_20031120.1.3_3", 16 * mb, 4 * mb),
    ]


def test_one_byte_over_gives_a_one_byte_last_block() -> None:
    spans = split_plan("X", DEFAULT_BLOCK_SIZE + 1)
    assert [(s.name, s.length) for s in spans] == [("X.1_2", DEFAULT_BLOCK_SIZE), ("X.2_2", 1)]


@pytest.mark.parametrize("bad", [MIN_BLOCK_SIZE - 1, MAX_BLOCK_SIZE + 1, 0, -1, True, 2.0e6])
def test_block_size_range_is_enforced(bad: object) -> None:
    with pytest.raises(BlockSizeError):
        split_plan("X", 100, bad)  # type: ignore[arg-type]
    with pytest.raises(BlockSizeError):
        BlockSplitter(bad)  # type: ignore[arg-type]


def test_split_plan_refuses_bad_input() -> None:
    with pytest.raises(BlockError):
        split_plan("", 10)
    with pytest.raises(BlockError):
        split_plan("X", -1)
    with pytest.raises(BlockError):
        split_plan("X", MIN_BLOCK_SIZE * MAX_BLOCK_COUNT + 1, MIN_BLOCK_SIZE)


def test_errors_are_protocol_errors() -> None:
    for cls in (BlockSizeError, ReassemblyError, MissingBlocksError, NotABlockError):
        assert issubclass(cls, BlockError)
    assert issubclass(BlockError, ProtocolError)


@given(originals, st.integers(0, 60 * MAX_BLOCK_SIZE), block_sizes)
def test_split_plan_covers_the_file_exactly(name: str, size: int, block_size: int) -> None:
    spans = split_plan(name, size, block_size)
    # Contiguous, no overlap, exactly [0, size).
    assert spans[0].offset == 0
    assert spans[-1].end == size
    for before, after in itertools.pairwise(spans):
        assert after.offset == before.end
    assert all(s.count == len(spans) for s in spans)
    assert [s.index for s in spans] == list(range(1, len(spans) + 1))
    if size <= block_size:
        assert [s.name for s in spans] == [name]
    else:
        assert all(s.length == block_size for s in spans[:-1])
        assert 1 <= spans[-1].length <= block_size
        # Every block name parses back to the original and the span's place.
        assert [parse_block_name(s.name) for s in spans] == [
            BlockName(name, s.index, s.count) for s in spans
        ]
        assert reassembly_plan(s.name for s in reversed(spans)) == [s.name for s in spans]


# --- listing grouping ----------------------------------------------------------


def test_group_listing_sorts_out_each_kind() -> None:
    listing = group_listing(
        [
            "F1_CEMI_20031120.2",
            "P1_CEMI_20031120.1.3_3",
            "P1_CEMI_20031120.1.1_3",
            "P1_CEMI_20031120.1.2_3",
            "P2_X.1_4",
            "P2_X.3_4",
            "X.1_3",
            "X.2_4",
            "F1_CEMI_20031120.2",  # repeated (listed under two types)
        ]
    )
    assert listing.whole == ("F1_CEMI_20031120.2",)
    assert dict(listing.complete) == {
        "P1_CEMI_20031120.1": (
            "P1_CEMI_20031120.1.1_3",
            "P1_CEMI_20031120.1.2_3",
            "P1_CEMI_20031120.1.3_3",
        )
    }
    incomplete = listing.incomplete["P2_X"]
    assert (incomplete.count, incomplete.present, incomplete.missing) == (4, (1, 3), (2, 4))
    assert set(listing.incomplete) == {"P2_X"}
    assert dict(listing.inconsistent) == {"X": ("X.1_3", "X.2_4")}


def test_group_listing_of_nothing_is_empty() -> None:
    listing = group_listing([])
    assert (listing.whole, dict(listing.complete), dict(listing.incomplete)) == ((), {}, {})
    assert dict(listing.inconsistent) == {}


def _split_names(original: str, count: int) -> list[str]:
    return [block_name(original, k, count) for k in range(1, count + 1)]


@given(
    st.lists(originals, max_size=4, unique=True),
    st.lists(st.tuples(originals, st.integers(2, 6), st.integers(0, 6)), max_size=4),
    st.randoms(use_true_random=False),
)
def test_group_listing_is_order_independent_and_total(
    whole: list[str], split: list[tuple[str, int, int]], rnd: random.Random
) -> None:
    names = list(whole)
    for original, count, drop in split:
        names += _split_names(original, count)[drop:]
    shuffled = names + rnd.sample(names, k=min(3, len(names)))  # with repeats
    rnd.shuffle(shuffled)
    a, b = group_listing(names), group_listing(shuffled)
    assert a.whole == b.whole
    assert dict(a.complete) == dict(b.complete)
    assert dict(a.incomplete) == dict(b.incomplete)
    assert dict(a.inconsistent) == dict(b.inconsistent)
    # Every name lands in exactly one place.
    placed = list(a.whole)
    placed += [n for names_ in a.complete.values() for n in names_]
    placed += [block_name(f.original, k, f.count) for f in a.incomplete.values() for k in f.present]
    placed += [n for names_ in a.inconsistent.values() for n in names_]
    assert sorted(placed) == sorted(set(names))
    for original, blocks in a.complete.items():
        assert reassembly_plan(blocks) == list(blocks)
        assert original not in a.incomplete and original not in a.inconsistent


# --- reassembly ----------------------------------------------------------------


def test_reassembly_plan_orders_blocks() -> None:
    assert reassembly_plan(["Y.3_3", "Y.1_3", "Y.2_3"]) == ["Y.1_3", "Y.2_3", "Y.3_3"]


@pytest.mark.parametrize(
    ("names", "error", "words"),
    [
        ([], MissingBlocksError, "no blocks"),
        (["Y.1_2", "Y"], NotABlockError, "'Y' is not a block"),
        (["Y.1_2", "Z.2_2"], MixedOriginalsError, "Y, Z"),
        (["Y.1_2", "Y.2_3"], InconsistentBlockCountError, "[2, 3]"),
        (["Y.1_2", "Y.1_2", "Y.2_2"], DuplicateBlockError, "block 1"),
        (["Y.1_3", "Y.3_3"], MissingBlocksError, "block(s) 2 of 3"),
    ],
)
def test_reassembly_plan_names_the_problem(
    names: list[str], error: type[ReassemblyError], words: str
) -> None:
    with pytest.raises(error) as info:
        reassembly_plan(names)
    assert words in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_message_stays_short_for_hostile_counts() -> None:
    with pytest.raises(MissingBlocksError) as info:
        reassembly_plan([f"Y.1_{MAX_BLOCK_COUNT}"])
    assert len(str(info.value)) < 200
    assert f"({MAX_BLOCK_COUNT - 1} in all)" in str(info.value)


# --- streaming splitter ----------------------------------------------------------


def _run_splitter(
    data: bytes, cuts: list[int], block_size: int
) -> tuple[dict[int, bytes], BlockSplitter]:
    splitter = BlockSplitter(block_size)
    blocks: dict[int, bytearray] = {}
    last_index = 1
    start = 0
    for cut in [*sorted(cuts), len(data)]:
        for index, piece in splitter.split_pieces(data[start:cut]):
            assert index >= last_index  # blocks only ever advance
            last_index = index
            blocks.setdefault(index, bytearray()).extend(piece)
        start = cut
    splitter.finish()
    return {k: bytes(v) for k, v in blocks.items()}, splitter


@given(st.integers(0, 3 * MIN_BLOCK_SIZE + 5), st.lists(st.integers(0, 3 * MIN_BLOCK_SIZE + 5)))
def test_splitter_agrees_with_split_plan(size: int, cuts: list[int]) -> None:
    data = random.Random(size).randbytes(size)
    cuts = [min(c, size) for c in cuts]
    blocks, splitter = _run_splitter(data, cuts, MIN_BLOCK_SIZE)
    spans = splitter.plan("F")
    assert splitter.total == size
    assert splitter.count == len(spans)
    expected = {s.index: data[s.offset : s.end] for s in spans if s.length}
    assert blocks == expected


def test_splitter_edge_cases() -> None:
    splitter = BlockSplitter(MIN_BLOCK_SIZE)
    assert splitter.split_pieces(b"") == []
    with pytest.raises(BlockError):
        splitter.plan("F")  # not finished
    assert splitter.finish() == 1
    assert splitter.plan("F") == [BlockSpan("F", 1, 1, 0, 0)]
    with pytest.raises(BlockError):
        splitter.split_pieces(b"x")


def test_splitter_exact_multiple_does_not_open_an_empty_block() -> None:
    splitter = BlockSplitter(MIN_BLOCK_SIZE)
    out = splitter.split_pieces(bytes(2 * MIN_BLOCK_SIZE))
    assert [(k, len(v)) for k, v in out] == [(1, MIN_BLOCK_SIZE), (2, MIN_BLOCK_SIZE)]
    assert splitter.finish() == 2
    assert [s.name for s in splitter.plan("F")] == ["F.1_2", "F.2_2"]
