"""IEC 62325-504 / IEC 61968-100 wire vocabulary, defined once.

Names, namespaces and enumerations as REE's kit puts them on the wire (read
from its WSDL, XSDs and enumerations; no code copied). Datetimes on the wire
are UTC, ISO 8601 with a ``Z`` (:func:`format_datetime`); reading accepts any
offset and converts to UTC (:func:`parse_datetime`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum

__all__ = [
    "CMSG_NAMESPACE",
    "CMSG_PREFIX",
    "DEFAULT_MAX_LIST_DAYS",
    "DS_NAMESPACE",
    "FILENAME_ID_TYPE",
    "MAX_FILE_SIZE",
    "MSG_NAMESPACE",
    "MSG_PREFIX",
    "PLACEHOLDER",
    "SOAP_ACTION",
    "WSS_NAMESPACE",
    "DataType",
    "IntervalType",
    "MessageStatus",
    "Noun",
    "OptionName",
    "PayloadFormat",
    "ReplyResult",
    "Verb",
    "format_datetime",
    "parse_datetime",
]

MSG_NAMESPACE = "http://iec.ch/TC57/2011/schema/message"
"""IEC 61968-100: RequestMessage, ResponseMessage, FaultMessage and their parts."""
MSG_PREFIX = "msg"
CMSG_NAMESPACE = "urn:iec62325.504:messages:1:0"
"""IEC 62325-504 payloads: MessageList, QueryData, ParameterList, Parameter."""
CMSG_PREFIX = "cmsg"
WSS_NAMESPACE = "urn:iec62325.504:wss:1:0"
"""The WSDL's target namespace."""
DS_NAMESPACE = "http://www.w3.org/2000/09/xmldsig#"

SOAP_ACTION = "#request"
"""The SOAPAction of the one operation in the SOAP 1.1 binding."""

MAX_FILE_SIZE = 50 * 1024 * 1024
"""Decision: the 50 MB of spec 3.0 RC2 is 50 MiB of file, counted before base64."""

DEFAULT_MAX_LIST_DAYS = 31
"""A ``list`` by interval may span at most this many days unless configured otherwise."""

PLACEHOLDER = "@@COMPRESSED@@"
"""Stands for the base64 text of ``Payload/Compressed`` while it is streamed
(``@`` is not in the base64 alphabet, so it can never be real content).
Defined here so that builders need not import the signature module."""

FILENAME_ID_TYPE = "name"
"""``Request/ID`` and ``Reply/ID`` ``idType`` that carries a binary payload's file name."""


class Verb(StrEnum):
    GET = "get"
    CREATE = "create"
    REPLY = "reply"


class Noun(StrEnum):
    """The nouns with a fixed meaning; a put of XML uses its root element's name."""

    ANY = "Any"
    MESSAGE_LIST = "MessageList"
    QUERY_DATA = "QueryData"
    COMPRESSED = "Compressed"
    EMPTY = ""


class PayloadFormat(StrEnum):
    XML = "XML"
    BINARY = "BINARY"


class IntervalType(StrEnum):
    APPLICATION = "Application"
    SERVER = "Server"


class ReplyResult(StrEnum):
    OK = "OK"
    PARTIAL = "PARTIAL"
    FAILED = "FAILED"


class MessageStatus(StrEnum):
    OK = "OK"
    FAILED = "FAILED"


class DataType(StrEnum):
    """``DataType`` values of ``query``; we answer :attr:`SERVER_TIMESTAMP` and
    :attr:`LIST_OF_DATA_TYPES`."""

    SERVER_TIMESTAMP = "serverTimestamp"
    LIST_OF_DATA_TYPES = "listOfDataTypes"
    PARAMETER_LIMITS = "parameterLimits"


class OptionName(StrEnum):
    """``Request/Option/name`` values (and the two ``Request`` time elements)."""

    START_TIME = "StartTime"
    END_TIME = "EndTime"
    CODE = "Code"
    INTERVAL_TYPE = "IntervalType"
    DATA_TYPE = "DataType"
    OWNER = "Owner"
    MESSAGE_IDENTIFICATION = "MessageIdentification"
    MESSAGE_VERSION = "MessageVersion"
    MSG_TYPE = "MsgType"
    QUEUE = "Queue"


# xs:dateTime: optional fraction, optional zone ("Z" or +hh:mm).
_DATETIME_RE = re.compile(
    r"(-?\d{4,})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})?"
)


def format_datetime(moment: datetime) -> str:
    """``moment`` in UTC as ``YYYY-MM-DDThh:mm:ss[.ffffff]Z`` (naive = UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    utc = moment.astimezone(UTC)
    text = (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T"
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
    )
    if utc.microsecond:
        text += f".{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


def parse_datetime(text: str) -> datetime | None:
    """An aware UTC datetime from an xs:dateTime, or ``None`` when it is not one.

    A value without a zone is taken as UTC (REE's client always sends one;
    Decision: zone-less times are UTC rather than refused). Fractions beyond
    microseconds are truncated. The caller trims white space (collapsed type).
    """
    match = _DATETIME_RE.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        tz = UTC
        if zone and zone != "Z":
            sign = 1 if zone[0] == "+" else -1
            hours, minutes = int(zone[1:3]), int(zone[4:6])
            if hours > 14 or minutes > 59:
                return None
            tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
        micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
        extra = timedelta(0)
        if hour == "24" and minute == "00" and second == "00" and not micro:
            hour, extra = "00", timedelta(days=1)  # xs:dateTime allows 24:00:00
        value = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=tz
        )
        return (value + extra).astimezone(UTC)
    except (ValueError, OverflowError):
        return None
