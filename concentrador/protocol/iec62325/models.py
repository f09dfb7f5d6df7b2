"""IEC 61968-100 / 62325-504 messages as values: what the readers return.

The builders (:mod:`.request`, :mod:`.response`) take plain arguments and
return lxml elements, because a message must stay an element until it is
signed; these models are what reading gives back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from lxml import etree

from concentrador.protocol.iec62325.wire import (
    FILENAME_ID_TYPE,
    IntervalType,
    PayloadFormat,
    ReplyResult,
)

__all__ = [
    "GetRequest",
    "Header",
    "ListRequest",
    "MessageId",
    "MessageListEntry",
    "PutRequest",
    "QueryRequest",
    "ReplyError",
    "Request",
    "Response",
]


@dataclass(frozen=True, slots=True)
class Header:
    """The 61968-100 ``Header`` fields we use. Strings are exactly as sent
    (xs:string), ``timestamp`` is UTC."""

    verb: str
    noun: str
    timestamp: datetime | None = None
    source: str | None = None
    message_id: str | None = None
    correlation_id: str | None = None


class MessageId(NamedTuple):
    """A ``Request/ID``, ``Reply/ID`` or ``Payload/ID`` with its ``idType``."""

    value: str
    id_type: str | None = None


def _name_of(ids: tuple[MessageId, ...]) -> str | None:
    for item in ids:
        if item.id_type == FILENAME_ID_TYPE:
            return item.value
    return None


@dataclass(frozen=True, slots=True)
class ListRequest:
    """``get``/``MessageList``: codes after ``after_code``, or an interval.

    Exactly one of ``after_code`` and (``start``, ``end``) is set (the reader
    enforces it). ``msg_type``, ``owner`` and ``message_identification`` are
    optional filters.
    """

    header: Header
    after_code: int | None = None
    start: datetime | None = None
    end: datetime | None = None
    interval_type: IntervalType = IntervalType.APPLICATION
    msg_type: str | None = None
    owner: str | None = None
    message_identification: str | None = None


@dataclass(frozen=True, slots=True)
class GetRequest:
    """``get``/``Any``: by ``code``, or by ``message_identification`` (+ version)."""

    header: Header
    code: int | None = None
    message_identification: str | None = None
    message_version: int | None = None


@dataclass(frozen=True, slots=True)
class PutRequest:
    """``create``: a binary file (``compressed`` is its base64 text, or the
    placeholder when streamed) or an XML ``document``."""

    header: Header
    name: str | None = None
    format: PayloadFormat = PayloadFormat.BINARY
    compressed: str | None = None
    document: etree._Element | None = None
    ids: tuple[MessageId, ...] = ()

    @property
    def is_binary(self) -> bool:
        return self.compressed is not None


@dataclass(frozen=True, slots=True)
class QueryRequest:
    """``get``/``QueryData``: ``data_type`` and any other options, as sent."""

    header: Header
    data_type: str
    start: datetime | None = None
    end: datetime | None = None
    options: tuple[tuple[str, str | None], ...] = ()


Request = ListRequest | GetRequest | PutRequest | QueryRequest


class MessageListEntry(NamedTuple):
    """One ``MessageList/Message``. A tuple, not a dataclass: a listing builds
    10,000 of them and tuples are the cheapest to make."""

    code: int
    message_identification: str
    type: str
    owner: str
    application_start: datetime
    server_timestamp: datetime
    application_end: datetime | None = None
    message_version: int | None = 1
    status: str | None = None


@dataclass(frozen=True, slots=True)
class ReplyError:
    """One ``Reply/Error``: ``code`` (REE-style, e.g. ``GET-006``) and text."""

    code: str
    details: str = ""
    level: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Response:
    """A ``ResponseMessage`` as read by a client.

    ``payload`` is the first XML element inside ``Payload`` (``None`` for a
    binary or empty answer); ``compressed`` is the raw text of
    ``Payload/Compressed`` (base64, or the placeholder when streamed).
    """

    header: Header
    result: ReplyResult
    errors: tuple[ReplyError, ...] = ()
    ids: tuple[MessageId, ...] = ()
    payload: etree._Element | None = None
    compressed: str | None = None
    format: str | None = None
    has_payload: bool = field(default=False)

    @property
    def name(self) -> str | None:
        """The file name of a binary answer (``Reply/ID idType="name"``)."""
        return _name_of(self.ids)
