"""The push cycle of a 504 peer: each file in ``sending/`` as one signed ``put``.

The v2.3 :class:`~concentrador.client.push.Pusher` does everything around the
call, and this subclass shares it: which files are due (``sending/`` and the
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
from collections.abc import Callable
from datetime import datetime

from concentrador.client.cycle import utc_now
from concentrador.client.iec62325.session import Iec62325Session
from concentrador.client.progress import Progress
from concentrador.client.push import OutgoingFile, Pusher
from concentrador.client.retry_policy import Action
from concentrador.config.model import PeerConfig
from concentrador.protocol import PushResult
from concentrador.protocol.iec62325.wire import MAX_FILE_SIZE
from concentrador.spool.layout import PeerSpool
from concentrador.spool.ledger import Ledger

__all__ = ["Iec62325Pusher"]

log = logging.getLogger(__name__)


class Iec62325Pusher(Pusher):
    """Runs one push cycle of one 504 peer."""

    def __init__(
        self,
        session: Iec62325Session,
        peer: PeerConfig,
        peer_spool: PeerSpool,
        ledger: Ledger,
        *,
        retries: int,
        retry_delay: float,
        now: Callable[[], datetime] = utc_now,
        progress: Progress | None = None,
    ) -> None:
        # The v2.3 session slot stays empty (a misuse fails loudly); calls go
        # through ``self.iec``.
        super().__init__(
            None,  # type: ignore[arg-type]
            peer,
            peer_spool,
            ledger,
            retries=retries,
            retry_delay=retry_delay,
            now=now,
            progress=progress,
        )
        self.iec = session

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
        await self.iec.put_file(outgoing.original, outgoing.paths, self.progress.advance)
        return PushResult.STORED
