"""Per-peer spool folders, durable moves, the ledger, inbound storage,
reassembly, the outbox watcher and expiry (the storage adapter).

See ``spool/README.md`` (at the top of the repository) for what lives in
each folder.
"""

from concentrador.spool.aside import move_aside, move_with_reason
from concentrador.spool.durable import DurableWriter, StorageError, durable_move, fsync_dir
from concentrador.spool.layout import PeerSpool, Spool, SpoolState, is_temp_name
from concentrador.spool.ledger import Ledger, PublishedEntry, PushState, ReceivedEntry
from concentrador.spool.locks import peer_lock

__all__ = [
    "DurableWriter",
    "Ledger",
    "PeerSpool",
    "PublishedEntry",
    "PushState",
    "ReceivedEntry",
    "Spool",
    "SpoolState",
    "StorageError",
    "durable_move",
    "fsync_dir",
    "is_temp_name",
    "move_aside",
    "move_with_reason",
    "peer_lock",
]
