"""The push cycle (CPCSCC.md §4.5): send what waits in ``sending/``, block by block.

Every file of a push peer waits in ``sending/`` as published by the
:class:`~concentrador.spool.outbound.publisher.Publisher` (compressed, cut into
``NAME.k_n`` blocks when large), with its MD5 in the ledger. For each file
that is due (no retry scheduled in the future):

* its blocks are sent in order with enviarFichero, over the cycle's one
  connection, each read from disk as it goes out;
* after every answer :func:`~concentrador.client.retry_policy.decide` says
  what next: the next block, a retry later (state in the ledger, so it
  survives restarts), or escalation;
* the file counts as delivered only when *every* block was answered 0 (or 6):
  then all of its blocks move to ``delivered/``;
* escalation moves the file's blocks to ``failed/`` with ``NAME.reason``,
  logs an ERROR and counts it in the status; nothing is ever deleted.

A retry re-sends the file from its first block: a receiver answers an
identical block again with 0 (it stores idempotently), and restarting from a
known point is simpler to reason about than per-block bookkeeping.

A connection error is counted against the file that was being sent, then
ends the cycle: the other files would only fail the same way.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from concentrador.client.cycle import PeerCycle, utc_now
from concentrador.client.errors import (
    AuthenticationRefused,
    ClientError,
    PeerConnectionError,
    PeerFaultError,
    PeerProtocolError,
)
from concentrador.client.progress import Progress
from concentrador.client.retry_policy import Action, Decision, Outcome, decide
from concentrador.client.session import PeerSession
from concentrador.config.model import PeerConfig
from concentrador.protocol import parse_block_name
from concentrador.spool.actions import PUSH_REASON_PREFIX, ActionRefused, requeue_failed
from concentrador.spool.aside import move_aside, move_with_reason
from concentrador.spool.durable import file_md5
from concentrador.spool.layout import PeerSpool, SpoolState
from concentrador.spool.ledger import Ledger
from concentrador.spool.locks import peer_lock

__all__ = [
    "KV_FAILED_COUNT",
    "OutgoingFile",
    "PushCycle",
    "PushSummary",
    "Pusher",
    "RetryRefused",
    "pending_files",
    "requeue_failed",
]

log = logging.getLogger(__name__)

_S = TypeVar("_S")  # the session: v2.3 PeerSession or the 504 Iec62325Session

KV_FAILED_COUNT = "push_failed_count"
# A failed file is retried through spool/actions.py (the CLI and the console
# share it); these names stay importable from here.
RetryRefused = ActionRefused


@dataclass(frozen=True)
class OutgoingFile:
    """One file waiting in ``sending/``: its name and its blocks in order."""

    original: str
    paths: tuple[Path, ...]
    """The block files in order 1..n, or the one whole file."""
    problem: str | None = None
    """Why it cannot be sent as it is (a block missing); it is escalated."""

    @property
    def size(self) -> int:
        return sum(p.stat().st_size for p in self.paths if p.exists())


def pending_files(peer_spool: PeerSpool) -> list[OutgoingFile]:
    """What waits in ``sending/``, grouped per original file, sorted by name."""
    whole: dict[str, Path] = {}
    blocks: dict[str, dict[int, tuple[int, Path]]] = {}
    for path in peer_spool.files(SpoolState.SENDING):
        block = parse_block_name(path.name)
        if block is None:
            whole[path.name] = path
        else:
            blocks.setdefault(block.original, {})[block.index] = (block.count, path)
    files = [OutgoingFile(name, (path,)) for name, path in whole.items()]
    for original, found in blocks.items():
        counts = {count for count, _ in found.values()}
        ordered = tuple(found[k][1] for k in sorted(found))
        problem = None
        if len(counts) != 1 or len(found) != next(iter(counts)):
            missing = sorted(set(range(1, max(counts) + 1)) - set(found))
            problem = f"blocks missing from sending/: {missing[:10]} of {max(counts)}"
        files.append(OutgoingFile(original, ordered, problem))
    return sorted(files, key=lambda f: f.original)


@dataclass
class PushSummary:
    peer: str
    delivered: list[str] = field(default_factory=list)
    retrying: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    not_due: list[str] = field(default_factory=list)
    blocks_sent: int = 0
    bytes: int = 0

    def line(self) -> str:
        parts = [f"{len(self.delivered)} delivered"]
        if self.retrying:
            parts.append(f"{len(self.retrying)} to retry")
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        if self.not_due:
            parts.append(f"{len(self.not_due)} waiting for their retry time")
        parts.append(f"{self.blocks_sent} block(s) sent ({self.bytes} bytes)")
        return ", ".join(parts)


class PushCycle(PeerCycle[_S]):
    """One push cycle of one peer, whatever its profile: what is due, the retry
    policy per error class, delivery and escalation. How one file travels is
    the profile's :meth:`_push_file` (:class:`Pusher` for CPCSCC v2.3,
    ``Iec62325Pusher`` for IEC 62325-504)."""

    def __init__(
        self,
        session: _S,
        peer: PeerConfig,
        peer_spool: PeerSpool,
        ledger: Ledger,
        *,
        retries: int,
        retry_delay: float,
        now: Callable[[], datetime] = utc_now,
        progress: Progress | None = None,
    ) -> None:
        super().__init__(
            session, peer, peer_spool, ledger, retries=retries, now=now, progress=progress
        )
        self.retry_delay = retry_delay
        self.summary = PushSummary(peer.id)

    async def run(self) -> PushSummary:
        files = await asyncio.to_thread(pending_files, self.spool)
        due = []
        for outgoing in files:
            state = await asyncio.to_thread(self.ledger.push_state, self.peer_id, outgoing.original)
            if state is not None and state.next_attempt_at and state.next_attempt_at > self.now():
                self.summary.not_due.append(outgoing.original)
            else:
                due.append(outgoing)
        sizes = await asyncio.to_thread(lambda: [f.size for f in due])
        self.progress.plan(len(due), sum(sizes))
        for outgoing in due:
            await self._push_file(outgoing)
        return self.summary

    async def _push_file(self, outgoing: OutgoingFile) -> None:
        """Deliver one file (or block set), or decide what to do with it: the profile's part."""
        raise NotImplementedError

    async def _attempt(
        self, call: Awaitable[int], size: Callable[[], int]
    ) -> tuple[Outcome, ClientError | None]:
        """Await one push call (its ``codigo``); the outcome and the error to end the
        cycle with, if any. ``size`` gives the bytes it sent, once it succeeded."""
        try:
            codigo = await call
        except AuthenticationRefused as exc:
            return Outcome(fault=exc.fault), exc
        except PeerFaultError as exc:
            return Outcome(fault=exc.fault), None
        except PeerConnectionError as exc:
            return Outcome(connection_error=str(exc)), exc
        except PeerProtocolError as exc:
            return Outcome(protocol_error=str(exc)), None
        self.summary.blocks_sent += 1
        self.summary.bytes += await asyncio.to_thread(size)
        return Outcome(codigo=codigo), None

    async def _decide(self, original: str, outcome: Outcome) -> tuple[Decision, int]:
        """The retry policy's decision on ``outcome``, and which failed attempt it would be."""
        state = await asyncio.to_thread(self.ledger.push_state, self.peer_id, original)
        failed_attempts = (state.attempts if state else 0) + 1
        decision = decide(
            outcome,
            failed_attempts=failed_attempts,
            retries=self.retries,
            retry_delay=self.retry_delay,
            now=self.now(),
        )
        return decision, failed_attempts

    async def _not_accepted(
        self,
        original: str,
        decision: Decision,
        failed_attempts: int,
        what: str,
        error: ClientError | None,
        *,
        call: str,
        logged: str | None = None,
    ) -> None:
        """Retry later or escalate; then end the cycle if the connection is gone.

        ``what`` is the error recorded; ``logged`` (default ``what``) what the log says.
        """
        if decision.action is Action.RETRY:
            await asyncio.to_thread(
                self.ledger.record_push_attempt,
                self.peer_id,
                original,
                error=what,
                next_attempt_at=decision.next_attempt_at,
            )
            log.warning(
                "%s: %s of %s failed (attempt %d of %d), retry at %s: %s",
                self.peer_id, call, original, failed_attempts, self.retries + 1,
                decision.next_attempt_at, what if logged is None else logged,
            )  # fmt: skip
            self.summary.retrying.append(original)
        else:
            await self._escalate(original, decision.reason, what)
        if error is not None:
            raise error  # connection lost / refused: the cycle ends here

    # -- end states -------------------------------------------------------------------------
    async def _deliver(self, outgoing: OutgoingFile, warnings: set[str]) -> None:
        await asyncio.to_thread(self._deliver_sync, outgoing)
        for warning in sorted(warnings):
            log.warning("%s: %s: %s", self.peer_id, outgoing.original, warning)
        log.info(
            "%s: delivered %s (%d block(s))", self.peer_id, outgoing.original, len(outgoing.paths)
        )
        self.summary.delivered.append(outgoing.original)
        self.progress.file_done(outgoing.original, "delivered")

    def _deliver_sync(self, outgoing: OutgoingFile) -> None:
        with peer_lock(self.spool):
            for path in outgoing.paths:
                if path.exists():
                    move_aside(path, self.spool.dir(SpoolState.DELIVERED))
            blocks = len(outgoing.paths)
            self.ledger.set_state(
                self.peer_id,
                outgoing.original,
                SpoolState.DELIVERED.value,
                detail=f"pushed: {blocks} block(s) answered codigo 0",
            )
            self.ledger.clear_push_state(self.peer_id, outgoing.original)

    async def _escalate(self, original: str, reason: str, last_error: str | None) -> None:
        await asyncio.to_thread(self._escalate_sync, original, reason, last_error)
        log.error("%s: push of %s escalated to failed/: %s", self.peer_id, original, reason)
        self.summary.failed.append(original)

    def _escalate_sync(self, original: str, reason: str, last_error: str | None) -> None:
        why = f"{PUSH_REASON_PREFIX}{original} to {self.peer_id} escalated: {reason}"
        with peer_lock(self.spool):
            for outgoing in pending_files(self.spool):
                if outgoing.original != original:
                    continue
                for path in outgoing.paths:
                    move_with_reason(
                        path,
                        self.spool.dir(SpoolState.FAILED),
                        self.spool.work_dir,
                        why,
                        last_error=last_error,
                        now=self.now(),
                    )
            self.ledger.set_state(self.peer_id, original, SpoolState.FAILED.value, detail=reason)
            self.ledger.clear_push_state(self.peer_id, original)
            count = int(self.ledger.status(self.peer_id).get(KV_FAILED_COUNT, "0") or 0)
            self.ledger.set_status(self.peer_id, KV_FAILED_COUNT, str(count + 1))


