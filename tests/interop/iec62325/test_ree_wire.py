"""REE's own 504 client, as captured on the wire, against our verifier and our server.

``fixtures/ree/`` holds HTTP request bodies that REE's eemws-kit command-line
clients (built from REE's sources with Debian's JAX-WS RI 2.3, run with the RI's
transport dump) sent to our ``concentrador serve`` on 2026-12-05: list by code and
by interval, get by code and by MessageIdentification+version, query
serverTimestamp, put of a ``.bz2`` (``Compressed``/``BINARY``) and of an XML
document, each over SOAP 1.1 and 1.2. The puts are signed by REE's
SignatureManager with ``signer.pem`` (issued by ``ca.pem``); no private key is
here. ``requests.json`` has the HTTP headers that came with each body. These are
data produced by REE's program, not REE's code.

The replay needs a TLS client certificate for the signer's DN, and the capture's
CA key is not (and must not be) here. So a fresh dev PKI issues one with the same
DN (``init_dev_pki`` names peer REE3's ``CN=ree3-client-1,CN=REE3,...`` as the
capture's did); the server trusts both the fresh CA and the captured one. Our
server accepts a signer issued by a CA of ``client_ca`` with the peer's DN, so
REE's signatures made with the captured certificate are accepted for the same
peer. No ``[server] crl`` here: the captured CA has no CRL (its key is not
here), and a CRL file without one of the signer's CA refuses the signer, as
OpenSSL's leaf check refuses such a TLS client.
"""

from __future__ import annotations

import base64
import bz2
import hashlib
import json
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from concentrador.config.dn import dn_from_der
from concentrador.config.model import (
    Config,
    NodeConfig,
    PeerConfig,
    ServerConfig,
    SigningConfig,
)
from concentrador.pki import DevPki, init_dev_pki
from concentrador.protocol.iec62325 import read_message_list
from concentrador.protocol.iec62325.signature import PLACEHOLDER, SignatureError, verify
from concentrador.server.app import build_app
from concentrador.server.state import ServerState
from concentrador.server.tls import ReloadableServerTLS, ServerTLSFiles
from concentrador.spool.layout import Spool, SpoolState
from concentrador.spool.ledger import Ledger, PublishedEntry
from tests.server.iec62325.conftest import Answer, parse_answer

FIXTURES = Path(__file__).parent / "fixtures" / "ree"
HEADERS: dict[str, dict[str, object]] = json.loads((FIXTURES / "requests.json").read_text())
SOAP = ("soap11", "soap12")
PEER = "REE3"
NODE_ID = "0086"
MSG = "{http://iec.ch/TC57/2011/schema/message}"
# What the captured requests ask for: code 1 = F1..., MessageIdentification = CURVA...
PUBLISHED = {
    "F1_0086_20240601_20240602.0.bz2": bz2.compress(b"published for REE3, code 1\n"),
    "CURVA_0086_20240601.0.bz2": bz2.compress(b"published for REE3, code 2\n" * 100),
}
# The captured list by interval asks 2026-12-01..2026-12-31 (application time).
PUBLISHED_AT = datetime(2026, 12, 5, 20, 27, tzinfo=UTC)
NOW = datetime(2026, 12, 5, 20, 35, tzinfo=UTC)


def _body(name: str) -> bytes:
    return (FIXTURES / f"{name}.request.xml").read_bytes()


def _message(name: str) -> etree._Element:
    """The RequestMessage of a captured body (Envelope/Body/RequestMessage)."""
    message = etree.fromstring(_body(name))[-1][0]
    assert message.tag == f"{MSG}RequestMessage"
    return message


