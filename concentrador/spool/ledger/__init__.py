"""The ledger: what the spool folders alone cannot say (SQLite by default).

One :class:`Ledger` object is the whole interface; see :mod:`.ledger`.
"""

from concentrador.spool.ledger.codes import CodedEntry
from concentrador.spool.ledger.cycles import CycleEntry
from concentrador.spool.ledger.events import EventKind, FileEvent, NewEvent
from concentrador.spool.ledger.ledger import Ledger
from concentrador.spool.ledger.notes import UnclassifiedEntry
from concentrador.spool.ledger.published import PublishedEntry
from concentrador.spool.ledger.push import PushState
from concentrador.spool.ledger.received import ReceivedEntry
from concentrador.spool.ledger.schema import SCHEMA_VERSION, LedgerError
from concentrador.spool.ledger.search import FilePage, FileQuery, FileRow

__all__ = [
    "SCHEMA_VERSION",
    "CodedEntry",
    "CycleEntry",
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
