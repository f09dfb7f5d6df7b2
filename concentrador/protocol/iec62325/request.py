"""``RequestMessage``: reading a peer's (server side) and building ours (client side).

Reading is liberal about spelling (any prefix, default namespaces, the 61968
elements also accepted unqualified, white space trimmed where the schema
type collapses it) and strict about meaning: every problem is an
:class:`~.errors.Iec62325Error` with the code REE's kit uses for it, so a REE
client shows its usual text. Option names are compared exactly, as REE does.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from lxml import etree

from concentrador.protocol.iec62325.elements import (
    child_text,
    datetime_of,
    is_msg,
    msg_child,
    msg_q,
    new_message,
    parse_long,
    read_header,
    read_ids,
    read_options,
    refuse_unknown,
    text_of,
)
from concentrador.protocol.iec62325.errors import ErrorCode, Iec62325Error
from concentrador.protocol.iec62325.models import (
    GetRequest,
    Header,
    ListRequest,
    PutRequest,
    QueryRequest,
    Request,
)
from concentrador.protocol.iec62325.wire import (
    DEFAULT_MAX_LIST_DAYS,
    FILENAME_ID_TYPE,
    MSG_NAMESPACE,
    PLACEHOLDER,
    DataType,
    IntervalType,
    Noun,
    OptionName,
    PayloadFormat,
    Verb,
    format_datetime,
)
from concentrador.protocol.xmlparse import child_elements, local_name, namespace_of, xml_trim

__all__ = [
    "SUPPORTED_DATA_TYPES",
    "get_request",
    "list_request",
    "put_binary_request",
    "query_request",
    "read_request_message",
]

SUPPORTED_DATA_TYPES: tuple[str, ...] = (DataType.SERVER_TIMESTAMP, DataType.LIST_OF_DATA_TYPES)
"""The query ``DataType`` values we answer (Decision)."""

_LIST_OPTIONS = frozenset(
    {
        OptionName.CODE,
        OptionName.START_TIME,
        OptionName.END_TIME,
        OptionName.INTERVAL_TYPE,
        OptionName.MSG_TYPE,
        OptionName.OWNER,
        OptionName.MESSAGE_IDENTIFICATION,
    }
)
_GET_OPTIONS = frozenset(
    {
        OptionName.CODE,
        OptionName.MESSAGE_IDENTIFICATION,
        OptionName.MESSAGE_VERSION,
        OptionName.QUEUE,
    }
)
_QUERY_TIME_OPTIONS = frozenset({OptionName.START_TIME, OptionName.END_TIME})


# --- reading a RequestMessage ------------------------------------------------


def read_request_message(
    message: etree._Element, *, max_list_days: int = DEFAULT_MAX_LIST_DAYS
) -> Request:
    """What a peer's ``RequestMessage`` asks for (raises :class:`Iec62325Error`)."""
    if not is_msg(message, "RequestMessage"):
        raise Iec62325Error(
            ErrorCode.BAD_FORMAT, f"expected a RequestMessage, got <{local_name(message)}>"
        )
    header = read_header(message)
    request = msg_child(message, "Request", ErrorCode.SCHEMA)
    payload = msg_child(message, "Payload", ErrorCode.SCHEMA)
    if header.verb == Verb.GET:
        if header.noun == Noun.MESSAGE_LIST:
            return _read_list(header, request, max_list_days)
        if header.noun == Noun.ANY:
            return _read_get(header, request)
        if header.noun == Noun.QUERY_DATA:
            return _read_query(header, request)
    elif header.verb == Verb.CREATE:
        return _read_put(header, request, payload)
    raise Iec62325Error(
        ErrorCode.UNSUPPORTED,
        f"unsupported combination: [verb={header.verb[:40]}][noun={header.noun[:60]}]",
    )


