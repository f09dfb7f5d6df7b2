"""The confirmation's ledger step: check and mark delivered in one transaction.

A base class of :class:`~concentrador.spool.ledger.ledger.Ledger` (like
``cycles.CycleLogMethods``): ``ledger.py`` is at its size limit.
"""

from __future__ import annotations

from collections.abc import Iterable

from concentrador.spool.ledger import published
from concentrador.spool.ledger.backend import Database

__all__ = ["DeliveryMethods"]


class DeliveryMethods:
    """:meth:`deliver`, the commit point of ``confirmacionRecepcionFichero`` code 0."""

    _db: Database

    def deliver(self, peer: str, originals: Iterable[str], detail: str) -> dict[str, list[str]]:
        """Mark delivered every still-published name of ``originals``, durably.

        One transaction reads the names, changes their state and writes one
        ``delivered`` event per original: nothing can expire or confirm them
        between the check and the change. Returns the names marked, by
        original; an original with none (unknown, confirmed, expired) is absent.
        """
        with self._db.transaction() as conn:
            return published.deliver(conn, peer, originals, detail)
