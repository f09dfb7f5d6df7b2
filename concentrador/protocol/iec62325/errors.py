"""IEC 62325-504 errors: one exception type carrying a REE-style error code.

REE's kit names its errors ``HAND-nnn`` (handler: transport, schema,
signature), ``LST-``, ``GET-``, ``PUT-`` and ``QRY-nnn`` (per operation), and
a fault carries them in ``FaultMessage/Reply/Error/code``. REE's own clients
only show the code and text, so interoperating means using the same codes for
the same situations. :data:`ERROR_CODES` is our table: which codes this
project raises or answers, what each means here, and whether it is the
requester's fault (SOAP ``Client``/``Sender``) or ours (``Server``/``Receiver``).
The texts are ours.
"""

from __future__ import annotations

from typing import NamedTuple

from concentrador.protocol.errors import ProtocolError

__all__ = [
    "ERROR_CODES",
    "ErrorCode",
    "ErrorInfo",
    "Iec62325Error",
    "ResponseFormatError",
    "SignatureError",
]


class ErrorInfo(NamedTuple):
    meaning: str
    server_side: bool = False
    """True when the fault is ours (answer SOAP Server/Receiver; worth retrying)."""


class ErrorCode:
    """The codes we use, by situation (constants, so a typo fails at import)."""

    # Handler level: envelope, schema, verb/noun, identity, signatures.
    UNIDENTIFIED = "HAND-001"
    SCHEMA = "HAND-002"
    NOT_ALLOWED = "HAND-003"
    UNREADABLE_BODY = "HAND-004"
    UNSUPPORTED = "HAND-005"
    BAD_FORMAT = "HAND-006"
    SIGNATURE_INVALID = "HAND-007"
    SIGNATURE_SYNTAX = "HAND-008"
    CANNOT_SIGN = "HAND-009"
    FAULT_RECEIVED = "HAND-010"
    EMPTY_RESPONSE = "HAND-011"
    RESPONSE_HEADER = "HAND-012"
    INTERNAL = "HAND-022"
    # list
    LIST_CODE_NEGATIVE = "LST-001"
    LIST_CODE_NOT_INTEGER = "LST-002"
    LIST_END_BEFORE_START = "LST-003"
    LIST_INTERVAL_TOO_LONG = "LST-004"
    LIST_CODE_OR_INTERVAL = "LST-005"
    LIST_READ_FAILED = "LST-006"
    LIST_TOO_MANY = "LST-007"
    LIST_INTERVAL_TYPE = "LST-009"
    LIST_BAD_PARAMETER = "LST-010"
    LIST_UNKNOWN_PARAMETER = "LST-011"
    LIST_BAD_ENTRY = "LST-018"
    LIST_NO_LIST = "LST-019"
    # get
    GET_CODE_NOT_POSITIVE = "GET-001"
    GET_CODE_NOT_INTEGER = "GET-002"
    GET_ONE_SELECTOR = "GET-003"
    GET_NO_SELECTOR = "GET-004"
    GET_QUEUE = "GET-005"
    GET_NOT_FOUND = "GET-006"
    GET_READ_FAILED = "GET-007"
    GET_BAD_PARAMETER = "GET-011"
    GET_UNKNOWN_PARAMETER = "GET-012"
    GET_FILE_READ_FAILED = "GET-013"
    GET_FORMAT = "GET-014"
    GET_NO_NAME = "GET-018"
    GET_VERSION = "GET-019"
    GET_TOO_LARGE = "GET-021"
    # put
    PUT_FAILED = "PUT-001"
    PUT_IN_PROGRESS = "PUT-002"
    PUT_NOUN = "PUT-003"
    PUT_NO_HANDLER = "PUT-004"
    PUT_TYPE_NOT_ALLOWED = "PUT-005"
    PUT_IDENTITY = "PUT-008"
    PUT_STORE_FAILED = "PUT-009"
    PUT_BAD_NAME = "PUT-010"
    PUT_BAD_BINARY = "PUT-011"
    PUT_REJECTED = "PUT-012"
    PUT_NO_PAYLOAD = "PUT-013"
    PUT_BAD_PARAMETER = "PUT-017"
    PUT_TOO_LARGE = "PUT-018"
    # query
    QUERY_NO_DATA_TYPE = "QRY-001"
    QUERY_UNKNOWN_DATA_TYPE = "QRY-002"
    QUERY_END_BEFORE_START = "QRY-003"
    QUERY_FAILED = "QRY-004"
    QUERY_BAD_DATE = "QRY-009"
    QUERY_BAD_PARAMETER = "QRY-010"
    QUERY_UNKNOWN_PARAMETER = "QRY-011"


