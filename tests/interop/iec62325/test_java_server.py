"""Our independent Java IEC 62325-504 server works, checked with raw HTTP and lxml.

These tests pin down the counterpart that our 504 client is tested against
(``EmeServer``, JAX-WS RI + the JDK's XMLDSig): list by code and by interval,
get by code and by id, binary put, query serverTimestamp, 504 faults with
``FaultMessage`` details, signed responses, verified signed puts, mutual TLS.
No concentrador code is involved except, where it exists, our verifier.
"""

from __future__ import annotations

import base64
import random
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from lxml import etree

from tests.interop.iec62325.eme_java import EmeJava, EmeJavaServer, start_eme_java_server

pytestmark = pytest.mark.interop

MSG = "http://iec.ch/TC57/2011/schema/message"
CMSG = "urn:iec62325.504:messages:1:0"
DS = "http://www.w3.org/2000/09/xmldsig#"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
NS = {"m": MSG, "c": CMSG, "ds": DS}


def request_message(
    verb: str,
    noun: str,
    options: dict[str, str] | None = None,
    *,
    start: str | None = None,
    end: str | None = None,
    name: str | None = None,
    compressed: bytes | None = None,
) -> bytes:
    """A bare 61968-100 RequestMessage, as lxml serializes it."""
    message = etree.Element(f"{{{MSG}}}RequestMessage", nsmap={None: MSG})
    header = etree.SubElement(message, f"{{{MSG}}}Header")
    etree.SubElement(header, f"{{{MSG}}}Verb").text = verb
    etree.SubElement(header, f"{{{MSG}}}Noun").text = noun
    etree.SubElement(header, f"{{{MSG}}}Timestamp").text = "2024-06-01T00:00:00Z"
    request = etree.SubElement(message, f"{{{MSG}}}Request")
    if start is not None:
        etree.SubElement(request, f"{{{MSG}}}StartTime").text = start
        etree.SubElement(request, f"{{{MSG}}}EndTime").text = end
    for key, value in (options or {}).items():
        option = etree.SubElement(request, f"{{{MSG}}}Option")
        etree.SubElement(option, f"{{{MSG}}}name").text = key
        etree.SubElement(option, f"{{{MSG}}}value").text = value
    if name is not None:
        etree.SubElement(request, f"{{{MSG}}}ID", idType="name").text = name
    if compressed is not None:
        payload = etree.SubElement(message, f"{{{MSG}}}Payload")
        etree.SubElement(payload, f"{{{MSG}}}Compressed").text = base64.b64encode(compressed)
        etree.SubElement(payload, f"{{{MSG}}}Format").text = "BINARY"
    return etree.tostring(message)


def envelope(message: bytes, soap: str = "1.1") -> bytes:
    ns = SOAP12 if soap == "1.2" else SOAP11
    return f'<S:Envelope xmlns:S="{ns}"><S:Body>'.encode() + message + b"</S:Body></S:Envelope>"


def client_tls(pki: Path, stem: str = "client") -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    context.load_cert_chain(str(pki / f"{stem}.pem"), str(pki / f"{stem}.key"))
    return context


async def call(
    url: str, body: bytes, pki: Path, *, soap: str = "1.1"
) -> tuple[int, etree._Element, bytes]:
    """POST one envelope; (HTTP status, the Body's first child, the raw response)."""
    headers = (
        {"Content-Type": "application/soap+xml; charset=utf-8"}
        if soap == "1.2"
        else {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '"#request"'}
    )
    connector = aiohttp.TCPConnector(ssl=client_tls(pki))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        raw = await response.read()
    root = etree.fromstring(raw, etree.XMLParser(resolve_entities=False, no_network=True))
    return response.status, root[-1][0], raw


def fault_code(fault: etree._Element) -> str:
    codes = fault.xpath(".//m:FaultMessage/m:Reply/m:Error/m:code/text()", namespaces=NS)
    results = fault.xpath(".//m:FaultMessage/m:Reply/m:Result/text()", namespaces=NS)
    assert results == ["FAILED"], etree.tostring(fault)
    return str(codes[0])


def text(element: etree._Element, path: str) -> str:
    found = element.xpath(path, namespaces=NS)
    assert len(found) == 1, (path, etree.tostring(element))
    return str(found[0])


