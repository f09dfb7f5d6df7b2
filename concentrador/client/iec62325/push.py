"""The push cycle of a 504 peer: each file in ``sending/`` as one signed ``put``.

:class:`~concentrador.client.push.PushCycle` does everything around the call,
for both profiles: which files are due (``sending/`` and the
ledger's retry state), delivering (to ``delivered/``, ledger state), escalating
(to ``failed/`` with ``NAME.reason``). Only the call differs: 504 has no
blocks, so a file the publisher cut into ``NAME.k_n`` blocks is put whole
under its original name, its blocks streamed one after the other
(:mod:`.upload`).

The answer goes through the same retry policy
(:func:`~concentrador.client.retry_policy.decide`): ``Reply OK`` is codigo 0;
a fault is ``Client.<code>`` (escalate) or ``Server.<code>`` (retry later),
see :mod:`.faults`; a connection error or unreadable answer retries later.
Exactly once: a put whose answer was lost is put again after
``retry_delay``, and the receiver stores an identical file idempotently.
"""

from __future__ import annotations

import asyncio
import logging

from concentrador.client.iec62325.session import Iec62325Session
from concentrador.client.push import OutgoingFile, PushCycle
from concentrador.client.retry_policy import Action
from concentrador.protocol import PushResult
from concentrador.protocol.iec62325.wire import MAX_FILE_SIZE

__all__ = ["Iec62325Pusher"]

log = logging.getLogger(__name__)


class Iec62325Pusher(PushCycle[Iec62325Session]):
    """Runs one push cycle of one 504 peer: one put per file (a block set put whole)."""

    async def _push_file(self, outgoing: OutgoingFile) -> None:
        original = outgoing.original
        if outgoing.problem is not None:
            await self._escalate(original, outgoing.problem, None)
            return
        try:
            size = await asyncio.to_thread(lambda: sum(p.stat().st_size for p in outgoing.paths))
        except FileNotFoundError:
            log.info("%s: %s left sending/ meanwhile; skipped", self.peer_id, original)
            return
        if size > MAX_FILE_SIZE:
            why = f"{size} bytes: over the {MAX_FILE_SIZE}-byte limit of a 504 put"
            await self._escalate(original, why, None)
            return
        outcome, error = await self._attempt(self._put(outgoing), lambda: size)
        decision, failed_attempts = await self._decide(original, outcome)
        if decision.action is Action.ACCEPTED:
            await self._deliver(outgoing, set())
            return
        what = f"{original}: {decision.reason}"
        await self._not_accepted(
            original, decision, failed_attempts, what, error, call="put", logged=decision.reason
        )

    async def _put(self, outgoing: OutgoingFile) -> int:
        """One put; a ``Reply OK`` is codigo 0 (stored)."""
        await self.session.put_file(outgoing.original, outgoing.paths, self.progress.advance)
        return PushResult.STORED