E = ErrorCode
ERROR_CODES: dict[str, ErrorInfo] = {
    E.UNIDENTIFIED: ErrorInfo("the peer could not be identified from its TLS certificate"),
    E.SCHEMA: ErrorInfo("the RequestMessage does not follow the IEC 61968-100 schema"),
    E.NOT_ALLOWED: ErrorInfo("the header Source does not name the authenticated peer"),
    E.UNREADABLE_BODY: ErrorInfo("the body is not XML or not a SOAP envelope"),
    E.UNSUPPORTED: ErrorInfo("unsupported Verb/Noun combination"),
    E.BAD_FORMAT: ErrorInfo("the Body holds no RequestMessage, or more than one"),
    E.SIGNATURE_INVALID: ErrorInfo("the XML signature does not verify"),
    E.SIGNATURE_SYNTAX: ErrorInfo("the XML signature is missing or malformed"),
    E.CANNOT_SIGN: ErrorInfo("the answer could not be signed", server_side=True),
    E.FAULT_RECEIVED: ErrorInfo("the peer answered a fault (client side)", server_side=True),
    E.EMPTY_RESPONSE: ErrorInfo("the response has no payload (client side)", server_side=True),
    E.RESPONSE_HEADER: ErrorInfo("the response header is wrong (client side)", server_side=True),
    E.INTERNAL: ErrorInfo("internal error; see the server's log", server_side=True),
    E.LIST_CODE_NEGATIVE: ErrorInfo("list: Code must not be negative"),
    E.LIST_CODE_NOT_INTEGER: ErrorInfo("list: Code must be an integer"),
    E.LIST_END_BEFORE_START: ErrorInfo("list: EndTime precedes StartTime"),
    E.LIST_INTERVAL_TOO_LONG: ErrorInfo("list: the interval spans more than the allowed days"),
    E.LIST_CODE_OR_INTERVAL: ErrorInfo("list: give either Code or StartTime and EndTime"),
    E.LIST_READ_FAILED: ErrorInfo("list: the ledger could not be read", server_side=True),
    E.LIST_TOO_MANY: ErrorInfo("list: too many messages; use a narrower request"),
    E.LIST_INTERVAL_TYPE: ErrorInfo("list: IntervalType must be Application or Server"),
    E.LIST_BAD_PARAMETER: ErrorInfo("list: an option is invalid (repeated, bad date...)"),
    E.LIST_UNKNOWN_PARAMETER: ErrorInfo("list: unknown option"),
    E.LIST_BAD_ENTRY: ErrorInfo("list answer: an entry is invalid (client side)", True),
    E.LIST_NO_LIST: ErrorInfo("list answer: no MessageList in the payload (client side)", True),
    E.GET_CODE_NOT_POSITIVE: ErrorInfo("get: Code must be a positive integer"),
    E.GET_CODE_NOT_INTEGER: ErrorInfo("get: Code must be an integer"),
    E.GET_ONE_SELECTOR: ErrorInfo("get: give only one of Code, MessageIdentification, Queue"),
    E.GET_NO_SELECTOR: ErrorInfo("get: give Code or MessageIdentification"),
    E.GET_QUEUE: ErrorInfo("get: the Queue filter is not supported"),
    E.GET_NOT_FOUND: ErrorInfo("get: the requested message does not exist"),
    E.GET_READ_FAILED: ErrorInfo("get: the ledger could not be read", server_side=True),
    E.GET_BAD_PARAMETER: ErrorInfo("get: an option is invalid (repeated...)"),
    E.GET_UNKNOWN_PARAMETER: ErrorInfo("get: unknown option"),
    E.GET_FILE_READ_FAILED: ErrorInfo("get: the file could not be read", server_side=True),
    E.GET_FORMAT: ErrorInfo("get answer: unsupported Format (client side)", True),
    E.GET_NO_NAME: ErrorInfo("get answer: binary without a file name (client side)", True),
    E.GET_VERSION: ErrorInfo("get: MessageVersion must be a positive integer"),
    E.GET_TOO_LARGE: ErrorInfo("get answer: larger than allowed (client side)", True),
    E.PUT_FAILED: ErrorInfo("put: the message could not be processed", server_side=True),
    E.PUT_IN_PROGRESS: ErrorInfo("put: a file of the same name is being received", True),
    E.PUT_NOUN: ErrorInfo("put: the Noun does not match the payload"),
    E.PUT_NO_HANDLER: ErrorInfo("put: no handler for this Noun (XML documents)"),
    E.PUT_TYPE_NOT_ALLOWED: ErrorInfo("put: the peer may not send this file type"),
    E.PUT_IDENTITY: ErrorInfo("put: the file's participant is not the sending peer"),
    E.PUT_STORE_FAILED: ErrorInfo("put: the file could not be stored", server_side=True),
    E.PUT_BAD_NAME: ErrorInfo("put: the file name is missing or not acceptable"),
    E.PUT_BAD_BINARY: ErrorInfo("put: the payload is not valid base64 / bzip2"),
    E.PUT_REJECTED: ErrorInfo("put: refused by a check (load window, checksum)"),
    E.PUT_NO_PAYLOAD: ErrorInfo("put: the message has no payload"),
    E.PUT_BAD_PARAMETER: ErrorInfo("put: an option or Format is invalid"),
    E.PUT_TOO_LARGE: ErrorInfo("put: the file is larger than allowed"),
    E.QUERY_NO_DATA_TYPE: ErrorInfo("query: DataType is missing"),
    E.QUERY_UNKNOWN_DATA_TYPE: ErrorInfo("query: DataType not supported"),
    E.QUERY_END_BEFORE_START: ErrorInfo("query: EndTime precedes StartTime"),
    E.QUERY_FAILED: ErrorInfo("query: the answer could not be built", server_side=True),
    E.QUERY_BAD_DATE: ErrorInfo("query: a date option is not an xs:dateTime"),
    E.QUERY_BAD_PARAMETER: ErrorInfo("query: an option is invalid (repeated...)"),
    E.QUERY_UNKNOWN_PARAMETER: ErrorInfo("query: unknown option for this DataType"),
}
del E


class Iec62325Error(ProtocolError):
    """A 504 request or answer is refused; ``code`` is the REE-style code.

    ``details`` is the one-line human text (what goes in ``Error/details``).
    ``str(err)`` is ``"CODE: details"``.
    """

    def __init__(self, code: str, details: str) -> None:
        super().__init__(f"{code}: {details}")
        self.code = code
        self.details = details

    @property
    def server_side(self) -> bool:
        """Whether the fault is ours (SOAP Server/Receiver) rather than the peer's."""
        info = ERROR_CODES.get(self.code)
        return info.server_side if info is not None else False


class SignatureError(Iec62325Error):
    """A signature is missing, malformed or does not verify (HAND-007/HAND-008)."""

    def __init__(self, details: str, code: str = ErrorCode.SIGNATURE_INVALID) -> None:
        super().__init__(code, details)


class ResponseFormatError(Iec62325Error):
    """Client side: a peer's answer does not have the shape we expect."""
