"""The one interface of work claiming: who may run a peer's job right now.

A *claim* is the right to run one kind of job for one peer: a ``collect`` or
``push`` cycle, a ``publish`` pass over its outbox, a ``rebuild`` pass over
its ``partial/`` folder, an ``expiry`` pass. At most one process (one replica,
one CLI command) holds a given (peer, kind) claim at a time. Claims never
wait: a job that finds its claim taken is skipped (the holder is doing the
same work) and reported with :class:`ClaimBusy`.

Two implementations, chosen by the ledger's URL (:func:`open_claims` in the
package): ``flock`` files in the peer's folder for one host (SQLite), and
PostgreSQL advisory locks for replicas on several hosts. Both lose a claim
when their holder dies, whatever killed it, so nothing is ever left claimed.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Final, Protocol

__all__ = ["KINDS", "Claim", "ClaimBusy", "Claims", "check_kind", "hold_async"]

KINDS: Final = ("collect", "push", "publish", "rebuild", "expiry")
"""Every kind of claimed job; a typo must fail loudly, not claim a lock nobody else takes."""

_CYCLES: Final = ("collect", "push")


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown claim kind {kind!r}; expected one of {', '.join(KINDS)}")
    return kind


class ClaimBusy(Exception):
    """Another process or replica holds this (peer, kind) claim.

    ``str()`` is one line: ``PEER: a collect cycle is already running (pid
    4242); try again later``; :attr:`reason` is the same without the peer.
    """

    def __init__(self, peer: str, kind: str, holder: str = "") -> None:
        what = "cycle" if kind in _CYCLES else "pass"
        self.reason = f"a {kind} {what} is already running{holder}; try again later"
        super().__init__(f"{peer}: {self.reason}")
        self.peer = peer
        self.kind = kind


@dataclass
class Claim:
    """One held claim, as :meth:`Claims.hold` yields it.

    The job may set :attr:`result` (one line) for the cycle log; left None it
    is recorded as ``ok``, or as the exception the job ended with.
    """

    peer: str
    kind: str
    replica: str
    cycle_id: int | None = None
    result: str | None = None


class Claims(Protocol):
    """Per-(peer, kind) mutual exclusion across processes and replicas."""

    @property
    def replica(self) -> str:
        """Who claims: ``host:pid`` (what the cycle log and busy messages show)."""
        ...

    def hold(self, peer: str, kind: str) -> AbstractContextManager[Claim]:
        """Hold the claim for the ``with`` block; raise :class:`ClaimBusy` at once if taken.

        Blocking (a file lock, or a round trip to PostgreSQL): from the event
        loop use :func:`hold_async`.
        """
        ...

    def close(self) -> None:
        """Release what this object owns (connections); held claims go with them."""
        ...


@contextlib.asynccontextmanager
async def hold_async(claims: Claims, peer: str, kind: str) -> AsyncIterator[Claim]:
    """:meth:`Claims.hold` from the event loop: taking and releasing run in a thread."""
    held = claims.hold(peer, kind)
    taking = asyncio.ensure_future(asyncio.to_thread(held.__enter__))
    try:
        claim = await asyncio.shield(taking)
    except asyncio.CancelledError:
        # The thread cannot be stopped: once it has taken the claim, give it
        # back, or the peer's job would stay claimed until this process exits.
        taking.add_done_callback(lambda done: _release_later(done, held))
        raise
    try:
        yield claim
    except BaseException as exc:
        await asyncio.to_thread(held.__exit__, type(exc), exc, exc.__traceback__)
        raise
    else:
        await asyncio.to_thread(held.__exit__, None, None, None)


def _release_later(done: asyncio.Future[Claim], held: AbstractContextManager[Claim]) -> None:
    if not done.cancelled() and done.exception() is None:
        threading.Thread(target=held.__exit__, args=(None, None, None), daemon=True).start()
