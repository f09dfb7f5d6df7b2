"""ResponseMessage and FaultMessage: builders read back by our readers, the
fast list (text == canonical form), and faults in SOAP 1.1 and 1.2."""

from __future__ import annotations

import copy
import time
from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree

from concentrador.protocol.iec62325 import (
    PLACEHOLDER,
    ErrorCode,
    Iec62325Error,
    MessageListEntry,
    ReplyError,
    ReplyResult,
    ResponseFormatError,
    binary_get_response,
    build_504_envelope,
    data_types_response,
    fault_envelope,
    fault_message,
    message_from_body,
    message_list_response,
    message_list_text,
    put_response,
    read_fault,
    read_message_list,
    read_response_message,
    read_server_time,
    server_time_response,
    split_at_placeholder,
)
from concentrador.protocol.soap import SOAP11, SOAP12, SoapVersion, parse_envelope

NOW = datetime(2024, 3, 1, 8, 30, tzinfo=UTC)
MSG = "http://iec.ch/TC57/2011/schema/message"
HEADER = "<Header><Verb>reply</Verb><Noun>x</Noun></Header>"


def _entries(count: int, name: str = "F1_0086_20240101_{}.bz2") -> list[MessageListEntry]:
    return [
        MessageListEntry(
            code=i,
            message_identification=name.format(i),
            type="F1",
            owner="0086",
            application_start=NOW + timedelta(seconds=i),
            server_timestamp=NOW + timedelta(seconds=i),
        )
        for i in range(1, count + 1)
    ]


def _roundtrip(message: etree._Element, version: SoapVersion = SOAP11) -> etree._Element:
    envelope = parse_envelope(build_504_envelope(message, version), max_size=10**8)
    found = message_from_body(envelope.body_elements)
    assert found is not None
    return found


@pytest.mark.parametrize("version", [SOAP11, SOAP12])
def test_message_list_round_trip(version: SoapVersion) -> None:
    entries = _entries(3, "F1 & <{}>\r.bz2")
    response = read_response_message(_roundtrip(message_list_response(entries, NOW), version))
    assert (response.header.verb, response.header.noun, response.result) == (
        "reply",
        "MessageList",
        ReplyResult.OK,
    )
    assert response.payload is not None
    got = read_message_list(response.payload)
    # application_end defaults to the start on the wire.
    assert got == [e._replace(application_end=e.application_start) for e in entries]


def test_list_text_is_its_own_canonical_form() -> None:
    entries = _entries(20, "F1_&<>\r_{}.bz2")
    full = message_list_response(entries, NOW, source="0086")
    fast = message_list_response(entries, NOW, source="0086", placeholder=True)

    def c14n(element: etree._Element) -> bytes:
        return etree.tostring(etree.ElementTree(copy.deepcopy(element)), method="c14n")

    before, after = c14n(fast).split(PLACEHOLDER.encode())
    assert c14n(full) == before + message_list_text(entries).encode() + after


def test_list_of_10000_is_fast_and_correct() -> None:
    entries = _entries(10_000)
    started = time.perf_counter()
    message = message_list_response(entries, NOW, placeholder=True)
    prefix, suffix = split_at_placeholder(build_504_envelope(message, SOAP12))
    body = prefix + message_list_text(entries).encode() + suffix
    elapsed = time.perf_counter() - started
    print(f"\nlist of 10,000 built and serialised (text path) in {elapsed * 1000:.1f} ms")
    started = time.perf_counter()
    build_504_envelope(message_list_response(entries, NOW), SOAP12)
    print(f"element path: {(time.perf_counter() - started) * 1000:.1f} ms")
    envelope = parse_envelope(body, max_size=10**8)
    found = message_from_body(envelope.body_elements)
    assert found is not None
    payload = read_response_message(found).payload
    assert payload is not None
    listed = read_message_list(payload)
    assert [e.code for e in listed] == list(range(1, 10_001))


def test_list_refuses_what_xml_cannot_carry_and_bad_codes() -> None:
    with pytest.raises(Iec62325Error):
        message_list_text(_entries(1, "bad\x01{}"))
    with pytest.raises(Iec62325Error):
        message_list_text([_entries(1)[0]._replace(code=0)])