def _certificate(name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((FIXTURES / name).read_bytes())


# -- (a) REE's signatures, checked by our verifier ----------------------------------


@pytest.mark.parametrize("soap", SOAP)
@pytest.mark.parametrize("kind", ["put_binary", "put_xml"])
def test_our_verify_accepts_ree_signature(kind: str, soap: str) -> None:
    signer = _certificate("signer.pem")
    assert verify(_message(f"{kind}_{soap}")) == signer
    signer.verify_directly_issued_by(_certificate("ca.pem"))


def test_ree_signature_shape_is_the_one_that_tripped_us() -> None:
    """Unprefixed ds:Signature under a shadowed default namespace, CRLF base64 (&#xd;)."""
    body = _body("put_binary_soap12")
    assert b'xmlns="urn:iec62325.504:messages:1:0"' in body
    assert b'<Signature xmlns="http://www.w3.org/2000/09/xmldsig#">' in body
    assert b"&#xd;\n" in body


def _flip(body: bytes, element: bytes) -> bytes:
    """One base64 character of ``element``'s text changed (the length stays valid)."""
    at = body.index(b"<" + element + b">") + len(element) + 2 + 5
    flipped = b"A" if body[at : at + 1] != b"A" else b"B"
    return body[:at] + flipped + body[at + 1 :]


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda b: b.replace(b"<ns2:Format>BINARY", b"<ns2:Format>XML"), "digest does not match"),
        (lambda b: b.replace(b">QlpoOTFBWSZTWXTp", b">QlpoOTFBWSZTWXTq"), "digest does not match"),
        (lambda b: _flip(b, b"DigestValue"), "SignatureValue does not match"),
        (lambda b: _flip(b, b"SignatureValue"), "SignatureValue does not match"),
    ],
)
def test_our_verify_refuses_ree_put_tampered(tamper: Callable[[bytes], bytes], reason: str) -> None:
    body = _body("put_binary_soap12")
    tampered = tamper(body)
    assert tampered != body
    with pytest.raises(SignatureError, match=reason):
        verify(etree.fromstring(tampered)[-1][0])


# -- (b) the captured bodies replayed at our server -----------------------------------


@dataclass
class Replay:
    url: str
    session: aiohttp.ClientSession
    spool: Spool
    ledger: Ledger
    pki: DevPki

    async def send(self, name: str) -> Answer:
        meta = HEADERS[f"{name}.request.xml"]
        headers = meta["headers"]
        assert isinstance(headers, dict)
        async with self.session.post(self.url, data=_body(name), headers=headers) as response:
            return parse_answer(response.status, await response.read())

    def inbox(self) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in self.spool.peer(PEER).files(SpoolState.INBOX)}


def _config(pki: DevPki, root: Path, client_ca: Path) -> Config:
    signer_dn = dn_from_der(_certificate("signer.pem").public_bytes(Encoding.DER))
    peer = PeerConfig(id=PEER, dn=(signer_dn,), protocol="iec62325-504", signatures="required")
    server = ServerConfig(
        host="127.0.0.1",
        port=0,
        cert=pki.directory / "server.pem",
        key=pki.directory / "server.key",
        client_ca=client_ca,
        crl=None,  # see the module docstring
    )
    node = NodeConfig(id=NODE_ID, spool=root, timezone=ZoneInfo("Europe/Madrid"))
    signing = SigningConfig(pki.directory / "client.pem", pki.directory / "client.key")
    return Config(root / "concentrador.toml", node, server, None, (peer,), signing=signing)


@pytest.fixture
async def replay(tmp_path: Path) -> AsyncIterator[Replay]:
    pki = init_dev_pki(tmp_path / "pki", node_id=NODE_ID, peers=(PEER,))
    fresh = x509.load_pem_x509_certificate((pki.directory / f"{PEER}-client.pem").read_bytes())
    assert fresh.subject == _certificate("signer.pem").subject  # same DN, another key
    client_ca = tmp_path / "client-ca.pem"
    client_ca.write_bytes(
        (pki.directory / "ca.pem").read_bytes() + (FIXTURES / "ca.pem").read_bytes()
    )
    root = tmp_path / "spool"
    root.mkdir()
    spool = Spool(root)
    spool.ensure([PEER])
    ledger = Ledger(root / "ledger.sqlite3")
    config = _config(pki, root, client_ca)
    state = ServerState(config=config, spool=spool, ledger=ledger, now=lambda: NOW)
    for name, data in PUBLISHED.items():  # in this order: codes 1 and 2
        (spool.peer(PEER).dir(SpoolState.PUBLISHED) / name).write_bytes(data)
        md5 = hashlib.md5(data).hexdigest()
        entry = PublishedEntry(PEER, name, name, "CUR", len(data), md5, PUBLISHED_AT)
        ledger.record_published([entry])
    runner = web.AppRunner(build_app(state), access_log=None)
    await runner.setup()
    tls = ReloadableServerTLS(
        ServerTLSFiles(config.server.cert, config.server.key, client_ca, config.server.crl)
    )
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls.context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    context = ssl.create_default_context(cafile=str(pki.directory / "ca.pem"))
    context.load_cert_chain(
        pki.directory / f"{PEER}-client.pem", pki.directory / f"{PEER}-client.key"
    )
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context))
    try:
        yield Replay(f"https://localhost:{port}/ServiceEME", session, spool, ledger, pki)
    finally:
        await session.close()
        await runner.cleanup()
        ledger.close()


