"""The ledger: what the spool folders alone cannot say (SQLite by default).

One :class:`Ledger` object is the whole interface; see :mod:`.ledger`.
"""

from concentrador.spool.ledger.events import EventKind, FileEvent, NewEvent
from concentrador.spool.ledger.ledger import (
    SCHEMA_VERSION,
    Ledger,
    LedgerError,
    PublishedEntry,
    ReceivedEntry,
    UnclassifiedEntry,
)
from concentrador.spool.ledger.push import PushState
from concentrador.spool.ledger.search import FilePage, FileQuery, FileRow

__all__ = [
    "SCHEMA_VERSION",
    "EventKind",
    "FileEvent",
    "FilePage",
    "FileQuery",
    "FileRow",
    "Ledger",
    "LedgerError",
    "NewEvent",
    "PublishedEntry",
    "PushState",
    "ReceivedEntry",
    "UnclassifiedEntry",
]
