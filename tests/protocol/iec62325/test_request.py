"""RequestMessage: our builders read back, REE-shaped requests written by hand
from the XSD (SOAP 1.1 and 1.2, prefixed and default namespaces), and each
refusal with its REE code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree

from concentrador.protocol.iec62325 import (
    PLACEHOLDER,
    ErrorCode,
    GetRequest,
    Iec62325Error,
    IntervalType,
    ListRequest,
    PayloadFormat,
    PutRequest,
    QueryRequest,
    build_504_envelope,
    get_request,
    list_request,
    message_from_body,
    put_binary_request,
    query_request,
    read_request_message,
)
from concentrador.protocol.soap import SOAP11, SOAP12, parse_envelope

NOW = datetime(2024, 3, 1, 8, 30, tzinfo=UTC)
MSG = "http://iec.ch/TC57/2011/schema/message"


def _read(envelope: bytes, **kwargs: int) -> object:
    parsed = parse_envelope(envelope)
    message = message_from_body(parsed.body_elements)
    assert message is not None
    return read_request_message(message, **kwargs)


def _ree(body: str, soap: str = "http://schemas.xmlsoap.org/soap/envelope/") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><S:Envelope xmlns:S="{soap}"><S:Body>{body}'
        "</S:Body></S:Envelope>"
    ).encode()


def _options(verb: str, noun: str, *options: tuple[str, str], extra: str = "") -> bytes:
    opts = "".join(f"<Option><name>{n}</name><value>{v}</value></Option>" for n, v in options)
    return _ree(
        f'<RequestMessage xmlns="{MSG}"><Header><Verb>{verb}</Verb><Noun>{noun}</Noun>'
        f"<Timestamp>2024-03-01T08:30:00.000Z</Timestamp></Header>"
        f"<Request>{extra}{opts}</Request></RequestMessage>"
    )


# --- our builders, read back ---------------------------------------------------


@pytest.mark.parametrize("version", [SOAP11, SOAP12])
def test_builders_round_trip(version: object) -> None:
    env = build_504_envelope(
        list_request(after_code=41, msg_type="F1", now=NOW, source="0086"), version
    )  # type: ignore[arg-type]
    got = _read(env)
    assert isinstance(got, ListRequest)
    assert (got.after_code, got.msg_type, got.header.source, got.header.timestamp) == (
        41,
        "F1",
        "0086",
        NOW,
    )
    start, end = NOW - timedelta(days=2), NOW
    got = _read(
        build_504_envelope(
            list_request(start=start, end=end, interval_type=IntervalType.SERVER, now=NOW)
        )
    )
    assert isinstance(got, ListRequest)
    assert (got.start, got.end, got.interval_type, got.after_code) == (
        start,
        end,
        IntervalType.SERVER,
        None,
    )
    got = _read(build_504_envelope(get_request(code=9, now=NOW)))
    assert got == GetRequest(got.header, code=9)  # type: ignore[union-attr]
    got = _read(
        build_504_envelope(
            get_request(message_identification="F1_a.bz2", message_version=1, now=NOW)
        )
    )
    assert isinstance(got, GetRequest)
    assert (got.code, got.message_identification, got.message_version) == (None, "F1_a.bz2", 1)
    got = _read(build_504_envelope(put_binary_request("F1_a.bz2", now=NOW)))
    assert isinstance(got, PutRequest)
    assert (got.name, got.format, got.compressed, got.is_binary) == (
        "F1_a.bz2",
        PayloadFormat.BINARY,
        PLACEHOLDER,
        True,
    )
    assert got.header.noun == "Compressed" and got.header.verb == "create"
    got = _read(build_504_envelope(query_request(now=NOW)))
    assert isinstance(got, QueryRequest) and got.data_type == "serverTimestamp"


def test_builders_refuse_ambiguous_arguments() -> None:
    with pytest.raises(ValueError):
        list_request()
    with pytest.raises(ValueError):
        list_request(after_code=1, start=NOW, end=NOW)
    with pytest.raises(ValueError):
        get_request()
    with pytest.raises(ValueError):
        get_request(code=1, message_identification="x")


# --- REE-shaped requests by hand -------------------------------------------------


def test_ree_list_by_code_default_namespace_soap11() -> None:
    got = _read(_options("get", "MessageList", ("Code", " 0 ")))
    assert isinstance(got, ListRequest) and got.after_code == 0


def test_ree_list_prefixed_soap12_with_times_as_elements() -> None:
    body = (
        f'<ns2:RequestMessage xmlns:ns2="{MSG}" xmlns:ns3="urn:iec62325.504:messages:1:0">'
        "<ns2:Header><ns2:Verb>get</ns2:Verb><ns2:Noun>MessageList</ns2:Noun>"
        "<ns2:Timestamp>2024-03-01T08:30:00Z</ns2:Timestamp></ns2:Header><ns2:Request>"
        "<ns2:StartTime>\n 2024-02-01T00:00:00Z </ns2:StartTime>"
        "<ns2:EndTime>2024-02-02T01:00:00+01:00</ns2:EndTime>"
        "<ns2:Option><ns2:name>IntervalType</ns2:name><ns2:value>Server</ns2:value></ns2:Option>"
        "<ns2:Option><ns2:name>MsgType</ns2:name><ns2:value>F1</ns2:value></ns2:Option>"
        "</ns2:Request></ns2:RequestMessage>"
    )
    got = _read(_ree(body, "http://www.w3.org/2003/05/soap-envelope"))
    assert isinstance(got, ListRequest)
    assert got.start == datetime(2024, 2, 1, tzinfo=UTC)
    assert got.end == datetime(2024, 2, 2, tzinfo=UTC)
    assert (got.interval_type, got.msg_type) == (IntervalType.SERVER, "F1")


def test_ree_get_by_id_and_put_binary_and_xml() -> None:
    got = _read(
        _options("get", "Any", ("MessageIdentification", "F1 a.bz2"), ("MessageVersion", "2"))
    )
    assert isinstance(got, GetRequest) and got.message_identification == "F1 a.bz2"
    assert got.message_version == 2
    put = _ree(
        f'<RequestMessage xmlns="{MSG}"><Header><Verb>create</Verb><Noun>Compressed</Noun></Header>'
        '<Request><ID idType="name">F1_0086.bz2</ID></Request>'
        "<Payload><Compressed>QUJD\nREVG</Compressed><Format> BINARY </Format></Payload>"
        "</RequestMessage>"
    )
    got = _read(put)
    assert (
        isinstance(got, PutRequest) and got.compressed == "QUJD\nREVG" and got.name == "F1_0086.bz2"
    )
    xml_put = _ree(
        f'<RequestMessage xmlns="{MSG}"><Header><Verb>create</Verb><Noun>Doc</Noun></Header>'
        '<Payload><d:Doc xmlns:d="urn:doc"><d:x>1</d:x></d:Doc></Payload></RequestMessage>'
    )
    got = _read(xml_put)
    assert isinstance(got, PutRequest) and got.document is not None and not got.is_binary
    assert got.format is PayloadFormat.XML


def test_message_from_body_ignores_other_bodies_and_refuses_company() -> None:
    env = parse_envelope(_ree("<cp:x xmlns:cp='urn:x'/>"))
    assert message_from_body(env.body_elements) is None
    env = parse_envelope(_ree(f'<RequestMessage xmlns="{MSG}"/><x/>'))
    with pytest.raises(Iec62325Error) as caught:
        message_from_body(env.body_elements)
    assert caught.value.code == ErrorCode.BAD_FORMAT


def _put(noun: str, inner: str) -> bytes:
    return _ree(
        f'<RequestMessage xmlns="{MSG}"><Header><Verb>create</Verb><Noun>{noun}</Noun></Header>'
        f"{inner}</RequestMessage>"
    )


NAME_ID = '<Request><ID idType="name">a</ID></Request>'
DOC = '<d:Doc xmlns:d="urn:d"/>'


# --- each refusal ----------------------------------------------------------------

CASES: list[tuple[str, bytes, str]] = [
    ("no header", _ree(f'<RequestMessage xmlns="{MSG}"/>'), "HAND-002"),
    (
        "no noun",
        _ree(f'<RequestMessage xmlns="{MSG}"><Header><Verb>get</Verb></Header></RequestMessage>'),
        "HAND-002",
    ),
    (
        "two verbs",
        _ree(
            f'<RequestMessage xmlns="{MSG}"><Header><Verb>get</Verb><Verb>get</Verb>'
            "<Noun>Any</Noun></Header></RequestMessage>"
        ),
        "HAND-002",
    ),
    (
        "bad timestamp",
        _ree(
            f'<RequestMessage xmlns="{MSG}"><Header><Verb>get</Verb><Noun>Any</Noun>'
            "<Timestamp>yesterday</Timestamp></Header></RequestMessage>"
        ),
        "HAND-002",
    ),
    ("unknown verb", _options("delete", "Any"), "HAND-005"),
    ("unknown noun", _options("get", "Everything"), "HAND-005"),
    ("list neither", _options("get", "MessageList"), "LST-005"),
    (
        "list both",
        _options(
            "get", "MessageList", ("Code", "1"), extra="<StartTime>2024-01-01T00:00:00Z</StartTime>"
        ),
        "LST-005",
    ),
    (
        "list code+interval type",
        _options("get", "MessageList", ("Code", "1"), ("IntervalType", "Server")),
        "LST-005",
    ),
    ("list code text", _options("get", "MessageList", ("Code", "ten")), "LST-002"),
    ("list code huge", _options("get", "MessageList", ("Code", "9" * 30)), "LST-002"),
    ("list code negative", _options("get", "MessageList", ("Code", "-1")), "LST-001"),
    (
        "list end before start",
        _options(
            "get",
            "MessageList",
            extra="<StartTime>2024-01-02T00:00:00Z</StartTime><EndTime>2024-01-01T00:00:00Z</EndTime>",
        ),
        "LST-003",
    ),
    (
        "list 100 years",
        _options(
            "get",
            "MessageList",
            extra="<StartTime>1950-01-01T00:00:00Z</StartTime><EndTime>2050-01-01T00:00:00Z</EndTime>",
        ),
        "LST-004",
    ),
    (
        "list 32 days",
        _options(
            "get",
            "MessageList",
            extra="<StartTime>2024-01-01T00:00:00Z</StartTime><EndTime>2024-02-02T00:00:01Z</EndTime>",
        ),
        "LST-004",
    ),
    (
        "list interval type",
        _options(
            "get",
            "MessageList",
            ("IntervalType", "Wall"),
            extra="<StartTime>2024-01-01T00:00:00Z</StartTime><EndTime>2024-01-02T00:00:00Z</EndTime>",
        ),
        "LST-009",
    ),
    (
        "list bad date",
        _options(
            "get", "MessageList", ("StartTime", "01/01/2024"), ("EndTime", "2024-01-02T00:00:00Z")
        ),
        "LST-010",
    ),
    ("list repeated", _options("get", "MessageList", ("Code", "1"), ("Code", "2")), "LST-010"),
    ("list unknown", _options("get", "MessageList", ("Code", "1"), ("Colour", "red")), "LST-011"),
    ("get neither", _options("get", "Any", ("MessageVersion", "1")), "GET-004"),
    ("get both", _options("get", "Any", ("Code", "1"), ("MessageIdentification", "x")), "GET-003"),
    ("get queue", _options("get", "Any", ("Queue", "NEXT")), "GET-005"),
    ("get code zero", _options("get", "Any", ("Code", "0")), "GET-001"),
    ("get code text", _options("get", "Any", ("Code", "1.5")), "GET-002"),
    (
        "get version",
        _options("get", "Any", ("MessageIdentification", "x"), ("MessageVersion", "0")),
        "GET-019",
    ),
    ("get unknown", _options("get", "Any", ("Code", "1"), ("Owner", "x")), "GET-012"),
    ("get repeated", _options("get", "Any", ("Code", "1"), ("Code", "1")), "GET-011"),
    ("query no type", _options("get", "QueryData"), "QRY-001"),
    ("query unknown type", _options("get", "QueryData", ("DataType", "weather")), "QRY-002"),
    (
        "query end before start",
        _options(
            "get",
            "QueryData",
            ("DataType", "serverTimestamp"),
            ("StartTime", "2024-01-02T00:00:00Z"),
            ("EndTime", "2024-01-01T00:00:00Z"),
        ),
        "QRY-003",
    ),
    (
        "query bad date",
        _options("get", "QueryData", ("DataType", "serverTimestamp"), ("StartTime", "soon")),
        "QRY-009",
    ),
    (
        "query extra",
        _options("get", "QueryData", ("DataType", "serverTimestamp"), ("Owner", "x")),
        "QRY-011",
    ),
    ("put no payload", _options("create", "Compressed"), "PUT-013"),
    (
        "put empty",
        _ree(
            f'<RequestMessage xmlns="{MSG}"><Header><Verb>create</Verb><Noun>Compressed</Noun>'
            '</Header><Request><ID idType="name">a</ID></Request><Payload>'
            "<Compressed> </Compressed><Format>BINARY</Format></Payload></RequestMessage>"
        ),
        "PUT-013",
    ),
    (
        "put no name",
        _ree(
            f'<RequestMessage xmlns="{MSG}"><Header><Verb>create</Verb><Noun>Compressed</Noun>'
            "</Header><Payload><Compressed>QQ==</Compressed><Format>BINARY</Format></Payload>"
            "</RequestMessage>"
        ),
        "PUT-010",
    ),
    (
        "put format",
        _ree(
            f'<RequestMessage xmlns="{MSG}"><Header><Verb>create</Verb><Noun>Compressed</Noun>'
            '</Header><Request><ID idType="name">a</ID></Request><Payload>'
            "<Compressed>QQ==</Compressed><Format>PDF</Format></Payload></RequestMessage>"
        ),
        "PUT-017",
    ),
    (
        "put noun",
        _ree(
            f'<RequestMessage xmlns="{MSG}"><Header><Verb>create</Verb><Noun>Other</Noun>'
            '</Header><Payload><d:Doc xmlns:d="urn:d"/></Payload></RequestMessage>'
        ),
        "PUT-003",
    ),
    (
        "put compressed noun",
        _ree(
            f'<RequestMessage xmlns="{MSG}"><Header><Verb>create</Verb><Noun>Doc</Noun></Header>'
            '<Request><ID idType="name">a</ID></Request><Payload><Compressed>QQ==</Compressed>'
            "<Format>BINARY</Format></Payload></RequestMessage>"
        ),
        "PUT-003",
    ),
    (
        "put two documents",
        _ree(
            f'<RequestMessage xmlns="{MSG}"><Header><Verb>create</Verb><Noun>Doc</Noun></Header>'
            '<Payload><d:Doc xmlns:d="urn:d"/><d:Doc xmlns:d="urn:d"/></Payload>'
            "</RequestMessage>"
        ),
        "PUT-017",
    ),
]


@pytest.mark.parametrize(("label", "envelope", "code"), CASES, ids=[c[0] for c in CASES])
def test_refusals_carry_ree_codes(label: str, envelope: bytes, code: str) -> None:
    with pytest.raises(Iec62325Error) as caught:
        _read(envelope)
    assert caught.value.code == code, caught.value


def test_wrong_root_is_bad_format() -> None:
    with pytest.raises(Iec62325Error) as caught:
        read_request_message(etree.fromstring(f'<ResponseMessage xmlns="{MSG}"/>'))
    assert caught.value.code == ErrorCode.BAD_FORMAT


def test_list_interval_limit_is_configurable() -> None:
    env = _options(
        "get",
        "MessageList",
        extra="<StartTime>2024-01-01T00:00:00Z</StartTime><EndTime>2024-03-01T00:00:00Z</EndTime>",
    )
    with pytest.raises(Iec62325Error):
        _read(env)
    assert isinstance(_read(env, max_list_days=90), ListRequest)
