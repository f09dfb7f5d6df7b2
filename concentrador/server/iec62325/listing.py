"""``list``: the peer's published messages after a code, or in an interval.

Decisions (see docs/protocol.md): MessageIdentification is the published
file name, MessageVersion 1, Type its P.O. 10.11 type, Owner our node id,
ApplicationTimeInterval start = end = ServerTimestamp = the publication
time (so ``IntervalType`` Application and Server select the same rows).
A list after a code answers at most :data:`MAX_LISTED` messages, the oldest
first: the client asks again after the last code it got. A list by
interval (at most ``DEFAULT_MAX_LIST_DAYS`` days, checked when the request
is read) that matches more is refused (LST-007), as REE's servers do.
"""

from __future__ import annotations

from concentrador.config.model import PeerConfig
from concentrador.protocol import SoapVersion
from concentrador.protocol.iec62325.envelope import build_504_envelope, split_at_placeholder
from concentrador.protocol.iec62325.errors import ErrorCode, Iec62325Error
from concentrador.protocol.iec62325.listing import message_list_text
from concentrador.protocol.iec62325.models import ListRequest, MessageListEntry
from concentrador.protocol.iec62325.response import message_list_response
from concentrador.protocol.iec62325.wire import MessageStatus
from concentrador.server.state import ServerState
from concentrador.spool.ledger.codes import CodedEntry

__all__ = ["MAX_LISTED", "list_answer_body", "list_entries"]

MAX_LISTED = 20_000


def list_entries(
    state: ServerState, peer: PeerConfig, request: ListRequest
) -> list[MessageListEntry]:
    """The entries ``request`` selects for ``peer`` (blocking: reads the ledger)."""
    owner = state.config.node.id
    if request.owner is not None and request.owner != owner:
        return []  # everything we list is ours
    try:
        rows = state.ledger.coded_entries(
            peer.id,
            after_code=request.after_code,
            start=request.start,
            end=request.end,
            file_type=request.msg_type,
            limit=MAX_LISTED + 1,
        )
    except Exception as exc:  # sqlite3 errors: the peer may retry
        raise Iec62325Error(ErrorCode.LIST_READ_FAILED, "the ledger could not be read") from exc
    if len(rows) > MAX_LISTED:
        if request.after_code is None:
            raise Iec62325Error(
                ErrorCode.LIST_TOO_MANY,
                f"the interval holds more than {MAX_LISTED} messages; ask for a shorter one",
            )
        rows = rows[:MAX_LISTED]
    wanted = request.message_identification
    return [_entry(row, owner) for row in rows if wanted is None or row.name == wanted]


def list_answer_body(
    state: ServerState, peer: PeerConfig, request: ListRequest, version: SoapVersion
) -> bytes:
    """The whole answer envelope (blocking: run it off the loop).

    The MessageList goes in as text where the placeholder stands: built as
    elements, parsed back and copied into the envelope, a 10,000-entry list
    (5 MB) took ~170 ms of CPU, over the 200 ms aim with the transfer
    (bench/iec62325_list_bench.py). The answer is not signed (answers.py).
    """
    entries = list_entries(state, peer, request)
    message = message_list_response((), state.now(), placeholder=True)
    prefix, suffix = split_at_placeholder(build_504_envelope(message, version))
    return prefix + message_list_text(entries).encode() + suffix


def _entry(row: CodedEntry, owner: str) -> MessageListEntry:
    return MessageListEntry(
        code=row.code,
        message_identification=row.name,
        type=row.file_type or "UNKNOWN",
        owner=owner,
        application_start=row.published_at,
        server_timestamp=row.published_at,
        application_end=row.published_at,
        message_version=1,
        status=MessageStatus.OK,
    )
