"""zeep (a generic WSDL-driven SOAP stack) calls our 504 endpoint, live, over mutual TLS.

zeep learns everything from ``GET https://localhost:PORT/ServiceEME?wsdl`` as
``concentrador serve`` answers it: the one ``request`` operation, its
RequestMessage/ResponseMessage types, both bindings (SOAP 1.1 and 1.2) and
the endpoint address. Its ``requests`` session presents CREC's client
certificate and trusts only the dev CA. The answers (list and get, by Code)
are checked against what the server holds: its ledger's message codes and
the bytes of the published files.
"""

from __future__ import annotations

import base64
import bz2
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import zeep
import zeep.exceptions
from zeep.transports import Transport

from concentrador.spool.layout import Spool
from concentrador.spool.ledger import Ledger
from tests.interop.conftest import (
    LiveConcentrador,
    free_port,
    incompressible_bzip2,
    po1011_text,
    publish_outbox_now,
    serve_concentrador,
)

pytestmark = pytest.mark.interop

CREC_DN = "CN=crec-client-1,CN=CREC,OU=Concentradores,O=REE,C=es"
PATH = "/ServiceEME"
CUR_FILE = "F1_0086_20240601_20240602.0.bz2"
INC_FILE = "I1_0086_20240601.0.bz2"
BIG_FILE = "F5_0086_20240601.0.bz2"


@dataclass(frozen=True)
class ZeepLeg:
    server: LiveConcentrador
    client: zeep.Client
    spool: Path
    published: Path
    originals: dict[str, bytes]

    def codes(self) -> dict[str, tuple[int, str]]:
        """Name -> (message code, type) as the server's ledger holds them."""
        with Ledger(Spool(self.spool).ledger_path) as ledger:
            return {e.name: (e.code, e.file_type) for e in ledger.coded_entries("CREC")}

    def held(self, name: str) -> bytes:
        return (self.published / name).read_bytes()


@pytest.fixture(scope="module")
def leg(dev_pki: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZeepLeg]:
    tmp = tmp_path_factory.mktemp("zeep-504")
    spool, port = tmp / "spool", free_port()
    config = tmp / "concentrador.toml"
    config.write_text(
        f'[node]\nid = "0086"\nspool = "{spool}"\ntimezone = "Europe/Madrid"\n\n'
        f'[server]\nlisten = "127.0.0.1:{port}"\ncert = "{dev_pki}/server.pem"\n'
        f'key = "{dev_pki}/server.key"\nclient_ca = "{dev_pki}/ca.pem"\n'
        f'iec62325_path = "{PATH}"\n\n'
        '[admin]\nlisten = "127.0.0.1:0"\n\n'
        f'[signing]\ncert = "{dev_pki}/client.pem"\nkey = "{dev_pki}/client.key"\n\n'
        f'[[peers]]\nid = "CREC"\ndn = ["{CREC_DN}"]\nprotocol = "iec62325-504"\n'
        'signatures = "required"\n'
    )
    outbox = spool / "CREC" / "outbox"
    (outbox / "INC").mkdir(parents=True)
    originals = {
        CUR_FILE: bz2.compress(po1011_text(3000, seed=41)),
        INC_FILE: bz2.compress(po1011_text(20, seed=42)),
        BIG_FILE: incompressible_bzip2(600_000, seed=43),
    }
    for name, data in originals.items():
        (outbox / ("INC" if name == INC_FILE else ".") / name).write_bytes(data)
    publish_outbox_now(config)
    with serve_concentrador(config, port, dev_pki) as server, requests.Session() as session:
        session.cert = (str(dev_pki / "CREC-client.pem"), str(dev_pki / "CREC-client.key"))
        session.verify = str(dev_pki / "ca.pem")
        # Otherwise $REQUESTS_CA_BUNDLE silently replaces session.verify
        # (psf/requests#3829) and a proxy from the environment may capture loopback.
        session.trust_env = False
        wsdl = f"https://localhost:{port}{PATH}?wsdl"
        client = zeep.Client(wsdl, transport=Transport(session=session))
        yield ZeepLeg(server, client, spool, spool / "CREC" / "published", originals)


def soap12(leg: ZeepLeg) -> Any:
    return leg.client.bind("ServiceEME", "Service_EME_Port_soap12")


def list_after(service: Any, code: int) -> list[Any]:
    answer = service.request(
        Header={"Verb": "get", "Noun": "MessageList", "Source": "CREC"},
        Request={"Option": [{"name": "Code", "value": str(code)}]},
    )
    assert answer.Header.Verb == "reply" and answer.Header.Noun == "MessageList"
    assert answer.Reply.Result == "OK"
    (message_list,) = answer.Payload._value_1
    return list(message_list.Message or [])


def get_by_code(service: Any, code: int) -> Any:
    answer = service.request(
        Header={"Verb": "get", "Noun": "Any"},
        Request={"Option": [{"name": "Code", "value": str(code)}]},
    )
    assert answer.Reply.Result == "OK"
    return answer


def test_wsdl_fetched_live_points_zeep_at_the_504_endpoint(leg: ZeepLeg) -> None:
    address = f"https://localhost:{leg.server.port}{PATH}"
    assert leg.client.service._binding_options["address"] == address
    assert soap12(leg)._binding_options["address"] == address
    assert list(leg.client.service._binding._operations) == ["request"]


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_list_by_code_matches_the_ledger(leg: ZeepLeg, version: str) -> None:
    service = leg.client.service if version == "1.1" else soap12(leg)
    codes = leg.codes()
    assert set(codes) == {CUR_FILE, INC_FILE, BIG_FILE}
    messages = list_after(service, 0)
    listed = {m.MessageIdentification: (int(m.Code), m.Type) for m in messages}
    assert listed == codes
    assert [int(m.Code) for m in messages] == sorted(code for code, _ in codes.values())
    assert {m.Owner for m in messages} == {"0086"}
    assert all(int(m.MessageVersion) == 1 for m in messages)
    # "Everything after code N": the lowest code drops out, nothing after the last.
    lowest, highest = min(c for c, _ in codes.values()), max(c for c, _ in codes.values())
    assert {int(m.Code) for m in list_after(service, lowest)} == {
        c for c, _ in codes.values() if c > lowest
    }
    assert list_after(service, highest) == []


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_get_by_code_returns_the_published_bytes(leg: ZeepLeg, version: str) -> None:
    service = leg.client.service if version == "1.1" else soap12(leg)
    for name, (code, _) in leg.codes().items():
        answer = get_by_code(service, code)
        assert answer.Header.Noun == "Compressed"
        assert answer.Payload.Format == "BINARY"
        names = [i._value_1 for i in answer.Reply.ID if i.idType == "name"]
        assert names == [name]
        data = base64.b64decode(answer.Payload.Compressed, validate=True)
        assert data == leg.held(name) == leg.originals[name]


def test_get_of_an_unknown_code_is_a_504_fault(leg: ZeepLeg) -> None:
    beyond = max(code for code, _ in leg.codes().values()) + 1000
    with pytest.raises(zeep.exceptions.Fault) as fault:
        get_by_code(leg.client.service, beyond)
    detail = fault.value.detail
    assert detail is not None
    codes = detail.xpath(".//*[local-name()='Error']/*[local-name()='code']/text()")
    assert codes == ["GET-006"]
