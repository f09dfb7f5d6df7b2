"""IEC 62325-504 (CPCSCC v3.0): the IEC 61968-100 messages, pure and sans-IO.

Adapters import from here: builders return lxml elements (so they can be
signed before :func:`build_504_envelope` serialises them), readers return
the models of :mod:`.models` and raise :class:`Iec62325Error` with REE's
error codes.
"""

from concentrador.protocol.iec62325.envelope import (
    MESSAGE_ROOTS,
    build_504_envelope,
    content_type_504,
    message_from_body,
    split_at_placeholder,
)
from concentrador.protocol.iec62325.errors import (
    ERROR_CODES,
    ErrorCode,
    ErrorInfo,
    Iec62325Error,
    ResponseFormatError,
    SignatureError,
)
from concentrador.protocol.iec62325.faults import fault_envelope, fault_message, read_fault
from concentrador.protocol.iec62325.listing import message_list_text
from concentrador.protocol.iec62325.models import (
    GetRequest,
    Header,
    ListRequest,
    MessageId,
    MessageListEntry,
    PutRequest,
    QueryRequest,
    ReplyError,
    Request,
    Response,
)
from concentrador.protocol.iec62325.request import (
    SUPPORTED_DATA_TYPES,
    get_request,
    list_request,
    put_binary_request,
    query_request,
    read_request_message,
)
from concentrador.protocol.iec62325.response import (
    binary_get_response,
    data_types_response,
    message_list_response,
    put_response,
    read_message_list,
    read_response_message,
    read_server_time,
    reply_error,
    server_time_response,
)
from concentrador.protocol.iec62325.wire import (
    CMSG_NAMESPACE,
    DEFAULT_MAX_LIST_DAYS,
    DS_NAMESPACE,
    FILENAME_ID_TYPE,
    MAX_FILE_SIZE,
    MSG_NAMESPACE,
    PLACEHOLDER,
    SOAP_ACTION,
    WSS_NAMESPACE,
    DataType,
    IntervalType,
    MessageStatus,
    Noun,
    OptionName,
    PayloadFormat,
    ReplyResult,
    Verb,
    format_datetime,
    parse_datetime,
)
from concentrador.protocol.iec62325.wsdl import render_504_wsdl

__all__ = [
    "CMSG_NAMESPACE",
    "DEFAULT_MAX_LIST_DAYS",
    "DS_NAMESPACE",
    "ERROR_CODES",
    "FILENAME_ID_TYPE",
    "MAX_FILE_SIZE",
    "MESSAGE_ROOTS",
    "MSG_NAMESPACE",
    "PLACEHOLDER",
    "SOAP_ACTION",
    "SUPPORTED_DATA_TYPES",
    "WSS_NAMESPACE",
    "DataType",
    "ErrorCode",
    "ErrorInfo",
    "GetRequest",
    "Header",
    "Iec62325Error",
    "IntervalType",
    "ListRequest",
    "MessageId",
    "MessageListEntry",
    "MessageStatus",
    "Noun",
    "OptionName",
    "PayloadFormat",
    "PutRequest",
    "QueryRequest",
    "ReplyError",
    "ReplyResult",
    "Request",
    "Response",
    "ResponseFormatError",
    "SignatureError",
    "Verb",
    "binary_get_response",
    "build_504_envelope",
    "content_type_504",
    "data_types_response",
    "fault_envelope",
    "fault_message",
    "format_datetime",
    "get_request",
    "list_request",
    "message_from_body",
    "message_list_response",
    "message_list_text",
    "parse_datetime",
    "put_binary_request",
    "put_response",
    "query_request",
    "read_fault",
    "read_message_list",
    "read_request_message",
    "read_response_message",
    "read_server_time",
    "render_504_wsdl",
    "reply_error",
    "server_time_response",
    "split_at_placeholder",
]
# Signature and streaming (helper B) are appended below.
from concentrador.protocol.iec62325.signature import (
    SigningKey,
    canonical_parts,
    content_digest,
    sign,
    verify,
)
from concentrador.protocol.iec62325.streaming import (
    Base64Decoder,
    Base64Encoder,
    Base64Error,
    CompressedSplitter,
    StreamingError,
)

__all__ += [
    "Base64Decoder",
    "Base64Encoder",
    "Base64Error",
    "CompressedSplitter",
    "SigningKey",
    "StreamingError",
    "canonical_parts",
    "content_digest",
    "sign",
    "verify",
]
