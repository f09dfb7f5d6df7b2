"""The cycle log: every claim, as it is taken and given back, in the ledger.

:class:`RecordedClaims` wraps any :class:`~concentrador.spool.claims.base.Claims`
and writes a ``cycles`` row (peer, kind, replica, started_at) once the claim
is won, completed with ended_at and the result when it is released. A claim
refused as busy writes nothing: it ran nothing. Written *inside* the claim,
so two rows of the same (peer, kind) never overlap unless the claim failed,
which is what the scale-out tests check; a row left without ``ended_at`` is a
holder that died mid-job (its claim died with it).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Protocol

from concentrador.spool.claims.base import Claim, Claims

__all__ = ["CycleLog", "RecordedClaims", "describe_result"]

log = logging.getLogger(__name__)


class CycleLog(Protocol):
    """What :class:`RecordedClaims` needs of the ledger."""

    def cycle_started(self, peer: str, kind: str, replica: str) -> int: ...

    def cycle_ended(self, cycle_id: int, result: str) -> object: ...


def describe_result(exc: BaseException | None) -> str:
    """``ok``, or ``failed: <Class>: <message>`` on one line."""
    if exc is None:
        return "ok"
    return " ".join(f"failed: {type(exc).__name__}: {exc}".split())[:500]


class RecordedClaims:
    """Claims whose every holding is written to a :class:`CycleLog`."""

    def __init__(self, inner: Claims, cycle_log: CycleLog) -> None:
        self.inner = inner
        self.cycle_log = cycle_log

    @property
    def replica(self) -> str:
        return self.inner.replica

    @contextlib.contextmanager
    def hold(self, peer: str, kind: str) -> Iterator[Claim]:
        with self.inner.hold(peer, kind) as claim:
            claim.cycle_id = self.cycle_log.cycle_started(peer, kind, claim.replica)
            failure: BaseException | None = None
            try:
                yield claim
            except BaseException as exc:
                failure = exc
                raise
            finally:
                result = claim.result or describe_result(failure)
                try:
                    self.cycle_log.cycle_ended(claim.cycle_id, result)
                except Exception:
                    # The job's own outcome matters more than its log line.
                    log.exception("%s: recording the end of a %s claim failed", peer, kind)

    def close(self) -> None:
        self.inner.close()