async def test_list_get_and_codes_grow(
    iec62325_java_server: EmeJavaServer, dev_pki: Path, eme_java: EmeJava, tmp_path: Path
) -> None:
    server = iec62325_java_server
    first = random.Random(1).randbytes(5000)
    server.publish("F1_0086_20240601_20240602.0.bz2", first)
    server.publish("A5_0086_20240601.0.bz2", b"BZh9 second", file_type="MAG")

    status, reply, raw = await call(
        server.url, envelope(request_message("get", "MessageList", {"Code": "0"})), dev_pki
    )
    assert status == 200, raw
    assert text(reply, "m:Header/m:Verb/text()") == "reply"
    assert text(reply, "m:Header/m:Noun/text()") == "MessageList"
    assert text(reply, "m:Reply/m:Result/text()") == "OK"
    messages = reply.xpath("m:Payload/c:MessageList/c:Message", namespaces=NS)
    assert [text(m, "c:Code/text()") for m in messages] == ["1", "2"]
    assert [text(m, "c:Type/text()") for m in messages] == ["CUR", "MAG"]
    assert text(messages[0], "c:MessageIdentification/text()") == (
        "F1_0086_20240601_20240602.0.bz2"
    )
    assert text(messages[0], "c:Owner/text()") == "CREC"

    # "Everything after code N", a new file gets the next code; MsgType filters.
    server.publish("F1_0086_20240603_20240604.0.bz2", b"BZh9 third")
    _, reply, _ = await call(
        server.url, envelope(request_message("get", "MessageList", {"Code": "1"})), dev_pki
    )
    assert reply.xpath("m:Payload/c:MessageList/c:Message/c:Code/text()", namespaces=NS) == [
        "2",
        "3",
    ]
    _, reply, _ = await call(
        server.url,
        envelope(request_message("get", "MessageList", {"Code": "0", "MsgType": "MAG"})),
        dev_pki,
    )
    assert reply.xpath("m:Payload/c:MessageList/c:Message/c:Code/text()", namespaces=NS) == ["2"]

    # By application-time interval (the files' mtimes are "now").
    now = datetime.now(UTC)
    window = {
        "start": (now - timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
        "end": (now + timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
    }
    _, reply, _ = await call(
        server.url, envelope(request_message("get", "MessageList", **window)), dev_pki
    )
    assert len(reply.xpath("m:Payload/c:MessageList/c:Message", namespaces=NS)) == 3

    # get by code: a binary answer, signed by CREC's client certificate.
    status, reply, raw = await call(
        server.url, envelope(request_message("get", "Any", {"Code": "1"})), dev_pki
    )
    assert status == 200, raw
    assert text(reply, "m:Header/m:Noun/text()") == "Compressed"
    assert text(reply, "m:Reply/m:ID[@idType='name']/text()") == "F1_0086_20240601_20240602.0.bz2"
    assert text(reply, "m:Payload/m:Format/text()") == "BINARY"
    assert base64.b64decode(text(reply, "m:Payload/m:Compressed/text()")) == first
    signature = reply.xpath("m:Header/*[last()]", namespaces=NS)[0]
    assert signature.tag == f"{{{DS}}}Signature"
    saved = tmp_path / "get-response.xml"
    saved.write_bytes(raw)
    valid, signer = eme_java.verify_outcome(saved)
    assert valid, signer
    assert "CN=CREC" in signer

    # get by MessageIdentification.
    _, reply, _ = await call(
        server.url,
        envelope(
            request_message(
                "get",
                "Any",
                {"MessageIdentification": "A5_0086_20240601.0.bz2", "MessageVersion": "1"},
            )
        ),
        dev_pki,
    )
    assert base64.b64decode(text(reply, "m:Payload/m:Compressed/text()")) == b"BZh9 second"

    # An unknown code: HTTP 500 with a 504 FaultMessage.
    status, fault, _ = await call(
        server.url, envelope(request_message("get", "Any", {"Code": "99"})), dev_pki
    )
    assert status == 500
    assert fault.tag == f"{{{SOAP11}}}Fault"
    assert fault_code(fault) == "GET-006"
    status, fault, _ = await call(
        server.url, envelope(request_message("get", "MessageList", {"Code": "x"})), dev_pki
    )
    assert (status, fault_code(fault)) == (500, "LST-002")


async def test_codes_survive_a_restart(eme_java: EmeJava, dev_pki: Path, tmp_path: Path) -> None:
    directory = tmp_path / "eme"
    body = envelope(request_message("get", "MessageList", {"Code": "0"}))
    with start_eme_java_server(eme_java, dev_pki, directory) as server:
        server.publish("a.bz2", b"a")
        server.publish("b.bz2", b"b")
        _, reply, _ = await call(server.url, body, dev_pki)
        before = reply.xpath("//c:Message/c:MessageIdentification/text()", namespaces=NS)
        server.kill()
    with start_eme_java_server(eme_java, dev_pki, directory) as server:
        (server.outbox / "a.bz2").unlink()
        server.publish("c.bz2", b"c")
        _, reply, _ = await call(server.url, body, dev_pki)
        codes = reply.xpath("//c:Message/c:Code/text()", namespaces=NS)
        names = reply.xpath("//c:Message/c:MessageIdentification/text()", namespaces=NS)
    assert before == ["a.bz2", "b.bz2"]
    assert list(zip(codes, names, strict=True)) == [("2", "b.bz2"), ("3", "c.bz2")]


async def test_put_query_and_soap12(
    iec62325_java_server: EmeJavaServer, dev_pki: Path, eme_java: EmeJava, tmp_path: Path
) -> None:
    server = iec62325_java_server
    data = random.Random(2).randbytes(70_000)
    put = request_message("create", "Compressed", name="F5_0086_20240601.0.bz2", compressed=data)
    status, reply, raw = await call(server.url, envelope(put), dev_pki)
    assert status == 200, raw
    assert text(reply, "m:Reply/m:Result/text()") == "OK"
    assert text(reply, "m:Reply/m:ID[@idType='name']/text()") == "F5_0086_20240601.0.bz2"
    # REE's client refuses a put reply without a Payload element (HAND-011), even empty.
    assert reply.find(f"{{{MSG}}}Payload") is not None
    assert (server.inbox / "F5_0086_20240601.0.bz2").read_bytes() == data
    assert server.events("put") == ["F5_0086_20240601.0.bz2 70000"]

    # A path in the name is refused, and nothing is stored.
    bad = request_message("create", "Compressed", name="../evil.bz2", compressed=b"x")
    status, fault, _ = await call(server.url, envelope(bad), dev_pki)
    assert (status, fault_code(fault)) == (500, "PUT-017")
    assert sorted(p.name for p in server.inbox.iterdir()) == ["F5_0086_20240601.0.bz2"]

    # query serverTimestamp, over SOAP 1.2 this time.
    status, reply, raw = await call(
        server.url12,
        envelope(request_message("get", "QueryData", {"DataType": "serverTimestamp"}), "1.2"),
        dev_pki,
        soap="1.2",
    )
    assert status == 200, raw
    assert text(reply, "m:Header/m:Noun/text()") == "QueryData"
    stamp = text(reply, "m:Payload/c:QueryData/c:ServerTimestamp/text()")
    server_time = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert abs(server_time - datetime.now(UTC)) < timedelta(minutes=1)
    saved = tmp_path / "query-response.xml"
    saved.write_bytes(raw)
    assert eme_java.verify_outcome(saved)[0]

    status, fault, _ = await call(
        server.url12,
        envelope(request_message("get", "QueryData", {"DataType": "nope"}), "1.2"),
        dev_pki,
        soap="1.2",
    )
    assert status == 500
    assert fault.tag == f"{{{SOAP12}}}Fault"
    assert fault_code(fault) == "QRY-002"


async def test_signed_puts_are_verified(eme_java: EmeJava, dev_pki: Path, tmp_path: Path) -> None:
    with start_eme_java_server(
        eme_java, dev_pki, tmp_path / "eme", put_signature="required"
    ) as server:
        message = tmp_path / "put.xml"
        message.write_bytes(request_message("create", "Compressed", name="ok.bz2", compressed=b"1"))

        status, fault, _ = await call(server.url, envelope(message.read_bytes()), dev_pki)
        assert (status, fault_code(fault)) == (500, "HAND-007")

        signed = eme_java.sign(message, tmp_path / "signed.xml", dev_pki / "client.p12")
        status, _, raw = await call(server.url, signed.read_bytes(), dev_pki)
        assert status == 200, raw
        assert (server.inbox / "ok.bz2").read_bytes() == b"1"
        (signer,) = server.events("signer")
        assert "CN=0086" in signer

        # Tampered after signing: the payload no longer matches the digest.
        tampered = signed.read_bytes().replace(b"ok.bz2", b"ko.bz2")
        status, fault, _ = await call(server.url, tampered, dev_pki)
        assert (status, fault_code(fault)) == (500, "HAND-007")
        assert not (server.inbox / "ko.bz2").exists()
        assert "signature does not verify" in server.events("fault")[-1]


async def test_mutual_tls_is_required(iec62325_java_server: EmeJavaServer, dev_pki: Path) -> None:
    context = ssl.create_default_context(cafile=str(dev_pki / "ca.pem"))
    body = envelope(request_message("get", "MessageList", {"Code": "0"}))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        with pytest.raises(aiohttp.ClientError):
            async with session.post(iec62325_java_server.url, data=body) as response:
                await response.read()


async def test_responses_verify_with_our_verifier(
    iec62325_java_server: EmeJavaServer, dev_pki: Path
) -> None:
    """The JDK's signatures pass concentrador's own 504 verifier (protocol/iec62325)."""
    iec = pytest.importorskip("concentrador.protocol.iec62325")
    verify = getattr(iec, "verify", None)
    if verify is None:
        pytest.skip("concentrador.protocol.iec62325.verify not there yet")
    iec62325_java_server.publish("F1_x.0.bz2", random.Random(3).randbytes(3000))
    for request in (
        request_message("get", "MessageList", {"Code": "0"}),
        request_message("get", "Any", {"Code": "1"}),
        request_message("get", "QueryData", {"DataType": "serverTimestamp"}),
    ):
        _, reply, raw = await call(iec62325_java_server.url, envelope(request), dev_pki)
        assert reply.tag == f"{{{MSG}}}ResponseMessage", raw
        certificate = verify(reply)
        assert "CREC" in certificate.subject.rfc4514_string()