def test_binary_get_and_put_and_time_responses() -> None:
    get = read_response_message(_roundtrip(binary_get_response("F1_a.bz2", NOW, source="0086")))
    assert (get.header.noun, get.name, get.compressed, get.format) == (
        "Compressed",
        "F1_a.bz2",
        PLACEHOLDER,
        "BINARY",
    )
    assert get.header.source == "0086"
    put = read_response_message(_roundtrip(put_response("F1_b.bz2", NOW)))
    assert (put.result, put.name, put.has_payload, put.payload, put.header.noun) == (
        ReplyResult.OK,
        "F1_b.bz2",
        True,
        None,
        "",
    )
    query = read_response_message(_roundtrip(server_time_response(NOW), SOAP12))
    assert query.header.noun == "QueryData" and query.payload is not None
    assert etree.QName(query.payload).localname == "QueryData"
    assert read_server_time(query.payload) == NOW
    types = read_response_message(_roundtrip(data_types_response(["serverTimestamp"], NOW)))
    assert types.payload is not None
    values = [e.text for e in types.payload.iter("{*}value")]
    assert values == ["listOfDataTypes", "serverTimestamp"]


def test_read_server_time_liberal_and_missing() -> None:
    payload = etree.fromstring(
        "<QueryData><RequestParameters><Parameter><name>DataType</name>"
        "<value>2020-01-01T00:00:00Z</value></Parameter></RequestParameters>"
        "<Time> 2024-03-01T09:30:00+01:00 </Time></QueryData>"
    )
    assert read_server_time(payload) == NOW
    with pytest.raises(ResponseFormatError):
        read_server_time(etree.fromstring("<QueryData><x>soon</x></QueryData>"))


@pytest.mark.parametrize("version", [SOAP11, SOAP12])
def test_fault_envelope_round_trip(version: SoapVersion) -> None:
    errors = [Iec62325Error(ErrorCode.GET_NOT_FOUND, "no message with code 7")]
    envelope = parse_envelope(fault_envelope(errors, version))
    assert envelope.version is version
    assert envelope.fault is not None and envelope.fault.is_client
    assert "GET-006" in envelope.fault.string
    assert read_fault(envelope) == [ReplyError("GET-006", "no message with code 7")]
    server = parse_envelope(
        fault_envelope([Iec62325Error(ErrorCode.PUT_STORE_FAILED, "disk")], version)
    )
    assert server.fault is not None and server.fault.is_server


def test_fault_message_shape_and_foreign_faults() -> None:
    fault = fault_message([ReplyError("HAND-007", "bad\x00 sig", level="FATAL")])
    ns = {"m": MSG}
    assert fault.findtext("m:Reply/m:Result", namespaces=ns) == "FAILED"
    assert [c.tag.split("}")[1] for c in fault.find("m:Reply/m:Error", ns)] == [
        "code",
        "level",
        "details",
    ]
    assert fault.findtext("m:Reply/m:Error/m:details", namespaces=ns) == "bad sig"
    plain = parse_envelope(
        b'<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><S:Fault>'
        b"<faultcode>S:Server</faultcode><faultstring>boom</faultstring></S:Fault></S:Body></S:Envelope>"
    )
    [error] = read_fault(plain)
    assert error.code == ErrorCode.FAULT_RECEIVED and "boom" in error.details


@pytest.mark.parametrize(
    ("xml", "code"),
    [
        (
            f'<ResponseMessage xmlns="{MSG}">{HEADER}</ResponseMessage>',
            "HAND-002",
        ),
        (
            f'<ResponseMessage xmlns="{MSG}">{HEADER}'
            "<Reply><Result>MAYBE</Result></Reply></ResponseMessage>",
            "HAND-002",
        ),
        (f'<RequestMessage xmlns="{MSG}"/>', "HAND-002"),
    ],
)
def test_bad_responses(xml: str, code: str) -> None:
    with pytest.raises(ResponseFormatError) as caught:
        read_response_message(etree.fromstring(xml))
    assert caught.value.code == code


@pytest.mark.parametrize(
    "entry",
    [
        "<Message><MessageIdentification>a</MessageIdentification></Message>",
        "<Message><Code>0</Code></Message>",
        "<Message><Code>1</Code><MessageIdentification>a</MessageIdentification>"
        "<ApplicationTimeInterval><start>x</start></ApplicationTimeInterval>"
        "<ServerTimestamp>2024-01-01T00:00:00Z</ServerTimestamp><Type>F1</Type><Owner>o</Owner></Message>",
        "<Message><Code>1</Code><MessageIdentification>a</MessageIdentification>"
        "<ServerTimestamp>2024-01-01T00:00:00Z</ServerTimestamp><Type>F1</Type><Owner>o</Owner></Message>",
    ],
)
def test_bad_list_entries(entry: str) -> None:
    with pytest.raises(ResponseFormatError) as caught:
        read_message_list(etree.fromstring(f"<MessageList>{entry}</MessageList>"))
    assert caught.value.code == ErrorCode.LIST_BAD_ENTRY
    with pytest.raises(ResponseFormatError):
        read_message_list(etree.fromstring("<Payload/>"))
