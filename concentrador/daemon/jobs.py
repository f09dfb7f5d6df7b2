"""Running blocking spool work from the event loop: coalesced, bounded, joinable.

Everything the spool does (compressing, fsync, renames, SQLite) blocks, so
the daemon runs it in a bounded thread pool and never on the event loop.
Triggers come in bursts (the watcher reports every write of a file being
copied; a bulk drop is thousands of events), and two publish passes over the
same outbox at once would fight over the same files. :class:`CoalescingRunner`
therefore runs **one job per key at a time**; requests that arrive while a
job runs collapse into a single re-run once it ends.

The periodic jobs (sweeps, expiry, the CRL poll) live on an APScheduler
``AsyncIOScheduler`` owned by the daemon; :func:`add_interval_job` adds one
with the settings every such job needs. The client's collection crons and
push sweeps (:mod:`concentrador.daemon.schedules`) run on that same scheduler.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from datetime import datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

__all__ = ["CoalescingRunner", "add_interval_job"]

log = logging.getLogger(__name__)

Work = Callable[[], object]


class CoalescingRunner:
    """Runs blocking callables in ``executor``, one at a time per key.

    Must be used from the event loop's thread (use
    ``loop.call_soon_threadsafe`` to get there from another thread).
    """

    def __init__(self, executor: Executor, *, name: str) -> None:
        self._executor = executor
        self._name = name
        self._pending: dict[str, Work] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._closed = False

    @property
    def busy(self) -> bool:
        return bool(self._tasks or self._pending or self._timers)

    def request(self, key: str, work: Work) -> None:
        """Run ``work`` for ``key`` now, or once the running job for ``key`` ends.

        Of several requests made during one run only the last ``work`` runs:
        each request asks for "a fresh pass", not for an extra pass per event.
        """
        if self._closed:
            return
        self._pending[key] = work
        if key not in self._tasks:
            task = asyncio.get_running_loop().create_task(self._drain(key))
            self._tasks[key] = task

    def request_later(self, key: str, delay: float, work: Work) -> None:
        """Debounced :meth:`request`: a later call for ``key`` replaces the timer."""
        if self._closed:
            return
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()

        def fire() -> None:
            self._timers.pop(key, None)
            self.request(key, work)

        self._timers[key] = asyncio.get_running_loop().call_later(delay, fire)

    async def _drain(self, key: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            while (work := self._pending.pop(key, None)) is not None:
                try:
                    await loop.run_in_executor(self._executor, work)
                except Exception:
                    # One failed pass must not kill the runner: the next
                    # trigger or periodic sweep tries again.
                    log.exception("%s for %s failed", self._name, key)
        finally:
            # Same loop iteration as the last pop: no request can slip between.
            self._tasks.pop(key, None)

    async def wait_idle(self) -> None:
        """Wait until nothing runs, is pending or is timed (tests, benches)."""
        while self._tasks or self._timers:
            if self._tasks:
                await asyncio.gather(*self._tasks.values(), return_exceptions=True)
            else:
                await asyncio.sleep(0.01)

    async def close(self) -> None:
        """Refuse new work, drop what has not started, wait for what runs.

        A pass that already runs in a thread cannot be interrupted; waiting
        for it is what makes "worker threads joined" true, and every pass is
        crash-safe anyway should systemd lose patience first.
        """
        self._closed = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._pending.clear()
        running = list(self._tasks.values())
        if running:
            await asyncio.gather(*running, return_exceptions=True)


def add_interval_job(
    scheduler: AsyncIOScheduler,
    job_id: str,
    func: Callable[[], Awaitable[Any]],
    seconds: float,
    *,
    first_run_in: float | None = None,
) -> None:
    """Add (or replace) a periodic coroutine job.

    ``max_instances=1`` + ``coalesce``: a slow run is never overlapped by the
    next one, and runs missed while the machine was suspended collapse into
    one. ``first_run_in`` defaults to one interval (the start-up sequence has
    just done each job once).
    """
    trigger = IntervalTrigger(seconds=seconds)
    first = datetime.now(trigger.timezone) + timedelta(
        seconds=seconds if first_run_in is None else first_run_in
    )
    scheduler.add_job(
        func,
        trigger,
        id=job_id,
        name=job_id,
        replace_existing=True,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=max(1, int(seconds)),
        next_run_time=first,
    )