def _read_list(header: Header, request: etree._Element | None, max_days: int) -> ListRequest:
    options = read_options(request, ErrorCode.LIST_BAD_PARAMETER, ErrorCode.LIST_BAD_PARAMETER)
    refuse_unknown(options, _LIST_OPTIONS, ErrorCode.LIST_UNKNOWN_PARAMETER)
    by_code = OptionName.CODE in options
    start_text, end_text = options.get(OptionName.START_TIME), options.get(OptionName.END_TIME)
    has_times = start_text is not None or end_text is not None
    if (by_code and (has_times or OptionName.INTERVAL_TYPE in options)) or (
        not by_code and (start_text is None or end_text is None)
    ):
        raise Iec62325Error(
            ErrorCode.LIST_CODE_OR_INTERVAL, "give either Code or both StartTime and EndTime"
        )
    msg_type = options.get(OptionName.MSG_TYPE)
    owner = options.get(OptionName.OWNER)
    identification = options.get(OptionName.MESSAGE_IDENTIFICATION)
    if by_code:
        code = parse_long(options[OptionName.CODE])
        if code is None:
            raise Iec62325Error(ErrorCode.LIST_CODE_NOT_INTEGER, "Code must be an integer")
        if code < 0:
            raise Iec62325Error(ErrorCode.LIST_CODE_NEGATIVE, "Code must not be negative")
        return ListRequest(
            header,
            after_code=code,
            msg_type=msg_type,
            owner=owner,
            message_identification=identification,
        )
    assert start_text is not None and end_text is not None
    start = datetime_of(start_text, "StartTime", ErrorCode.LIST_BAD_PARAMETER)
    end = datetime_of(end_text, "EndTime", ErrorCode.LIST_BAD_PARAMETER)
    interval_text = options.get(OptionName.INTERVAL_TYPE)
    interval = IntervalType.APPLICATION
    if interval_text is not None:
        try:
            interval = IntervalType(xml_trim(interval_text))
        except ValueError:
            raise Iec62325Error(
                ErrorCode.LIST_INTERVAL_TYPE, "IntervalType must be one of: Application, Server"
            ) from None
    if end < start:
        raise Iec62325Error(ErrorCode.LIST_END_BEFORE_START, "EndTime precedes StartTime")
    if end - start > timedelta(days=max_days):
        raise Iec62325Error(
            ErrorCode.LIST_INTERVAL_TOO_LONG,
            f"the time interval cannot span more than {max_days} days",
        )
    return ListRequest(
        header,
        start=start,
        end=end,
        interval_type=interval,
        msg_type=msg_type,
        owner=owner,
        message_identification=identification,
    )


def _read_get(header: Header, request: etree._Element | None) -> GetRequest:
    options = read_options(request, ErrorCode.GET_BAD_PARAMETER, ErrorCode.GET_BAD_PARAMETER)
    refuse_unknown(options, _GET_OPTIONS, ErrorCode.GET_UNKNOWN_PARAMETER)
    selectors = [
        n
        for n in (OptionName.CODE, OptionName.MESSAGE_IDENTIFICATION, OptionName.QUEUE)
        if options.get(n) is not None
    ]
    if len(selectors) > 1:
        raise Iec62325Error(
            ErrorCode.GET_ONE_SELECTOR, "give only one of Code, MessageIdentification and Queue"
        )
    if not selectors:
        raise Iec62325Error(ErrorCode.GET_NO_SELECTOR, "give Code or MessageIdentification")
    if selectors[0] == OptionName.QUEUE:
        raise Iec62325Error(ErrorCode.GET_QUEUE, "the Queue filter is not supported")
    version_text = options.get(OptionName.MESSAGE_VERSION)
    version = None
    if version_text is not None:
        version = parse_long(version_text)
        if version is None or version < 1:
            raise Iec62325Error(ErrorCode.GET_VERSION, "MessageVersion must be a positive integer")
    if selectors[0] == OptionName.CODE:
        code = parse_long(options[OptionName.CODE])
        if code is None:
            raise Iec62325Error(ErrorCode.GET_CODE_NOT_INTEGER, "Code must be an integer")
        if code < 1:
            raise Iec62325Error(ErrorCode.GET_CODE_NOT_POSITIVE, "Code must be positive")
        return GetRequest(header, code=code, message_version=version)
    identification = options[OptionName.MESSAGE_IDENTIFICATION]
    assert identification is not None
    return GetRequest(header, message_identification=identification, message_version=version)


