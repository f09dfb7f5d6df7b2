"""The decompression budget: a bzip2 bomb from a peer, whole or cut in blocks,
is kept (or failed with a reason) without ever being inflated in full."""

from __future__ import annotations

import bz2
import os

import pytest

from concentrador.spool.inbound.reassembly import Reassembler
from concentrador.spool.inbound.store import InboundStore
from concentrador.spool.layout import PeerSpool, SpoolState
from concentrador.spool.ledger import Ledger
from tests.spool.conftest import receive

# Every test with runs decoded by lbzip2, and by bz2 (see conftest).
pytestmark = pytest.mark.usefixtures("run_decoder")


@pytest.fixture
def small_budget(monkeypatch: pytest.MonkeyPatch) -> int:
    """A 1 MiB floor instead of 256 MiB, so a bomb is caught in milliseconds."""
    from concentrador.protocol import bzip2 as bz2stream

    monkeypatch.setattr(bz2stream, "MIN_DECOMPRESSION_BUDGET", 1 << 20)
    return 1 << 20


def bomb(size: int = 64 << 20) -> bytes:
    return bz2.compress(b"\0" * size)  # a few hundred bytes


def test_block_set_that_is_a_decompression_bomb_fails_instead_of_tying_up_the_peer(
    peer: PeerSpool, ledger: Ledger, small_budget: int
) -> None:
    data = bomb()
    cut = len(data) // 2
    partial = peer.dir(SpoolState.PARTIAL)
    (partial / "F1_X.bz2.1_2").write_bytes(data[:cut])
    (partial / "F1_X.bz2.2_2").write_bytes(data[cut:])
    assert Reassembler(peer, ledger, decompress=False).try_complete("F1_X.bz2") is None
    assert os.listdir(peer.dir(SpoolState.INBOX)) == []
    failed = sorted(os.listdir(peer.dir(SpoolState.FAILED)))
    assert failed == ["F1_X.bz2.1_2", "F1_X.bz2.1_2.reason", "F1_X.bz2.2_2", "F1_X.bz2.2_2.reason"]
    assert "decompression bomb" in (peer.dir(SpoolState.FAILED) / "F1_X.bz2.1_2.reason").read_text()


def test_honest_block_set_within_the_budget_still_rebuilds(
    peer: PeerSpool, ledger: Ledger, small_budget: int
) -> None:
    data = bz2.compress(os.urandom(200_000))  # incompressible: ratio ~1
    cut = len(data) // 2
    partial = peer.dir(SpoolState.PARTIAL)
    (partial / "F1_Y.bz2.1_2").write_bytes(data[:cut])
    (partial / "F1_Y.bz2.2_2").write_bytes(data[cut:])
    stored = Reassembler(peer, ledger, decompress=False).try_complete("F1_Y.bz2")
    assert stored is not None and stored.read_bytes() == data


def test_decompressed_copy_of_a_bomb_is_skipped_but_the_file_is_kept(
    peer: PeerSpool, ledger: Ledger, small_budget: int
) -> None:
    store = InboundStore(peer, ledger, decompress=True)
    data = bomb()
    path = receive(store, "F1_Z.bz2", data)
    assert path.read_bytes() == data
    assert os.listdir(peer.dir(SpoolState.INBOX)) == ["F1_Z.bz2"]  # no huge F1_Z copy
