"""The client's jobs on APScheduler: crontabs from the config, and that they fire."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from concentrador.client.runner import ClientRunner
from concentrador.config import load_config
from concentrador.daemon.schedules import next_collect_time, schedule_peer_jobs, trigger_push
from concentrador.spool.layout import Spool, SpoolState
from concentrador.spool.ledger import Ledger
from tests.client.conftest import (
    MADRID,
    SERVER_ID,
    bz2_payload,
    client_config,
    write_client_toml,
)
from tests.client.test_push import queue


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


def test_crontab_from_the_config_file(pki: Any, tmp_path: Path) -> None:
    path = write_client_toml(
        pki, tmp_path, 'url = "https://localhost:8443/"\ncollect = "10,40 6-8 * * 1-5"'
    )
    config = load_config(path)
    friday = datetime(2024, 3, 1, 7, 41, tzinfo=MADRID)
    assert next_collect_time(config, "0086", friday) == datetime(2024, 3, 1, 8, 10, tzinfo=MADRID)
    evening = datetime(2024, 3, 1, 9, 0, tzinfo=MADRID)  # Friday after 08:40 -> Monday 06:10
    assert next_collect_time(config, "0086", evening) == datetime(2024, 3, 4, 6, 10, tzinfo=MADRID)


async def test_collect_job_fires_and_keeps_its_cron(
    fake_peer: Any, pki: Any, tmp_path: Path, client_ledger: Ledger
) -> None:
    config = client_config(pki, tmp_path / "client-spool", fake_peer.url, collect="*/5 * * * *")
    fake_peer.peer.files = {"A.bz2": bz2_payload(1)}
    runner = ClientRunner(config, client_ledger)
    scheduler = AsyncIOScheduler(timezone=MADRID)
    assert schedule_peer_jobs(scheduler, config, runner) == [f"collect:{SERVER_ID}"]
    scheduler.start()
    try:
        job = scheduler.get_job(f"collect:{SERVER_ID}")
        assert isinstance(job.trigger, CronTrigger)
        first = job.next_run_time
        assert first.minute % 5 == 0 and first.second == 0
        assert client_ledger.status(SERVER_ID)["next_run_at"] == first.isoformat()
        # Bring the real job forward instead of waiting minutes for the cron.
        job.modify(next_run_time=datetime.now(MADRID) + timedelta(milliseconds=100))
        await wait_for(lambda: fake_peer.peer.confirmations == [("A.bz2", 0)])
        await wait_for(
            lambda: "ok:" in client_ledger.status(SERVER_ID).get("last_cycle_result", "")
        )
        after = scheduler.get_job(f"collect:{SERVER_ID}").next_run_time
        assert after.minute % 5 == 0 and after.second == 0  # back on the crontab
    finally:
        scheduler.shutdown(wait=False)


async def test_blocked_peer_is_skipped_until_reload(
    fake_peer: Any, pki: Any, tmp_path: Path, client_ledger: Ledger
) -> None:
    config = client_config(pki, tmp_path / "client-spool", fake_peer.url, collect="* * * * *")
    runner = ClientRunner(config, client_ledger)
    scheduler = AsyncIOScheduler(timezone=MADRID)
    schedule_peer_jobs(scheduler, config, runner)
    runner.blocked[SERVER_ID] = "authentication refused"
    scheduler.start()
    try:
        job = scheduler.get_job(f"collect:{SERVER_ID}")
        job.modify(next_run_time=datetime.now(MADRID) + timedelta(milliseconds=50))
        await wait_for(lambda: scheduler.get_job(f"collect:{SERVER_ID}").next_run_time.second == 0)
        await asyncio.sleep(0.2)
        assert fake_peer.peer.headers == []  # never called
        schedule_peer_jobs(scheduler, config, runner)  # the reload
        assert runner.blocked == {}
    finally:
        scheduler.shutdown(wait=False)


async def test_push_job_and_trigger(
    fake_peer: Any, pki: Any, tmp_path: Path, client_ledger: Ledger
):
    config = client_config(pki, tmp_path / "client-spool", fake_peer.url, deliver="push")
    peer_spool = queue(config, client_ledger, "A.bz2", [bz2_payload(2)])
    runner = ClientRunner(config, client_ledger)
    scheduler = AsyncIOScheduler(timezone=MADRID)
    assert schedule_peer_jobs(scheduler, config, runner, push_sweep_seconds=3600) == [
        f"push:{SERVER_ID}"
    ]
    scheduler.start()
    try:
        assert trigger_push(scheduler, SERVER_ID)
        await wait_for(
            lambda: [p.name for p in peer_spool.files(SpoolState.DELIVERED)] == ["A.bz2"]
        )
        assert not trigger_push(scheduler, "OTHER")
    finally:
        scheduler.shutdown(wait=False)
    assert Spool(config.node.spool).peer(SERVER_ID).files(SpoolState.SENDING) == []


@pytest.mark.parametrize("collect", [None])
def test_no_url_no_jobs(pki: Any, tmp_path: Path, client_ledger: Ledger, collect: str | None):
    config = client_config(pki, tmp_path / "s", "http://127.0.0.1:9/", collect=collect)
    scheduler = AsyncIOScheduler(timezone=MADRID)
    assert schedule_peer_jobs(scheduler, config, ClientRunner(config, client_ledger)) == []


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("1-5", "mon,tue,wed,thu,fri"),
        ("0", "sun"),
        ("7", "sun"),
        ("5-7", "fri,sat,sun"),
        ("*/2", "sun,tue,thu,sat"),
        ("*", "*"),
        ("mon-fri", "mon-fri"),
        ("1,3,sat", "mon,wed,sat"),
    ],
)
def test_crontab_day_numbers_start_on_sunday(field: str, expected: str) -> None:
    from concentrador.daemon.schedules import crontab_day_of_week

    assert crontab_day_of_week(field) == expected