class Pusher(PushCycle[PeerSession]):
    """Runs one push cycle of one CPCSCC v2.3 peer: enviarFichero per file or block."""

    async def _push_file(self, outgoing: OutgoingFile) -> None:
        original = outgoing.original
        if outgoing.problem is not None:
            await self._escalate(original, outgoing.problem, None)
            return
        warnings: set[str] = set()
        for path in outgoing.paths:
            try:
                md5 = await asyncio.to_thread(self._md5_of, path)
            except FileNotFoundError:
                log.info("%s: %s left sending/ meanwhile; skipped", self.peer_id, path.name)
                return
            outcome, error = await self._attempt(
                self.session.enviar_fichero(path.name, path, md5, self.progress.advance),
                functools.partial(_size_of, path),
            )
            decision, failed_attempts = await self._decide(original, outcome)
            if decision.action is Action.ACCEPTED:
                if decision.warning:
                    warnings.add(decision.warning)
                continue
            what = f"{path.name}: {decision.reason}"
            await self._not_accepted(original, decision, failed_attempts, what, error, call="push")
            return
        await self._deliver(outgoing, warnings)

    def _md5_of(self, path: Path) -> str:
        entry = self.ledger.lookup(self.peer_id, path.name)
        if entry is not None and path.stat().st_size == entry.size:
            return entry.md5  # computed once at publication
        return file_md5(path)[0]

    # -- one call and what follows it (shared with the 504 Iec62325Pusher) -----------------


def _size_of(path: Path) -> int:
    return path.stat().st_size
