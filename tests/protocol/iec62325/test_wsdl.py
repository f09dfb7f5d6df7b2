"""Our 504 WSDL: zeep loads it offline and its `request` calls are read by us,
and our answers are read by zeep (list and get), in SOAP 1.1 and 1.2."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import zeep
from lxml import etree
from zeep.transports import Transport

from concentrador.protocol.iec62325 import (
    SOAP_ACTION,
    GetRequest,
    Iec62325Error,
    ListRequest,
    MessageListEntry,
    binary_get_response,
    build_504_envelope,
    message_from_body,
    message_list_response,
    read_request_message,
    render_504_wsdl,
)
from concentrador.protocol.soap import SOAP11, SOAP12, parse_envelope

pytestmark = pytest.mark.interop

NOW = datetime(2024, 3, 1, 8, 30, tzinfo=UTC)
WSDL = "{http://schemas.xmlsoap.org/wsdl/}"
LOCATION = "https://node.example:8443/ServiceEME"


class OfflineTransport(Transport):
    def _load_remote_data(self, url: str) -> bytes:
        raise AssertionError(f"zeep tried to fetch {url}")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> zeep.Client:
    path = tmp_path_factory.mktemp("wsdl") / "eme.wsdl"
    path.write_bytes(render_504_wsdl(LOCATION))
    return zeep.Client(str(path), transport=OfflineTransport())


def test_wsdl_names_and_addresses() -> None:
    root = etree.fromstring(render_504_wsdl(LOCATION))
    assert root.get("targetNamespace") == "urn:iec62325.504:wss:1:0"
    service = root.find(f"{WSDL}service")
    assert service is not None and service.get("name") == "ServiceEME"
    ports = {p.get("name"): p[0].get("location") for p in service.iterfind(f"{WSDL}port")}
    assert ports == {"Service_EME_Port": LOCATION, "Service_EME_Port_soap12": LOCATION}
    assert root.find(f"{WSDL}portType").get("name") == "port_TFEDI_type"  # type: ignore[union-attr]


@pytest.mark.parametrize("bad", ["ftp://x/y", "/ServiceEME", "https://x/a b", ""])
def test_wsdl_refuses_bad_locations(bad: str) -> None:
    with pytest.raises(Iec62325Error):
        render_504_wsdl(bad)


def test_zeep_sees_request_with_both_bindings(client: zeep.Client) -> None:
    soap11 = client.service._binding._operations["request"]
    assert soap11.soapaction == SOAP_ACTION
    soap12 = client.bind("ServiceEME", "Service_EME_Port_soap12")
    assert "request" in soap12._binding._operations


def test_zeep_list_request_is_read_by_us(client: zeep.Client) -> None:
    message = client.create_message(
        client.service,
        "request",
        Header={"Verb": "get", "Noun": "MessageList", "Timestamp": NOW, "Source": "0086"},
        Request={"Option": [{"name": "Code", "value": "12"}, {"name": "MsgType", "value": "F1"}]},
    )
    envelope = parse_envelope(etree.tostring(message))
    assert envelope.version is SOAP11
    found = message_from_body(envelope.body_elements)
    assert found is not None
    got = read_request_message(found)
    assert isinstance(got, ListRequest)
    assert (got.after_code, got.msg_type, got.header.source) == (12, "F1", "0086")


def test_zeep_get_request_soap12_is_read_by_us(client: zeep.Client) -> None:
    service = client.bind("ServiceEME", "Service_EME_Port_soap12")
    message = client.create_message(
        service,
        "request",
        Header={"Verb": "get", "Noun": "Any"},
        Request={
            "Option": [
                {"name": "MessageIdentification", "value": "F1_a.bz2"},
                {"name": "MessageVersion", "value": "1"},
            ]
        },
    )
    envelope = parse_envelope(etree.tostring(message))
    assert envelope.version is SOAP12
    found = message_from_body(envelope.body_elements)
    assert found is not None
    got = read_request_message(found)
    assert isinstance(got, GetRequest)
    assert (got.message_identification, got.message_version) == ("F1_a.bz2", 1)


def test_zeep_reads_our_list_and_get_answers(client: zeep.Client) -> None:
    operation = client.service._binding._operations["request"]
    entry = MessageListEntry(5, "F1_a.bz2", "F1", "0086", NOW, NOW)
    listing = build_504_envelope(message_list_response([entry], NOW), SOAP11)
    result = operation.process_reply(etree.fromstring(listing))
    assert result.Header.Verb == "reply" and result.Reply.Result == "OK"
    payload = result.Payload._value_1[0]
    assert int(payload.Message[0].Code) == 5
    assert payload.Message[0].MessageIdentification == "F1_a.bz2"
    got = binary_get_response("F1_a.bz2", NOW)
    got.find(".//{*}Compressed").text = "QUJD"  # type: ignore[union-attr]
    result = operation.process_reply(etree.fromstring(build_504_envelope(got, SOAP11)))
    assert result.Payload.Compressed == "QUJD" and result.Reply.ID[0]._value_1 == "F1_a.bz2"
