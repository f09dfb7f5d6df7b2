"""The parallel check of a rebuilt set: same verdicts as the sequential checker,
the decompression budget summed over the runs, and a fallback that decides."""

from __future__ import annotations

import bz2
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from concentrador.protocol import SingleStreamChecker, parse_block_name
from concentrador.protocol.bzip2 import DecompressionBudget
from concentrador.protocol.bzip2_segments import BlockRun, StreamSegmenter, check_run
from concentrador.spool.inbound import reassembly, streamcheck
from concentrador.spool.inbound.precheck import PRECHECKS, Precheck, Prechecks
from concentrador.spool.inbound.reassembly import Reassembler
from concentrador.spool.inbound.runcheck import RunCheck, check_run_lbzip2, run_checker
from concentrador.spool.inbound.store import InboundStore
from concentrador.spool.layout import PeerSpool, SpoolState
from concentrador.spool.ledger import Ledger
from tests.protocol.test_bzip2_segments import BLOCKS, PLAIN, STREAM

ORIGINAL = "F1_0086_20240301.0.bz2"

# Every test with runs decoded by lbzip2, and by bz2 (see conftest).
pytestmark = pytest.mark.usefixtures("run_decoder")


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[BlockRun]:
    """Small runs, so a few hundred kB take the parallel path; records every run checked."""
    monkeypatch.setattr(streamcheck, "RUN_BYTES", 8_000)
    checked: list[BlockRun] = []
    run_checker = streamcheck.run_checker

    def counting_checker() -> RunCheck:
        check = run_checker()

        def counting(run: BlockRun, budget: DecompressionBudget) -> str | None:
            checked.append(run)
            return check(run, budget)

        return counting

    monkeypatch.setattr(streamcheck, "run_checker", counting_checker)
    return checked


