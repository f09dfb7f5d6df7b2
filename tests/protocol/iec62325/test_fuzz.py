"""Property tests: builders and readers agree, and whatever a peer sends, the
504 readers raise nothing but ProtocolError (Iec62325Error and the XML/SOAP
errors below it)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from concentrador.protocol.errors import ProtocolError
from concentrador.protocol.iec62325 import (
    MSG_NAMESPACE,
    GetRequest,
    ListRequest,
    MessageListEntry,
    build_504_envelope,
    get_request,
    list_request,
    message_from_body,
    message_list_response,
    put_binary_request,
    query_request,
    read_fault,
    read_message_list,
    read_request_message,
    read_response_message,
    read_server_time,
    server_time_response,
)
from concentrador.protocol.soap import SOAP11, SOAP12, parse_envelope

# Text XML can carry (lxml refuses the rest on writing, which is not our reader's concern).
xml_text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff")
    | st.sampled_from("\t\n\r"),
    max_size=30,
)
moments = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)


@given(
    code=st.integers(0, 2**63 - 1),
    msg_type=st.none() | xml_text,
    version=st.sampled_from([SOAP11, SOAP12]),
    now=moments,
)
def test_list_by_code_round_trip(
    code: int, msg_type: str | None, version: object, now: datetime
) -> None:
    envelope = build_504_envelope(
        list_request(after_code=code, msg_type=msg_type, now=now), version
    )  # type: ignore[arg-type]
    message = message_from_body(parse_envelope(envelope).body_elements)
    assert message is not None
    got = read_request_message(message)
    assert isinstance(got, ListRequest)
    assert (got.after_code, got.msg_type, got.header.timestamp) == (code, msg_type, now)


@given(start=moments, span=st.integers(0, 31 * 86400))
def test_list_by_interval_round_trip(start: datetime, span: int) -> None:
    end = start + timedelta(seconds=span)
    got = read_request_message(list_request(start=start, end=end))
    assert isinstance(got, ListRequest) and (got.start, got.end) == (start, end)


@given(
    code=st.integers(1, 2**63 - 1) | st.none(),
    ident=xml_text.filter(bool),
    version=st.none() | st.integers(1, 10**6),
)
def test_get_round_trip(code: int | None, ident: str, version: int | None) -> None:
    element = (
        get_request(code=code)
        if code is not None
        else get_request(message_identification=ident, message_version=version)
    )
    got = read_request_message(element)
    assert isinstance(got, GetRequest)
    if code is not None:
        assert got.code == code
    else:
        assert (got.message_identification, got.message_version) == (ident, version)


entries = st.lists(
    st.builds(
        MessageListEntry,
        code=st.integers(1, 2**62),
        message_identification=xml_text.filter(lambda s: s.strip(" \t\r\n") != ""),
        type=xml_text.filter(lambda s: s.strip(" \t\r\n") != ""),
        owner=xml_text.filter(lambda s: s.strip(" \t\r\n") != ""),
        application_start=moments,
        server_timestamp=moments,
        application_end=moments,
        message_version=st.none() | st.integers(1, 1000),
        status=st.none() | st.sampled_from(["OK", "FAILED"]),
    ),
    max_size=5,
)


@given(listed=entries, now=moments)
def test_message_list_round_trip(listed: list[MessageListEntry], now: datetime) -> None:
    envelope = build_504_envelope(message_list_response(listed, now))
    message = message_from_body(parse_envelope(envelope).body_elements)
    assert message is not None
    payload = read_response_message(message).payload
    assert payload is not None
    assert read_message_list(payload) == listed


# --- hostile input ----------------------------------------------------------------

NAMES = [
    "RequestMessage",
    "ResponseMessage",
    "FaultMessage",
    "Header",
    "Verb",
    "Noun",
    "Timestamp",
    "Source",
    "Request",
    "Reply",
    "Result",
    "Error",
    "code",
    "details",
    "Payload",
    "Compressed",
    "Format",
    "ID",
    "Option",
    "name",
    "value",
    "StartTime",
    "EndTime",
    "MessageList",
    "Message",
    "Code",
    "MessageIdentification",
    "MessageVersion",
    "ApplicationTimeInterval",
    "start",
    "end",
    "ServerTimestamp",
    "Type",
    "Owner",
    "QueryData",
    "RequestParameters",
    "Parameter",
]
VALUES = (
    st.sampled_from(
        [
            "get",
            "create",
            "reply",
            "MessageList",
            "Any",
            "QueryData",
            "Compressed",
            "BINARY",
            "XML",
            "Code",
            "MessageIdentification",
            "MessageVersion",
            "Queue",
            "DataType",
            "serverTimestamp",
            "IntervalType",
            "Server",
            "StartTime",
            "EndTime",
            "MsgType",
            "name",
            "OK",
            "FAILED",
            "1",
            "-1",
            "0",
            "99999999999999999999999",
            "2024-01-01T00:00:00Z",
            "2024-02-30T25:00:00Z",
            "",
        ]
    )
    | xml_text
)
NAMESPACES = st.sampled_from([MSG_NAMESPACE, None, "urn:iec62325.504:messages:1:0", "urn:other"])


@st.composite
def trees(draw: st.DrawFn, depth: int = 0) -> etree._Element:
    namespace = draw(NAMESPACES)
    name = draw(st.sampled_from(NAMES))
    element = etree.Element(f"{{{namespace}}}{name}" if namespace else name)
    if draw(st.booleans()):
        element.set("idType", draw(st.sampled_from(["name", "other"])))
    if depth < 4 and draw(st.booleans()):
        for _ in range(draw(st.integers(0, 4))):
            element.append(draw(trees(depth + 1)))
    else:
        element.text = draw(VALUES)
    return element


def _exercise(element: etree._Element) -> None:
    for reader in (
        read_request_message,
        read_response_message,
        read_message_list,
        read_server_time,
        read_fault,
    ):
        with contextlib.suppress(ProtocolError):
            reader(element)  # type: ignore[operator]
    with contextlib.suppress(ProtocolError):
        message_from_body([element])


@given(
    root=st.sampled_from(["RequestMessage", "ResponseMessage", "MessageList", "QueryData"]),
    children=st.lists(trees(1), max_size=5),
)
def test_readers_raise_only_protocol_errors_on_random_trees(
    root: str, children: list[etree._Element]
) -> None:
    element = etree.Element(f"{{{MSG_NAMESPACE}}}{root}")
    element.extend(children)
    _exercise(element)


SEEDS = [
    build_504_envelope(list_request(after_code=3, now=datetime(2024, 1, 1, tzinfo=UTC))),
    build_504_envelope(get_request(message_identification="F1_a.bz2", message_version=1), SOAP12),
    build_504_envelope(put_binary_request("F1_a.bz2")),
    build_504_envelope(query_request()),
    build_504_envelope(server_time_response(datetime(2024, 1, 1, tzinfo=UTC))),
]


@given(
    seed=st.sampled_from(SEEDS),
    cuts=st.lists(
        st.tuples(st.integers(0, 2000), st.integers(0, 40), st.binary(max_size=12)), max_size=4
    ),
)
def test_mutated_envelopes_raise_only_protocol_errors(
    seed: bytes, cuts: list[tuple[int, int, bytes]]
) -> None:
    data = seed
    for at, length, insert in cuts:
        at %= len(data) + 1
        data = data[:at] + insert + data[at + length :]
    try:
        envelope = parse_envelope(data)
    except ProtocolError:
        return
    for element in envelope.body_elements:
        _exercise(element)
    with contextlib.suppress(ProtocolError):
        message = message_from_body(envelope.body_elements)
        if message is not None:
            _exercise(message)