def _ours(replay: Replay, answer: Answer) -> None:
    """Our answer is signed by our [signing] certificate (as REE's client checks)."""
    assert answer.message is not None and answer.response is not None
    message = answer.message
    content: list[bytes] = []
    if answer.response.compressed is not None:
        compressed = message.find(f"{MSG}Payload/{MSG}Compressed")
        assert compressed is not None and compressed.text is not None
        content = [compressed.text.encode()]
        compressed.text = PLACEHOLDER  # what the streamed digest stood for
    signer = verify(message, content=content)
    ours = (replay.pki.directory / "client.pem").read_bytes()
    assert signer == x509.load_pem_x509_certificate(ours)


@pytest.mark.parametrize("soap", SOAP)
async def test_ree_list_by_code_and_by_interval(replay: Replay, soap: str) -> None:
    for request in ("list_code", "list_interval"):
        answer = await replay.send(f"{request}_{soap}")
        assert answer.status == 200, answer.raw[:600]
        assert answer.response is not None and answer.response.payload is not None
        entries = read_message_list(answer.response.payload)
        assert [(e.code, e.message_identification) for e in entries] == [
            (1, "F1_0086_20240601_20240602.0.bz2"),
            (2, "CURVA_0086_20240601.0.bz2"),
        ]


@pytest.mark.parametrize("soap", SOAP)
@pytest.mark.parametrize(
    ("request_name", "expected"),
    [("get_code", "F1_0086_20240601_20240602.0.bz2"), ("get_id", "CURVA_0086_20240601.0.bz2")],
)
async def test_ree_get(replay: Replay, soap: str, request_name: str, expected: str) -> None:
    answer = await replay.send(f"{request_name}_{soap}")
    assert answer.status == 200, answer.raw[:600]
    assert answer.response is not None and answer.response.name == expected
    assert answer.response.compressed is not None
    assert base64.b64decode(answer.response.compressed) == PUBLISHED[expected]
    _ours(replay, answer)


@pytest.mark.parametrize("soap", SOAP)
async def test_ree_query_server_timestamp(replay: Replay, soap: str) -> None:
    answer = await replay.send(f"query_{soap}")
    assert answer.status == 200, answer.raw[:600]
    stamp = answer.raw.split(b"ServerTimestamp>")[1].split(b"<")[0].decode()
    assert datetime.fromisoformat(stamp.replace("Z", "+00:00")) == NOW
    _ours(replay, answer)


@pytest.mark.parametrize(
    ("soap", "stored"),
    [("soap12", "F1_REE3_20240601_20240602.0.bz2"), ("soap11", "F1_REE3_20240602_20240603.0.bz2")],
)
async def test_ree_signed_binary_put_is_stored(replay: Replay, soap: str, stored: str) -> None:
    answer = await replay.send(f"put_binary_{soap}")
    assert answer.status == 200, answer.raw[:600]
    assert answer.response is not None and answer.response.name == stored
    _ours(replay, answer)
    inbox = replay.inbox()
    assert list(inbox) == [stored]
    assert bz2.decompress(inbox[stored]).startswith(b"REE put payload")


@pytest.mark.parametrize("soap", SOAP)
async def test_ree_signed_xml_put_is_stored(replay: Replay, soap: str) -> None:
    answer = await replay.send(f"put_xml_{soap}")
    assert answer.status == 200, answer.raw[:600]
    (data,) = replay.inbox().values()
    document = etree.fromstring(data)
    assert document.tag == "{urn:test:ree}TestDocument"
    assert document.findtext("{urn:test:ree}id") == "F5_REE3_20240601.0"


async def test_ree_put_with_a_tampered_signature_is_refused(replay: Replay) -> None:
    tampered = _flip(_body("put_binary_soap12"), b"SignatureValue")
    headers = HEADERS["put_binary_soap12.request.xml"]["headers"]
    assert isinstance(headers, dict)
    async with replay.session.post(replay.url, data=tampered, headers=headers) as response:
        answer = parse_answer(response.status, await response.read())
    assert answer.status == 500 and answer.code == "HAND-007", answer.raw[:600]
    assert replay.inbox() == {}
