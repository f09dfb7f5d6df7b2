"""Work claims across replicas: PostgreSQL advisory locks, with a real server.

Every replica of a test is its own :class:`AdvisoryClaims` (its own
connections, as separate processes would have); the kill -9 tests use real
processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from concentrador.client.errors import CycleBusy
from concentrador.client.runner import ClientRunner
from concentrador.client.session import PeerSession
from concentrador.config.model import Config, PeerConfig
from concentrador.daemon.schedules import schedule_peer_jobs
from concentrador.spool.claims import ClaimBusy, open_claims
from concentrador.spool.claims.advisory import AdvisoryClaims
from concentrador.spool.layout import Spool, SpoolState
from concentrador.spool.ledger import Ledger
from tests.client.conftest import (  # noqa: F401  (fixtures)
    MADRID,
    SERVER_ID,
    bz2_payload,
    client_config,
    fake_peer,
    pki,
)
from tests.spool.claim_helpers import assert_no_overlap, holder_process


def advisory_locks_held(url: str) -> int:
    """How many advisory locks anyone holds in the test's database."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()
    return int(row[0]) if row else 0


@contextlib.contextmanager
def advisory(url: str, replica: str) -> Iterator[AdvisoryClaims]:
    claims = AdvisoryClaims(url, replica=replica)
    try:
        yield claims
    finally:
        claims.close()


def test_one_holder_per_peer_and_kind(pg_url: str) -> None:
    with advisory(pg_url, "a:1") as a, advisory(pg_url, "b:2") as b:
        with a.hold("PEER", "collect"):
            busy = r"PEER: a collect cycle is already running \(by a:1\)"
            with pytest.raises(ClaimBusy, match=busy), b.hold("PEER", "collect"):
                pass
            # The same replica twice (two tasks): refused too, each claim has its session.
            with pytest.raises(ClaimBusy), a.hold("PEER", "collect"):
                pass
            with b.hold("PEER", "push"), b.hold("OTHER", "collect"):
                assert advisory_locks_held(pg_url) == 3
        with b.hold("PEER", "collect"):
            pass
    assert advisory_locks_held(pg_url) == 0


def test_open_claims_picks_advisory_locks_for_a_postgresql_ledger(
    pg_url: str, tmp_path: Path
) -> None:
    claims = open_claims(Spool(tmp_path), pg_url)
    try:
        assert isinstance(claims, AdvisoryClaims)
        with claims.hold("PEER", "publish"):
            assert advisory_locks_held(pg_url) == 1
            assert not (tmp_path / "PEER" / ".publish.lock").exists()  # no lock files
    finally:
        claims.close()


def test_kill_9_of_a_replica_releases_its_claims(pg_url: str, tmp_path: Path) -> None:
    with (
        advisory(pg_url, "survivor") as survivor,
        holder_process(tmp_path, "PEER", "publish", pg_url) as child,
    ):
        with pytest.raises(ClaimBusy, match=r"\(by holder\)"), survivor.hold("PEER", "publish"):
            pass
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        # The server notices the closed connection at once; allow it a moment.
        deadline = time.monotonic() + 10
        while True:
            try:
                with survivor.hold("PEER", "publish") as claim:
                    assert claim.replica == "survivor"
                break
            except ClaimBusy:
                assert time.monotonic() < deadline, "the dead replica's claim was not released"
                time.sleep(0.05)
    assert advisory_locks_held(pg_url) == 0


def test_cycle_log_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    with Ledger(url=pg_url) as ledger:
        claims = open_claims(Spool(tmp_path), pg_url, cycle_log=ledger, replica="r1")
        try:
            with claims.hold("PEER", "push") as claim:
                claim.result = "ok: 2 pushed"
            with pytest.raises(OSError), claims.hold("PEER", "push"):
                raise OSError("disk full")
        finally:
            claims.close()
        rows = ledger.cycles("PEER", "push")
        assert [(r.replica, r.result) for r in rows] == [
            ("r1", "ok: 2 pushed"),
            ("r1", "failed: OSError: disk full"),
        ]
        assert_no_overlap(rows)


@contextlib.asynccontextmanager
async def slow_session(config: Config, peer: PeerConfig) -> AsyncIterator[PeerSession]:
    """A real session that takes a while to open: the two cycles surely overlap."""
    await asyncio.sleep(0.5)
    async with PeerSession.open(config, peer) as session:
        yield session


