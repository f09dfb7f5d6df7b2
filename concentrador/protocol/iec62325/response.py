"""``ResponseMessage`` and ``FaultMessage``: building ours (server side), reading a peer's.

Shapes follow what REE's client checks: the Header Verb is ``reply`` and its
Noun is the local name of the payload's root (``MessageList``, ``QueryData``)
or ``Compressed`` for a binary; a ``Payload`` element is always present
(REE's client refuses an answer without one, even to a put).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from lxml import etree

from concentrador.protocol.iec62325.elements import (
    child_text,
    datetime_of,
    is_msg,
    msg_child,
    msg_children,
    msg_q,
    new_message,
    read_header,
    read_ids,
    text_of,
)
from concentrador.protocol.iec62325.errors import (
    ErrorCode,
    Iec62325Error,
    ResponseFormatError,
)
from concentrador.protocol.iec62325.listing import message_list_text
from concentrador.protocol.iec62325.models import MessageListEntry, ReplyError, Response
from concentrador.protocol.iec62325.wire import (
    CMSG_NAMESPACE,
    CMSG_PREFIX,
    FILENAME_ID_TYPE,
    MSG_NAMESPACE,
    PLACEHOLDER,
    DataType,
    Noun,
    OptionName,
    PayloadFormat,
    ReplyResult,
    Verb,
    format_datetime,
)
from concentrador.protocol.xmlparse import child_elements, local_name, namespace_of, xml_trim

__all__ = [
    "binary_get_response",
    "data_types_response",
    "message_list_response",
    "put_response",
    "read_message_list",
    "read_response_message",
    "read_server_time",
    "reply_error",
    "server_time_response",
]


def _c(name: str) -> str:
    return f"{{{CMSG_NAMESPACE}}}{name}"


def _reply(
    message: etree._Element, result: ReplyResult = ReplyResult.OK, name: str | None = None
) -> etree._Element:
    reply = etree.SubElement(message, msg_q("Reply"))
    etree.SubElement(reply, msg_q("Result")).text = result
    if name is not None:
        etree.SubElement(reply, msg_q("ID"), idType=FILENAME_ID_TYPE).text = name
    return reply


def _response(noun: str, now: datetime, source: str | None) -> etree._Element:
    message, _ = new_message("ResponseMessage", Verb.REPLY, noun, now, source)
    return message


# --- server side: building ----------------------------------------------------


def message_list_response(
    entries: Iterable[MessageListEntry],
    now: datetime,
    *,
    source: str | None = None,
    placeholder: bool = False,
) -> etree._Element:
    """``reply``/``MessageList`` listing ``entries`` in the order given.

    With ``placeholder=True`` the Payload holds :data:`~.wire.PLACEHOLDER`
    instead, for the caller to replace with :func:`message_list_text` in the
    serialized envelope (the fast path; nothing is parsed). Otherwise the text
    is parsed once into the element (a 10,000-entry list is ~4 MB of XML).
    """
    message = _response(Noun.MESSAGE_LIST, now, source)
    _reply(message)
    payload = etree.SubElement(message, msg_q("Payload"))
    if placeholder:
        payload.text = PLACEHOLDER
    else:
        text = message_list_text(entries)
        payload.append(etree.fromstring(text.encode(), etree.XMLParser(huge_tree=True)))
    return message


def binary_get_response(
    name: str,
    now: datetime,
    format: PayloadFormat | str = PayloadFormat.BINARY,
    *,
    source: str | None = None,
) -> etree._Element:
    """``reply``/``Compressed`` for file ``name``; ``Payload/Compressed`` holds
    :data:`~.wire.PLACEHOLDER` for the streamed base64 text."""
    message = _response(Noun.COMPRESSED, now, source)
    _reply(message, name=name)
    payload = etree.SubElement(message, msg_q("Payload"))
    etree.SubElement(payload, msg_q("Compressed")).text = PLACEHOLDER
    etree.SubElement(payload, msg_q("Format")).text = str(PayloadFormat(format))
    return message


def put_response(
    name: str | None, now: datetime, *, source: str | None = None, noun: str = Noun.EMPTY
) -> etree._Element:
    """``reply`` OK to a put, with ``Reply/ID idType="name"`` and an empty Payload
    (REE's own server answers a put with an empty Noun, as here by default)."""
    message = _response(noun, now, source)
    _reply(message, name=name)
    etree.SubElement(message, msg_q("Payload"))
    return message


def _query_data(message: etree._Element, data_type: str) -> etree._Element:
    payload = etree.SubElement(message, msg_q("Payload"))
    query = etree.SubElement(payload, _c("QueryData"), nsmap={CMSG_PREFIX: CMSG_NAMESPACE})
    parameters = etree.SubElement(query, _c("RequestParameters"))
    parameter = etree.SubElement(parameters, _c("Parameter"))
    etree.SubElement(parameter, _c("name")).text = OptionName.DATA_TYPE
    etree.SubElement(parameter, _c("value")).text = data_type
    return query


def server_time_response(now: datetime, *, source: str | None = None) -> etree._Element:
    """``reply``/``QueryData`` for ``serverTimestamp`` (Decision: the time is a
    ``cmsg:ServerTimestamp`` after the echoed ``RequestParameters``)."""
    message = _response(Noun.QUERY_DATA, now, source)
    _reply(message)
    query = _query_data(message, DataType.SERVER_TIMESTAMP)
    etree.SubElement(query, _c("ServerTimestamp")).text = format_datetime(now)
    return message


def data_types_response(
    data_types: Iterable[str], now: datetime, *, source: str | None = None
) -> etree._Element:
    """``reply``/``QueryData`` for ``listOfDataTypes``: a ``cmsg:ParameterList``
    with one ``DataType`` parameter per supported value."""
    message = _response(Noun.QUERY_DATA, now, source)
    _reply(message)
    query = _query_data(message, DataType.LIST_OF_DATA_TYPES)
    listing = etree.SubElement(query, _c("ParameterList"))
    for data_type in data_types:
        parameter = etree.SubElement(listing, _c("Parameter"))
        etree.SubElement(parameter, _c("name")).text = OptionName.DATA_TYPE
        etree.SubElement(parameter, _c("value")).text = data_type
    return message


def reply_error(error: Iec62325Error | ReplyError) -> ReplyError:
    if isinstance(error, ReplyError):
        return error
    return ReplyError(code=error.code, details=error.details)


# --- client side: reading -------------------------------------------------------


def read_response_message(message: etree._Element) -> Response:
    """A peer's ``ResponseMessage`` (raises :class:`ResponseFormatError`)."""
    if not is_msg(message, "ResponseMessage"):
        raise ResponseFormatError(
            ErrorCode.SCHEMA, f"expected a ResponseMessage, got <{local_name(message)}>"
        )
    try:
        header = read_header(message)
        reply = msg_child(message, "Reply", ErrorCode.SCHEMA)
        if reply is None:
            raise ResponseFormatError(ErrorCode.SCHEMA, "the ResponseMessage has no Reply")
        result_text = child_text(reply, "Result", ErrorCode.SCHEMA)
        try:
            result = ReplyResult(xml_trim(result_text or ""))
        except ValueError:
            raise ResponseFormatError(
                ErrorCode.SCHEMA, "Reply/Result must be OK, PARTIAL or FAILED"
            ) from None
        errors = tuple(read_reply_errors(reply))
        ids = read_ids(reply)
        payload = msg_child(message, "Payload", ErrorCode.SCHEMA)
        document = compressed = format_text = None
        if payload is not None:
            documents = [
                c for c in child_elements(payload) if namespace_of(c) not in (MSG_NAMESPACE, None)
            ]
            document = documents[0] if documents else None
            compressed_element = msg_child(payload, "Compressed", ErrorCode.SCHEMA)
            if compressed_element is not None:
                compressed = text_of(compressed_element)
            format_text = child_text(payload, "Format", ErrorCode.SCHEMA)
    except ResponseFormatError:
        raise
    except Iec62325Error as exc:
        raise ResponseFormatError(exc.code, exc.details) from None
    return Response(
        header=header,
        result=result,
        errors=errors,
        ids=ids,
        payload=document,
        compressed=compressed,
        format=None if format_text is None else xml_trim(format_text),
        has_payload=payload is not None,
    )


def read_reply_errors(reply: etree._Element) -> list[ReplyError]:
    """The ``Error`` children of a ``Reply`` (code, level, reason, details)."""
    found = []
    for error in msg_children(reply, "Error"):
        code = child_text(error, "code", ErrorCode.SCHEMA)
        found.append(
            ReplyError(
                code=xml_trim(code or "")[:200],
                details=(child_text(error, "details", ErrorCode.SCHEMA) or "")[:4096],
                level=child_text(error, "level", ErrorCode.SCHEMA),
                reason=child_text(error, "reason", ErrorCode.SCHEMA),
            )
        )
    return found


def _cmsg_text(element: etree._Element, name: str, code: int | None) -> str | None:
    found = [c for c in child_elements(element) if local_name(c) == name]
    if len(found) > 1:
        raise ResponseFormatError(ErrorCode.LIST_BAD_ENTRY, f"[code={code}] {name} is repeated")
    if not found:
        return None
    if child_elements(found[0]):
        raise ResponseFormatError(ErrorCode.LIST_BAD_ENTRY, f"[code={code}] {name} is not text")
    return "".join(t for t in found[0].itertext() if isinstance(t, str))


def _required(element: etree._Element, name: str, code: int | None) -> str:
    text = _cmsg_text(element, name, code)
    if text is None or not xml_trim(text):
        raise ResponseFormatError(ErrorCode.LIST_BAD_ENTRY, f"[code={code}] entry has no {name}")
    return text


def _entry_time(text: str, what: str, code: int | None) -> datetime:
    try:
        return datetime_of(text, what, ErrorCode.LIST_BAD_ENTRY)
    except Iec62325Error as exc:
        raise ResponseFormatError(exc.code, f"[code={code}] {exc.details}") from None


def read_message_list(payload: etree._Element) -> list[MessageListEntry]:
    """The entries of a ``MessageList`` (the element itself, or a Payload holding it)."""
    if local_name(payload) != "MessageList":
        lists = [c for c in child_elements(payload) if local_name(c) == "MessageList"]
        if len(lists) != 1:
            raise ResponseFormatError(ErrorCode.LIST_NO_LIST, "the payload holds no MessageList")
        payload = lists[0]
    entries = []
    for message in child_elements(payload):
        if local_name(message) != "Message":
            continue
        code_text = _required(message, "Code", None)
        code_value = xml_trim(code_text)
        if not (code_value.isascii() and code_value.isdigit()) or int(code_value) < 1:
            raise ResponseFormatError(
                ErrorCode.LIST_BAD_ENTRY, f"entry Code {code_text[:40]!r} is not a positive integer"
            )
        code = int(code_value)
        version_text = _cmsg_text(message, "MessageVersion", code)
        version = None
        if version_text is not None:
            version_value = xml_trim(version_text)
            if not (version_value.isascii() and version_value.isdigit()):
                raise ResponseFormatError(
                    ErrorCode.LIST_BAD_ENTRY, f"[code={code}] MessageVersion is not an integer"
                )
            version = int(version_value)
        intervals = [
            c for c in child_elements(message) if local_name(c) == "ApplicationTimeInterval"
        ]
        if len(intervals) != 1:
            raise ResponseFormatError(
                ErrorCode.LIST_BAD_ENTRY, f"[code={code}] needs one ApplicationTimeInterval"
            )
        end_text = _cmsg_text(intervals[0], "end", code)
        status = _cmsg_text(message, "Status", code)
        entries.append(
            MessageListEntry(
                code=code,
                message_identification=_required(message, "MessageIdentification", code),
                type=_required(message, "Type", code),
                owner=_required(message, "Owner", code),
                application_start=_entry_time(
                    _required(intervals[0], "start", code), "start", code
                ),
                application_end=None if end_text is None else _entry_time(end_text, "end", code),
                server_timestamp=_entry_time(
                    _required(message, "ServerTimestamp", code), "ServerTimestamp", code
                ),
                message_version=version,
                status=None if status is None else xml_trim(status),
            )
        )
    return entries


def read_server_time(payload: etree._Element) -> datetime:
    """The server time in a ``QueryData`` answer to ``serverTimestamp``.

    Liberal, since the standard leaves the element open: ``ServerTimestamp``
    if present, else the first other leaf outside ``RequestParameters`` whose
    text is an xs:dateTime.
    """
    candidates = [
        e
        for e in payload.iter()
        if isinstance(e.tag, str)
        and not child_elements(e)
        and all(local_name(a) != "RequestParameters" for a in e.iterancestors())
        and e is not payload
    ]
    candidates.sort(key=lambda e: local_name(e) != "ServerTimestamp")
    for element in candidates:
        text = "".join(t for t in element.itertext() if isinstance(t, str))
        try:
            return datetime_of(text, "ServerTimestamp", ErrorCode.SCHEMA)
        except Iec62325Error:
            continue
    raise ResponseFormatError(ErrorCode.EMPTY_RESPONSE, "the QueryData answer holds no time")
