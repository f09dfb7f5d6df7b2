"""Work claiming: one holder per (peer, job kind) across processes and replicas.

See :mod:`.base` for the interface (:class:`Claims`, :class:`ClaimBusy`),
:mod:`.local` (``flock`` files, one host, the SQLite default), :mod:`.advisory`
(PostgreSQL advisory locks, several replicas) and :mod:`.recorded` (the cycle
log in the ledger). :func:`open_claims` picks the implementation from the
ledger URL, so the ledger and the claims always live in the same place.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from concentrador.config.ledger import POSTGRESQL_SCHEMES
from concentrador.spool.claims.base import KINDS, Claim, ClaimBusy, Claims, check_kind, hold_async
from concentrador.spool.claims.local import LocalClaims, default_replica, flock_claim, lock_path
from concentrador.spool.claims.recorded import CycleLog, RecordedClaims, describe_result
from concentrador.spool.layout import Spool

__all__ = [
    "KINDS",
    "Claim",
    "ClaimBusy",
    "Claims",
    "CycleLog",
    "LocalClaims",
    "RecordedClaims",
    "check_kind",
    "default_replica",
    "describe_result",
    "flock_claim",
    "hold_async",
    "lock_path",
    "open_claims",
]


def open_claims(
    spool: Spool,
    ledger_url: str | None = None,
    *,
    cycle_log: CycleLog | None = None,
    replica: str | None = None,
) -> Claims:
    """The claims that match the ledger: lock files in ``spool`` for the SQLite
    ledger (``ledger_url`` None: ``[ledger] url`` absent), advisory locks for a
    ``postgresql://`` one.

    With ``cycle_log`` (the ledger), every claim is written to its cycle log.
    """
    claims: Claims
    if ledger_url is not None:
        if urlsplit(ledger_url).scheme not in POSTGRESQL_SCHEMES:
            raise ValueError("claims across replicas need a postgresql:// ledger url")
        from concentrador.spool.claims.advisory import AdvisoryClaims

        claims = AdvisoryClaims(ledger_url, replica=replica)
    else:
        claims = LocalClaims(spool, replica=replica)
    return RecordedClaims(claims, cycle_log) if cycle_log is not None else claims
