"""Errors of the DIME codec: a few classes, each instance naming the rule broken.

The class says *who* is at fault and what an adapter does about it:

- :class:`DimeFormatError`: the peer's bytes break draft-nielsen-dime-02
  (its subclass :class:`DimeTruncatedError`: they end too early, which a
  client reading an answer takes for a dropped connection);
- :class:`DimeLimitError`: well-formed, but more than a
  :class:`~concentrador.protocol.dime.DimeLimits` accepts;
- :class:`DimeUsageError`: our own code called the codec wrongly.

``error.code`` (a :class:`DimeErrorCode`) says which rule, so adapters and
tests tell "the peer sent 9 MiB" from "the peer's padding is not zero" without
parsing messages. All derive from :class:`DimeError`, itself a
:class:`~concentrador.protocol.errors.ProtocolError`.
"""

from __future__ import annotations

from enum import StrEnum

from concentrador.protocol.errors import ProtocolError

__all__ = [
    "DimeError",
    "DimeErrorCode",
    "DimeFormatError",
    "DimeLimitError",
    "DimeTruncatedError",
    "DimeUsageError",
]


class DimeErrorCode(StrEnum):
    """The rule a DIME error is about (stable: tests and logs may rely on it)."""

    # DimeFormatError: the peer's bytes break draft-nielsen-dime-02.
    VERSION = "version"  # VERSION is not 1
    RESERVED_BITS = "reserved-bits"  # the reserved nibble is not zero
    MESSAGE_BEGIN = "message-begin"  # MB missing on the first record, or set on a later one
    MISSING_MESSAGE_END = "missing-message-end"  # input ended after a record without ME
    TRAILING_DATA = "trailing-data"  # a non-zero byte after the ME record
    TYPE_FORMAT = "type-format"  # TYPE_T unknown, or not fitting the record or its TYPE
    CHUNK = "chunk"  # a broken CF chain (fields on a continuation, ME with CF)
    PADDING = "padding"  # a non-zero padding byte
    FIELD = "field"  # TYPE or ID is not UTF-8 text
    TRUNCATED = "truncated"  # input ended inside a header, field, payload or chunk chain
    # DimeLimitError: more than a DimeLimits accepts.
    ENVELOPE_TOO_LARGE = "envelope-too-large"  # logical record 0 over max_envelope
    ATTACHMENT_TOO_LARGE = "attachment-too-large"  # a later record over max_attachment
    TYPE_TOO_LONG = "type-too-long"  # TYPE_LENGTH over max_type_length
    ID_TOO_LONG = "id-too-long"  # ID_LENGTH over max_id_length
    OPTIONS_TOO_LONG = "options-too-long"  # OPTIONS_LENGTH over max_options_length
    TOO_MANY_RECORDS = "too-many-records"  # physical records over max_records
    # DimeUsageError: a bug in the caller, not the peer.
    CONFIGURATION = "configuration"  # an argument (limit, length, chunk size, field) out of range
    STATE = "state"  # a method called in the wrong state
    PAYLOAD_LENGTH = "payload-length"  # the writer got more or fewer bytes than announced


class DimeError(ProtocolError):
    """Base class of every error raised by the DIME codec; ``code`` names the rule."""

    def __init__(self, code: DimeErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class DimeFormatError(DimeError):
    """The byte stream is not a well-formed DIME message."""


class DimeTruncatedError(DimeFormatError):
    """The input ended in the middle of a header, a field, a payload or a chunk chain."""

    def __init__(self, message: str) -> None:
        super().__init__(DimeErrorCode.TRUNCATED, message)


class DimeLimitError(DimeError):
    """A header field announces more than a :class:`DimeLimits` allows.

    Raised as soon as the header is decoded, before anything is read or
    allocated for the field it describes.
    """

    def __init__(
        self, code: DimeErrorCode, limit_name: str, value: int, limit: int, where: str, what: str
    ) -> None:
        super().__init__(code, f"DIME {where}: {what} {value} exceeds {limit_name}={limit}")
        self.limit_name = limit_name
        self.value = value
        self.limit = limit


class DimeUsageError(DimeError, ValueError):
    """The codec was used against its contract (a bug in the caller, not the peer)."""