def _read_query(header: Header, request: etree._Element | None) -> QueryRequest:
    options = read_options(request, ErrorCode.QUERY_BAD_PARAMETER, ErrorCode.QUERY_BAD_DATE)
    data_type = options.get(OptionName.DATA_TYPE)
    if data_type is None or not xml_trim(data_type):
        raise Iec62325Error(ErrorCode.QUERY_NO_DATA_TYPE, "DataType must be given")
    data_type = xml_trim(data_type)
    if data_type not in SUPPORTED_DATA_TYPES:
        raise Iec62325Error(
            ErrorCode.QUERY_UNKNOWN_DATA_TYPE,
            f"DataType {data_type[:60]!r} is not supported; use one of "
            + ", ".join(SUPPORTED_DATA_TYPES),
        )
    start = end = None
    if (text := options.get(OptionName.START_TIME)) is not None:
        start = datetime_of(text, "StartTime", ErrorCode.QUERY_BAD_DATE)
    if (text := options.get(OptionName.END_TIME)) is not None:
        end = datetime_of(text, "EndTime", ErrorCode.QUERY_BAD_DATE)
    if start is not None and end is not None and end < start:
        raise Iec62325Error(ErrorCode.QUERY_END_BEFORE_START, "EndTime precedes StartTime")
    # Neither data type we answer takes parameters (REE: QRY-011 for extras).
    extra = sorted(set(options) - {OptionName.DATA_TYPE} - _QUERY_TIME_OPTIONS)
    if extra:
        raise Iec62325Error(
            ErrorCode.QUERY_UNKNOWN_PARAMETER,
            f"unknown parameter for DataType {data_type}: {extra[0][:60]}",
        )
    others = tuple((n, v) for n, v in options.items() if n != OptionName.DATA_TYPE)
    return QueryRequest(header, data_type=data_type, start=start, end=end, options=others)


def _read_put(
    header: Header, request: etree._Element | None, payload: etree._Element | None
) -> PutRequest:
    ids = read_ids(request) if request is not None else ()
    if payload is None:
        raise Iec62325Error(ErrorCode.PUT_NO_PAYLOAD, "the message has no Payload")
    format_text = child_text(payload, "Format", ErrorCode.PUT_BAD_PARAMETER)
    compressed = msg_child(payload, "Compressed", ErrorCode.PUT_BAD_PARAMETER)
    documents = [c for c in child_elements(payload) if namespace_of(c) not in (MSG_NAMESPACE, None)]
    name = next((i.value for i in ids if i.id_type == FILENAME_ID_TYPE), None)
    if compressed is not None:
        if documents:
            raise Iec62325Error(ErrorCode.PUT_BAD_PARAMETER, "Compressed beside an XML payload")
        if header.noun != Noun.COMPRESSED:
            raise Iec62325Error(
                ErrorCode.PUT_NOUN,
                f"malformed request: [provided noun={header.noun[:60]}] [expected noun=Compressed]",
            )
        try:
            # REE's client always sends Format; without one it means XML (gzip).
            fmt = PayloadFormat(xml_trim(format_text or PayloadFormat.XML))
        except ValueError:
            raise Iec62325Error(
                ErrorCode.PUT_BAD_PARAMETER, "Format must be BINARY or XML"
            ) from None
        text = text_of(compressed)
        if not xml_trim(text):
            raise Iec62325Error(ErrorCode.PUT_NO_PAYLOAD, "Payload/Compressed is empty")
        if fmt is PayloadFormat.BINARY and not name:
            raise Iec62325Error(
                ErrorCode.PUT_BAD_NAME, 'a BINARY payload needs Request/ID idType="name"'
            )
        return PutRequest(header, name=name, format=fmt, compressed=text, ids=ids)
    if not documents:
        raise Iec62325Error(ErrorCode.PUT_NO_PAYLOAD, "the Payload is empty")
    if len(documents) > 1:
        raise Iec62325Error(ErrorCode.PUT_BAD_PARAMETER, "the Payload holds several documents")
    root_name = local_name(documents[0])
    if header.noun != root_name:
        raise Iec62325Error(
            ErrorCode.PUT_NOUN,
            f"malformed request: [provided noun={header.noun[:60]}] [expected noun={root_name}]",
        )
    return PutRequest(header, name=name, format=PayloadFormat.XML, document=documents[0], ids=ids)


