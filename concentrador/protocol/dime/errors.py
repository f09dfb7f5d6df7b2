"""Errors of the DIME codec.

Every violation a peer can commit has its own class, so the adapters (and
the tests) can tell "the peer sent 9 MiB" from "the peer's framing is
broken" without parsing messages. All of them derive from
:class:`DimeError`, itself a :class:`~concentrador.protocol.errors.ProtocolError`.
"""

from __future__ import annotations

from concentrador.protocol.errors import ProtocolError


class DimeError(ProtocolError):
    """Base class of every error raised by the DIME codec."""


# --- framing errors: the peer's bytes break draft-nielsen-dime-02 -----------


class DimeFramingError(DimeError):
    """The byte stream is not a well-formed DIME message."""


class DimeVersionError(DimeFramingError):
    """A record header carries a VERSION other than 1."""


class DimeReservedBitsError(DimeFramingError):
    """The reserved low nibble of a record header's second byte is not zero."""


class DimeMessageBeginError(DimeFramingError):
    """MB is missing on the first record, or set on a later one."""


class DimeMissingMessageEndError(DimeFramingError):
    """The input ended after a complete record that did not carry ME."""


class DimeTrailingDataError(DimeFramingError):
    """A non-zero byte follows the record that carried ME."""


class DimeTypeFormatError(DimeFramingError):
    """TYPE_T is unknown, or does not fit the record's position or TYPE."""


class DimeChunkError(DimeFramingError):
    """The CF (chunk) chain is broken: a continuation chunk carries a TYPE_T,
    TYPE or ID, or ME is set on a record that announces a continuation."""


class DimePaddingError(DimeFramingError):
    """A padding byte (between a field and the next 4-byte boundary) is not zero."""


class DimeFieldError(DimeFramingError):
    """The TYPE or ID field is not valid UTF-8 text."""


class DimeTruncatedError(DimeFramingError):
    """The input ended in the middle of a header, a field, a payload or a chunk chain."""


# --- limit errors: well-formed, but more than we agreed to accept -----------


class DimeLimitError(DimeError):
    """A header field announces more than a :class:`DimeLimits` allows.

    Raised as soon as the header is decoded, before anything is read or
    allocated for the field it describes.
    """

    def __init__(self, limit_name: str, value: int, limit: int, where: str, what: str) -> None:
        self.limit_name = limit_name
        self.value = value
        self.limit = limit
        super().__init__(f"DIME {where}: {what} {value} exceeds {limit_name}={limit}")


class DimeEnvelopeTooLargeError(DimeLimitError):
    """Logical record 0 (the SOAP envelope) is larger than ``max_envelope``."""


class DimeAttachmentTooLargeError(DimeLimitError):
    """A logical record after the first is larger than ``max_attachment``."""


class DimeTypeTooLongError(DimeLimitError):
    """TYPE_LENGTH is larger than ``max_type_length``."""


class DimeIdTooLongError(DimeLimitError):
    """ID_LENGTH is larger than ``max_id_length``."""


class DimeOptionsTooLongError(DimeLimitError):
    """OPTIONS_LENGTH is larger than ``max_options_length``."""


class DimeTooManyRecordsError(DimeLimitError):
    """The message has more physical records (chunks included) than ``max_records``."""


# --- local misuse: our own code called the codec wrongly -------------------


class DimeUsageError(DimeError):
    """The codec was used against its contract (a bug in the caller, not the peer)."""


class DimeConfigurationError(DimeUsageError, ValueError):
    """An argument (a limit, a length, a chunk size, a TYPE or ID) is out of range."""


class DimeStateError(DimeUsageError):
    """A method was called in the wrong state (data after end of input, write before begin)."""


class DimePayloadLengthError(DimeUsageError):
    """The writer received more or fewer payload bytes than it announced."""