async def test_two_replicas_whose_schedules_fire_together_run_one_cycle(
    fake_peer: Any,  # noqa: F811
    pki: Any,  # noqa: F811
    pg_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="concentrador.daemon.schedules")
    # One shared spool folder, one PostgreSQL ledger, two replicas with the same config.
    config = client_config(pki, tmp_path / "spool", fake_peer.url, collect="* * * * *")
    fake_peer.peer.files = {"A.bz2": bz2_payload(1), "B.bz2": bz2_payload(2)}
    replicas: list[tuple[Ledger, ClientRunner, AsyncIOScheduler]] = []
    try:
        for name in ("replica-a:1", "replica-b:2"):
            ledger = Ledger(url=pg_url)
            claims = open_claims(Spool(config.node.spool), pg_url, cycle_log=ledger, replica=name)
            runner = ClientRunner(
                config,
                ledger,
                claims=claims,
                session_factory=slow_session,  # type: ignore[arg-type]
            )
            replicas.append((ledger, runner, AsyncIOScheduler(timezone=MADRID)))
            schedule_peer_jobs(replicas[-1][2], config, runner)
        # Both crons fire in the same second (brought forward from the next minute).
        fire_at = datetime.now(MADRID) + timedelta(milliseconds=300)
        for _ledger, _runner, scheduler in replicas:
            scheduler.start()
            scheduler.get_job(f"collect:{SERVER_ID}").modify(next_run_time=fire_at)
        ledger = replicas[0][0]
        deadline = asyncio.get_running_loop().time() + 20
        while not any(r.ended_at for r in ledger.cycles(SERVER_ID, "collect")):
            assert asyncio.get_running_loop().time() < deadline, "no cycle ran"
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # time for a second cycle, were there one
        rows = ledger.cycles(SERVER_ID, "collect")
        assert len(rows) == 1, rows
        assert rows[0].result is not None and rows[0].result.startswith("ok:")
        assert_no_overlap(rows)
        assert sorted(fake_peer.peer.fetches.elements()) == ["A.bz2", "B.bz2"]  # fetched once
        assert sorted(name for name, _ in fake_peer.peer.confirmations) == ["A.bz2", "B.bz2"]
        inbox = Spool(config.node.spool).peer(SERVER_ID).files(SpoolState.INBOX)
        assert sorted(p.name for p in inbox) == ["A.bz2", "B.bz2"]
        # The other replica did fire, and found the claim taken.
        skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
        assert len(skipped) == 1 and "already running (by replica-" in skipped[0], skipped
    finally:
        for ledger, runner, scheduler in replicas:
            if scheduler.running:
                scheduler.shutdown(wait=False)
            runner.claims.close()
            ledger.close()
    assert advisory_locks_held(pg_url) == 0


async def test_runner_reports_a_cycle_held_by_another_replica(
    pki: Any,  # noqa: F811
    pg_url: str,
    tmp_path: Path,
) -> None:
    config = client_config(pki, tmp_path / "spool", "http://127.0.0.1:9/")
    with Ledger(url=pg_url) as ledger, advisory(pg_url, "other:7") as other:
        runner = ClientRunner(config, ledger, claims=AdvisoryClaims(pg_url, replica="me:1"))
        try:
            with (
                other.hold(SERVER_ID, "collect"),
                pytest.raises(CycleBusy, match=r"already running \(by other:7\)"),
            ):
                await runner.collect(SERVER_ID)
        finally:
            runner.claims.close()


def test_two_daemons_on_one_spool_publish_an_outbox_once(pg_url: str, tmp_path: Path) -> None:
    from dataclasses import replace

    from concentrador.config.model import LedgerConfig
    from concentrador.daemon.services import SpoolServices
    from tests.spool.test_claims_daemon import services_config

    config = replace(services_config(tmp_path), ledger=LedgerConfig(url=pg_url))
    a = SpoolServices(config, settle_seconds=0)
    b = SpoolServices(config, settle_seconds=0)
    try:
        assert isinstance(a.claims.inner, AdvisoryClaims)  # type: ignore[attr-defined]
        peer = a.spool.peer("CREC")
        (peer.dir(SpoolState.OUTBOX) / "F1_0086_20240101_20240102.0").write_bytes(b"x;1\n" * 99)
        with a.claims.hold("CREC", "publish"):
            b.publish_pass("CREC")  # skipped (no loop bound: no retry either)
            assert b.ledger.entries_for("CREC") == []
        b.publish_pass("CREC")
        a.publish_pass("CREC")  # nothing left to publish
        (entry,) = a.ledger.entries_for("CREC")
        assert entry.name.startswith("F1_0086_20240101_20240102")
        rows = a.ledger.cycles("CREC", "publish")
        # A's held claim, B's pass, A's pass (one process: both are host:pid alike).
        assert [r.result for r in rows] == ["ok", "ok", "ok"]
        assert_no_overlap(rows)
    finally:
        a.close()
        b.close()
    assert advisory_locks_held(pg_url) == 0
