"""The client's jobs on the daemon's APScheduler ``AsyncIOScheduler``.

:func:`schedule_peer_jobs` is what the daemon calls at start-up and after
every config reload (``schedule_peer_jobs(daemon.scheduler, config, runner)``):

* ``collect:<PEER>``: a cron job from the peer's ``collect`` crontab, in the
  node's time zone, for every peer with a ``url`` and a ``collect``;
* ``push:<PEER>``: a periodic push sweep for every ``deliver = "push"`` peer.
  It sends new files and the retries that have come due; the daemon calls
  :func:`trigger_push` right after a publish pass for a faster reaction.

Jobs never overlap themselves (``max_instances=1``, ``coalesce``), and the
cross-process cycle lock keeps a concurrent CLI cycle out. A peer that
answered ``Client.Autenticacion`` is skipped until the next call of
:func:`schedule_peer_jobs` (the reload). ``next_run_at`` is written to the
ledger's status facts after scheduling and after each run.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from concentrador.client.collect import CollectionSummary
from concentrador.client.errors import ClientError, CycleBusy
from concentrador.client.push import PushSummary
from concentrador.client.runner import ClientRunner
from concentrador.config.model import Config
from concentrador.daemon.jobs import add_interval_job

__all__ = [
    "COLLECT_PREFIX",
    "PUSH_PREFIX",
    "collect_trigger",
    "crontab_day_of_week",
    "next_collect_time",
    "schedule_peer_jobs",
    "trigger_push",
]

log = logging.getLogger(__name__)

COLLECT_PREFIX = "collect:"
PUSH_PREFIX = "push:"
DEFAULT_PUSH_SWEEP_SECONDS = 30.0
KV_NEXT_RUN = "next_run_at"


_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def crontab_day_of_week(field: str) -> str:
    """A crontab day-of-week field in APScheduler 3 terms.

    Why: APScheduler 3 numbers days from Monday = 0, while crontab (and
    ``docs/configuration.md``) numbers them from Sunday = 0 (7 is Sunday too),
    and ``CronTrigger.from_crontab`` passes the numbers through unchanged:
    ``1-5`` would mean Tuesday to Saturday. Numbers are therefore expanded to
    day names, which both read alike; names pass through.
    """
    items = []
    for item in field.split(","):
        body, _, step_text = item.partition("/")
        if not any(c.isdigit() for c in body) and (body != "*" or not step_text):
            items.append(item)  # "*", names and name ranges mean the same to both
            continue
        step = int(step_text) if step_text else 1
        if body == "*":
            first, last = 0, 6
        elif "-" in body:
            first_text, last_text = body.split("-", 1)
            first, last = int(first_text), int(last_text)
        else:
            first = int(body)
            last = 6 if step_text else first
        if not (0 <= first <= 7 and 0 <= last <= 7 and first <= last and step >= 1):
            raise ValueError(f"bad day-of-week {item!r} in crontab")
        items.extend(_CRON_DAYS[day % 7] for day in range(first, last + 1, step))
    return ",".join(dict.fromkeys(items))


def collect_trigger(expression: str, timezone: ZoneInfo) -> CronTrigger:
    """The trigger of a peer's ``collect`` crontab (5 fields, node time zone).

    Standard crontab numbering of the day of week (see
    :func:`crontab_day_of_week`). Like APScheduler, and unlike Vixie cron, a
    job restricted by both day of month and day of week needs both to match.
    """
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"crontab {expression!r} must have 5 fields")
    minute, hour, day, month, day_of_week = fields
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # APScheduler warns about pytz-less zones
        return CronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=crontab_day_of_week(day_of_week),
            timezone=timezone,
        )


def next_collect_time(config: Config, peer_id: str, now: datetime) -> datetime | None:
    """When the peer's next collection is due by its crontab (no daemon needed)."""
    peer = config.peer_by_id(peer_id)
    if peer is None or not peer.url or not peer.collect:
        return None
    return collect_trigger(peer.collect, config.node.timezone).get_next_fire_time(None, now)


def schedule_peer_jobs(
    scheduler: AsyncIOScheduler,
    config: Config,
    runner: ClientRunner,
    *,
    push_sweep_seconds: float = DEFAULT_PUSH_SWEEP_SECONDS,
) -> list[str]:
    """(Re)create the client jobs for ``config``; returns their ids.

    Jobs of peers that left the config are removed; the runner takes the new
    config (which also lifts authentication stops).
    """
    runner.apply_config(config)
    for job in scheduler.get_jobs():
        if job.id.startswith((COLLECT_PREFIX, PUSH_PREFIX)):
            job.remove()
    ids: list[str] = []
    now = datetime.now(config.node.timezone)
    for peer in config.peers:
        if not peer.url:
            continue
        if peer.collect:
            job_id = f"{COLLECT_PREFIX}{peer.id}"
            trigger = collect_trigger(peer.collect, config.node.timezone)
            scheduler.add_job(
                _scheduled_collect,
                trigger,
                args=[scheduler, runner, peer.id],
                id=job_id,
                name=job_id,
                replace_existing=True,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=60,
            )
            _record_next_run(runner, peer.id, trigger.get_next_fire_time(None, now))
            ids.append(job_id)
        if peer.deliver == "push":
            job_id = f"{PUSH_PREFIX}{peer.id}"
            add_interval_job(
                scheduler,
                job_id,
                _push_job(runner, peer.id),
                push_sweep_seconds,
                first_run_in=1.0,
            )
            ids.append(job_id)
    log.info("client schedule: %s", ", ".join(ids) or "no peers to call")
    return ids


def trigger_push(scheduler: AsyncIOScheduler, peer_id: str) -> bool:
    """Run the peer's push job as soon as possible (it never overlaps itself)."""
    job = scheduler.get_job(f"{PUSH_PREFIX}{peer_id}")
    if job is None:
        return False
    job.modify(next_run_time=datetime.now(job.trigger.timezone) + timedelta(milliseconds=10))
    return True


def _record_next_run(runner: ClientRunner, peer_id: str, when: datetime | None) -> None:
    text = when.isoformat(timespec="seconds") if when is not None else ""
    runner.ledger.set_status(peer_id, KV_NEXT_RUN, text)


async def _scheduled_collect(
    scheduler: AsyncIOScheduler, runner: ClientRunner, peer_id: str
) -> None:
    try:
        await _guarded(runner, peer_id, "collection", runner.collect)
    finally:
        job = scheduler.get_job(f"{COLLECT_PREFIX}{peer_id}")
        when = job.next_run_time if job is not None else None
        await asyncio.to_thread(_record_next_run, runner, peer_id, when)


def _push_job(runner: ClientRunner, peer_id: str) -> Callable[[], Awaitable[None]]:
    async def push() -> None:
        await _guarded(runner, peer_id, "push", runner.push)

    return push


async def _guarded(
    runner: ClientRunner,
    peer_id: str,
    what: str,
    cycle: Callable[[str], Awaitable[CollectionSummary | PushSummary]],
) -> None:
    """Run a cycle from the schedule: never raise into APScheduler, log one line."""
    if peer_id in runner.blocked:
        log.debug("%s: %s skipped: %s", peer_id, what, runner.blocked[peer_id])
        return
    try:
        result = await cycle(peer_id)
    except CycleBusy as exc:
        log.info("%s skipped: %s", what, exc)
    except ClientError as exc:
        # AuthenticationRefused has already been logged loudly by the runner.
        log.error("%s cycle failed: %s", what, exc)
    except Exception:
        log.exception("%s: %s cycle crashed", peer_id, what)
    else:
        log.info("%s: %s cycle: %s", peer_id, what, result.line())
