"""The ledger: what the spool folders alone cannot say (SQLite by default).

One :class:`Ledger` object is the whole interface; see :mod:`.ledger`.
"""

from concentrador.spool.ledger.ledger import (
    SCHEMA_VERSION,
    Ledger,
    LedgerError,
    ListedName,
    PublishedEntry,
    ReceivedEntry,
    UnclassifiedEntry,
)
from concentrador.spool.ledger.push import PushState

__all__ = [
    "SCHEMA_VERSION",
    "Ledger",
    "LedgerError",
    "ListedName",
    "PublishedEntry",
    "PushState",
    "ReceivedEntry",
    "UnclassifiedEntry",
]
