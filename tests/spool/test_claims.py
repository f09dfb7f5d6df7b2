"""Work claims on one host (lock files) and the cycle log they write."""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import timedelta
from pathlib import Path

import pytest

from concentrador.spool.claims import (
    KINDS,
    ClaimBusy,
    LocalClaims,
    RecordedClaims,
    hold_async,
    lock_path,
    open_claims,
)
from concentrador.spool.claims.advisory import claim_key
from concentrador.spool.layout import PeerSpool, Spool
from concentrador.spool.ledger import Ledger
from concentrador.spool.ledger.schema import utc_now
from tests.spool.claim_helpers import assert_no_overlap, holder_process


def test_second_holder_in_the_same_process_is_refused(tmp_path: Path) -> None:
    claims = LocalClaims(Spool(tmp_path))
    with claims.hold("PEER", "publish") as claim:
        assert (claim.peer, claim.kind) == ("PEER", "publish")
        with (
            pytest.raises(
                ClaimBusy, match=f"PEER: a publish pass is already running \\(pid {os.getpid()}\\)"
            ),
            claims.hold("PEER", "publish"),
        ):
            pass
        with claims.hold("PEER", "rebuild"), claims.hold("OTHER", "publish"):
            pass  # other kinds, other peers: independent
    with claims.hold("PEER", "publish"):
        pass  # released
    assert lock_path(PeerSpool(tmp_path, "PEER"), "publish") == tmp_path / "PEER" / ".publish.lock"


def test_claim_held_by_another_process_then_released(tmp_path: Path) -> None:
    claims = LocalClaims(Spool(tmp_path))
    with holder_process(tmp_path, "PEER", "collect") as child:
        with (
            pytest.raises(
                ClaimBusy, match=f"collect cycle is already running \\(pid {child.pid}\\)"
            ),
            claims.hold("PEER", "collect"),
        ):
            pass
        with claims.hold("PEER", "push"):
            pass
    with claims.hold("PEER", "collect"):
        pass


def test_kill_9_of_the_holder_releases_its_claim(tmp_path: Path) -> None:
    claims = LocalClaims(Spool(tmp_path))
    with holder_process(tmp_path, "PEER", "expiry") as child:
        with pytest.raises(ClaimBusy), claims.hold("PEER", "expiry"):
            pass
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        with claims.hold("PEER", "expiry"):
            pass


def test_unknown_kind_and_bad_peer_are_refused(tmp_path: Path) -> None:
    claims = LocalClaims(Spool(tmp_path))
    with pytest.raises(ValueError, match="unknown claim kind 'colect'"), claims.hold("P", "colect"):
        pass
    with pytest.raises(ValueError), claims.hold("../etc", "collect"):
        pass


def test_open_claims_follows_the_ledger_url(tmp_path: Path) -> None:
    assert isinstance(open_claims(Spool(tmp_path)), LocalClaims)
    with pytest.raises(ValueError, match="postgresql://"):
        open_claims(Spool(tmp_path), "sqlite:///x")
    recorded = open_claims(Spool(tmp_path), None, cycle_log=_NoLog(), replica="r1")
    assert isinstance(recorded, RecordedClaims) and recorded.replica == "r1"


def test_claim_keys_are_stable_and_distinct() -> None:
    # Fixed values: a change would let two versions of the program run the same cycle.
    assert claim_key("PEER", "collect") == claim_key("PEER", "collect")
    keys = {claim_key(peer, kind) for peer in ("A", "B", "AB") for kind in KINDS}
    assert len(keys) == 3 * len(KINDS)
    assert all(-(2**63) <= key < 2**63 for key in keys)
    assert claim_key("A\0collect", "push") != claim_key("A", "collect")


def test_cycle_log_records_each_holding(tmp_path: Path, ledger: Ledger) -> None:
    claims = open_claims(Spool(tmp_path), None, cycle_log=ledger, replica="host:1")
    with claims.hold("PEER", "collect") as claim:
        assert claim.cycle_id is not None
        (running,) = ledger.cycles("PEER", "collect")
        assert running.ended_at is None and running.replica == "host:1"
        claim.result = "ok: 3 files"
    with pytest.raises(RuntimeError), claims.hold("PEER", "collect"):
        raise RuntimeError("peer went away")
    with claims.hold("PEER", "collect"), pytest.raises(ClaimBusy), claims.hold("PEER", "collect"):
        pass  # a refused claim ran nothing: no row
    rows = ledger.cycles("PEER", "collect")
    assert [r.result for r in rows] == ["ok: 3 files", "failed: RuntimeError: peer went away", "ok"]
    assert_no_overlap(rows)
    assert ledger.cycles("PEER", "push") == []
    assert len(ledger.cycles()) == 3
    assert ledger.prune_cycles(utc_now() + timedelta(seconds=1)) == 3
    assert ledger.cycles() == []


def test_overlap_check_catches_overlaps(tmp_path: Path, ledger: Ledger) -> None:
    first = ledger.cycle_started("P", "push", "a")
    second = ledger.cycle_started("P", "push", "b")
    ledger.cycle_ended(first, "ok")
    ledger.cycle_ended(second, "ok")
    assert not ledger.cycle_ended(second, "again")  # closed once
    with pytest.raises(AssertionError, match="overlapping"):
        assert_no_overlap(ledger.cycles("P", "push"))


async def test_hold_async_releases_after_cancellation(tmp_path: Path) -> None:
    claims = LocalClaims(Spool(tmp_path))

    async def hold_forever() -> None:
        async with hold_async(claims, "PEER", "push"):
            await asyncio.sleep(3600)

    task = asyncio.create_task(hold_forever())
    await asyncio.sleep(0.2)
    with pytest.raises(ClaimBusy):
        async with hold_async(claims, "PEER", "push"):
            pass
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with hold_async(claims, "PEER", "push"):
        pass


class _NoLog:
    def cycle_started(self, peer: str, kind: str, replica: str) -> int:
        return 0

    def cycle_ended(self, cycle_id: int, result: str) -> object:
        return None
