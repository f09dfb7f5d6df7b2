"""informacionDisponible: what is published for a peer, from the ledger (CPCSCC.md §4.2).

The answer itself is written by the core's fast text writer
(:func:`concentrador.protocol.listing_envelope`). Measured on the dev box for
10,000 rows: ``Ledger.entries_for`` builds a dataclass and parses a timestamp
per row (~200 ms); one SQL query for just (name, type, size) takes ~15 ms.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from concentrador.protocol import listable_name

if TYPE_CHECKING:
    from concentrador.spool.ledger import Ledger

__all__ = ["published_listing"]

log = logging.getLogger(__name__)


def published_listing(
    ledger: Ledger, peer_id: str, *, remote: str | None = None
) -> Sequence[tuple[str, str, int]]:
    """Every name published for ``peer_id``, in one query (no per-file work).

    A name XML cannot carry cannot be listed at all: it is logged here, and
    left out of the answer by the writer. Files listed for the first time get
    a ``listed`` event (from ``remote``) in their audit trail.
    """
    rows = ledger.listing(peer_id)
    ledger.note_listed(peer_id, remote)
    for name, _, _ in rows:
        if not listable_name(name):
            log.error("published file %r has a name XML cannot carry; not listed", name)
    return rows