# --- building ours (client side) ---------------------------------------------


def _request(
    message: etree._Element,
    options: Iterable[tuple[str, str]],
    start: datetime | None = None,
    end: datetime | None = None,
) -> etree._Element:
    request = etree.SubElement(message, msg_q("Request"))
    if start is not None:
        etree.SubElement(request, msg_q("StartTime")).text = format_datetime(start)
    if end is not None:
        etree.SubElement(request, msg_q("EndTime")).text = format_datetime(end)
    for name, value in options:
        option = etree.SubElement(request, msg_q("Option"))
        etree.SubElement(option, msg_q("name")).text = name
        etree.SubElement(option, msg_q("value")).text = value
    return request


def list_request(
    after_code: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    interval_type: IntervalType | None = None,
    msg_type: str | None = None,
    *,
    source: str | None = None,
    now: datetime | None = None,
) -> etree._Element:
    """``get``/``MessageList``: after a code, or in an interval (not both)."""
    if (after_code is None) == (start is None or end is None):
        raise ValueError("list_request needs after_code, or start and end, not both")
    message, _ = new_message("RequestMessage", Verb.GET, Noun.MESSAGE_LIST, now, source)
    options: list[tuple[str, str]] = []
    if after_code is not None:
        options.append((OptionName.CODE, str(after_code)))
    if interval_type is not None:
        options.append((OptionName.INTERVAL_TYPE, str(interval_type)))
    if msg_type is not None:
        options.append((OptionName.MSG_TYPE, msg_type))
    _request(message, options, start, end)
    return message


def get_request(
    code: int | None = None,
    message_identification: str | None = None,
    message_version: int | None = None,
    *,
    source: str | None = None,
    now: datetime | None = None,
) -> etree._Element:
    """``get``/``Any``: by code, or by identification (and version)."""
    if (code is None) == (message_identification is None):
        raise ValueError("get_request needs a code or a message identification, not both")
    message, _ = new_message("RequestMessage", Verb.GET, Noun.ANY, now, source)
    options: list[tuple[str, str]] = []
    if code is not None:
        options.append((OptionName.CODE, str(code)))
    if message_identification is not None:
        options.append((OptionName.MESSAGE_IDENTIFICATION, message_identification))
    if message_version is not None:
        options.append((OptionName.MESSAGE_VERSION, str(message_version)))
    _request(message, options)
    return message


def put_binary_request(
    name: str,
    format: PayloadFormat | str = PayloadFormat.BINARY,
    *,
    source: str | None = None,
    now: datetime | None = None,
) -> etree._Element:
    """``create``/``Compressed`` for file ``name``; ``Payload/Compressed`` holds
    :data:`~.wire.PLACEHOLDER`, replaced by the base64 text while streaming."""
    message, _ = new_message("RequestMessage", Verb.CREATE, Noun.COMPRESSED, now, source)
    request = etree.SubElement(message, msg_q("Request"))
    identifier = etree.SubElement(request, msg_q("ID"), idType=FILENAME_ID_TYPE)
    identifier.text = name
    payload = etree.SubElement(message, msg_q("Payload"))
    etree.SubElement(payload, msg_q("Compressed")).text = PLACEHOLDER
    etree.SubElement(payload, msg_q("Format")).text = str(PayloadFormat(format))
    return message


def query_request(
    data_type: str = DataType.SERVER_TIMESTAMP,
    *,
    source: str | None = None,
    now: datetime | None = None,
) -> etree._Element:
    """``get``/``QueryData`` for ``data_type`` (``serverTimestamp`` by default)."""
    message, _ = new_message("RequestMessage", Verb.GET, Noun.QUERY_DATA, now, source)
    _request(message, [(OptionName.DATA_TYPE, data_type)])
    return message