def drop_set(peer: PeerSpool, data: bytes, n: int = 3) -> list[str]:
    size = -(-len(data) // n)
    names = [f"{ORIGINAL}.{k}_{n}" for k in range(1, n + 1)]
    for k, name in enumerate(names):
        (peer.dir(SpoolState.PARTIAL) / name).write_bytes(data[k * size : (k + 1) * size])
    return names


def rebuild(peer: PeerSpool, ledger: Ledger) -> Path | None:
    return Reassembler(peer, ledger, decompress=False).try_complete(ORIGINAL)


def reason(peer: PeerSpool, name: str) -> str:
    return (peer.dir(SpoolState.FAILED) / f"{name}.reason").read_text()


def sequential_error(data: bytes) -> str:
    checker = SingleStreamChecker(max_output=1 << 40)
    checker.feed(data)
    checker.finish()
    assert not checker.ok
    return checker.error or "data after the end of the bzip2 stream"


def test_a_valid_multi_block_stream_is_checked_in_parallel_and_stored(
    peer: PeerSpool, ledger: Ledger, runs: list[BlockRun]
) -> None:
    drop_set(peer, STREAM)
    stored = rebuild(peer, ledger)
    assert stored is not None and stored.read_bytes() == STREAM
    assert len(runs) > 3  # cut in runs, not checked by one thread
    assert b"".join(bz2.decompress(run.to_stream()) for run in runs) == PLAIN


def test_a_corrupt_byte_in_a_middle_block_fails_the_set_as_the_sequential_check_does(
    peer: PeerSpool, ledger: Ledger, runs: list[BlockRun]
) -> None:
    corrupt = bytearray(STREAM)
    corrupt[len(STREAM) // 2] ^= 0x10
    names = drop_set(peer, bytes(corrupt))
    assert rebuild(peer, ledger) is None
    assert runs  # the parallel check ran first
    assert os.listdir(peer.dir(SpoolState.INBOX)) == []
    assert sorted(os.listdir(peer.dir(SpoolState.FAILED))) == sorted(
        [*names, *(f"{n}.reason" for n in names)]
    )
    assert sequential_error(bytes(corrupt)) in reason(peer, names[1])


def test_two_concatenated_streams_are_refused_as_before(
    peer: PeerSpool, ledger: Ledger, runs: list[BlockRun]
) -> None:
    names = drop_set(peer, STREAM + STREAM)
    assert rebuild(peer, ledger) is None
    assert "data after the end of the bzip2 stream" in reason(peer, names[0])


def test_a_bomb_over_the_budget_is_refused_without_a_second_pass(
    peer: PeerSpool, ledger: Ledger, runs: list[BlockRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    from concentrador.protocol import bzip2 as bz2stream

    monkeypatch.setattr(bz2stream, "MIN_DECOMPRESSION_BUDGET", 1 << 20)
    monkeypatch.setattr(streamcheck, "RUN_BYTES", 64)
    bomb = bz2.compress(b"ab" * (4 << 20), 1)  # 84 blocks of 100 kB in a few kB
    assert len(bomb) >= 4 * 64  # big enough for the parallel path
    names = drop_set(peer, bomb)
    reads: list[list[Path]] = []
    read_pieces = streamcheck.read_pieces

    def reading(paths: list[Path]) -> Iterator[bytes]:
        reads.append(paths)
        return read_pieces(paths)

    monkeypatch.setattr(reassembly, "read_pieces", reading)
    monkeypatch.setattr(streamcheck, "read_pieces", reading)
    assert rebuild(peer, ledger) is None
    assert "decompression bomb" in reason(peer, names[0])
    # Each block read once, for the copy: no sequential pass after the refusal.
    assert sorted(path.name for paths in reads for path in paths) == names
    assert sum(len(run.crcs) for run in runs) < 40  # stopped long before all 84 blocks


def test_a_run_that_fails_on_a_valid_stream_leaves_the_verdict_to_the_sequential_check(
    peer: PeerSpool, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As a block magic that appears by chance inside compressed data would.
    monkeypatch.setattr(streamcheck, "RUN_BYTES", 8_000)
    monkeypatch.setattr(
        streamcheck, "run_checker", lambda: lambda run, budget: "Invalid data stream"
    )
    drop_set(peer, STREAM)
    stored = rebuild(peer, ledger)
    assert stored is not None and stored.read_bytes() == STREAM


# -- checked as the blocks arrive ------------------------------------------------------------
def store_set(peer: PeerSpool, ledger: Ledger, data: bytes, order: list[int]) -> list[str]:
    """Store the blocks of ``data`` through the inbound store, in ``order`` (1-based)."""
    store = InboundStore(peer, ledger, decompress=False)
    size = -(-len(data) // 3)
    names = [f"{ORIGINAL}.{k}_3" for k in range(1, 4)]
    for k in order:
        with store.open(names[k - 1], manual=False) as writer:
            writer.write(data[(k - 1) * size : k * size])
            store.commit(writer, names[k - 1])
    return names


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[Precheck | None]:
    """Every check the reassembler takes over from the arrivals."""
    seen: list[Precheck | None] = []
    take = PRECHECKS.take

    def spying(partial: Path, original: str, count: int) -> Precheck | None:
        seen.append(take(partial, original, count))
        return seen[-1]

    monkeypatch.setattr(PRECHECKS, "take", spying)
    return seen


@pytest.mark.parametrize("order", [[1, 2, 3], [3, 1, 2]], ids=["in-order", "out-of-order"])
def test_blocks_are_checked_as_they_arrive_and_not_again_at_the_rebuild(
    peer: PeerSpool,
    ledger: Ledger,
    runs: list[BlockRun],
    taken: list[Precheck | None],
    order: list[int],
) -> None:
    store_set(peer, ledger, STREAM, order)
    stored = rebuild(peer, ledger)
    assert stored is not None and stored.read_bytes() == STREAM
    precheck = taken[0]
    assert precheck is not None and len(precheck.fed) == 3  # all read on arrival
    assert sum(len(run.crcs) for run in runs) == BLOCKS  # every block checked exactly once


def test_a_block_replaced_after_its_arrival_is_checked_as_it_is_now(
    peer: PeerSpool, ledger: Ledger, runs: list[BlockRun], taken: list[Precheck | None]
) -> None:
    names = store_set(peer, ledger, STREAM, [1, 2, 3])
    middle = peer.dir(SpoolState.PARTIAL) / names[1]
    corrupt = bytearray(middle.read_bytes())
    corrupt[len(corrupt) // 2] ^= 0x10
    replacement = middle.with_name("replacement.tmp")
    replacement.write_bytes(bytes(corrupt))
    replacement.rename(middle)  # by hand: the store never heard of it
    assert rebuild(peer, ledger) is None
    assert taken[0] is not None  # there was a check, and it was not trusted
    size = -(-len(STREAM) // 3)
    whole = STREAM[:size] + bytes(corrupt) + STREAM[2 * size :]
    assert sequential_error(whole) in reason(peer, names[1])


def test_only_the_newest_sets_are_followed_and_the_others_still_rebuild(
    peer: PeerSpool, ledger: Ledger, runs: list[BlockRun], taken: list[Precheck | None]
) -> None:
    followed = Prechecks(max_sets=1)
    partial = peer.dir(SpoolState.PARTIAL)
    for original in ("A.bz2", "B.bz2"):
        path = partial / f"{original}.1_3"
        path.write_bytes(STREAM[: len(STREAM) // 3])
        followed.block_stored(partial, parse_block_name(path.name), path)  # type: ignore[arg-type]
    assert followed.take(partial, "A.bz2", 3) is None  # dropped for B
    kept = followed.take(partial, "B.bz2", 3)
    assert kept is not None and len(kept.fed) == 1


# -- the run decoders ------------------------------------------------------------------------
def cut(stream: bytes, run_bytes: int) -> list[BlockRun]:
    segmenter = StreamSegmenter(run_bytes)
    found = segmenter.feed(stream) + segmenter.finish()
    assert segmenter.failed is None
    return found


def test_runs_are_decoded_by_lbzip2_when_installed_and_by_bz2_otherwise(
    run_decoder: str,
) -> None:
    check = run_checker()
    if run_decoder == "bz2":
        assert check is check_run
        return
    assert getattr(check, "func", None) is check_run_lbzip2
    budget = DecompressionBudget(None)
    runs = cut(STREAM, 8_000)
    assert len(runs) > 3 and [check(run, budget) for run in runs] == [None] * len(runs)
    assert budget.spent == len(PLAIN)  # every decompressed byte counted


def test_lbzip2_reports_a_corrupt_run_as_a_failed_run(run_decoder: str) -> None:
    if run_decoder == "bz2":
        pytest.skip("the lbzip2 path")
    run = cut(STREAM, 8_000)[1]
    corrupt = bytearray(run.data)
    corrupt[len(corrupt) // 2] ^= 0x10
    run.data = bytes(corrupt)
    error = run_checker()(run, DecompressionBudget(None))
    assert error is not None and error.startswith("lbzip2 exited with")


def test_lbzip2_is_stopped_as_soon_as_a_bomb_spends_the_budget(run_decoder: str) -> None:
    if run_decoder == "bz2":
        pytest.skip("the lbzip2 path")
    bomb = bz2.compress(b"\0" * (64 << 20), 1)  # one run of 64 blocks
    (run,) = cut(bomb, 1 << 20)
    budget = DecompressionBudget(4 << 20)
    assert run_checker()(run, budget) == budget.refusal()
    assert 4 << 20 < budget.spent <= (4 << 20) + (1 << 20)  # one chunk past, not 64 MiB
