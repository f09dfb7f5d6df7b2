"""Keys and messages shared by the signature tests (a dev PKI: CA, CREC, CEMI)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from lxml import etree

from concentrador.pki import init_dev_pki
from concentrador.protocol.iec62325.signature import SigningKey
from concentrador.protocol.iec62325.wire import MSG_NAMESPACE

MSG = f"{{{MSG_NAMESPACE}}}"


@dataclass(frozen=True)
class Keys:
    directory: Path
    crec: SigningKey
    cemi: SigningKey
    crec_cert: Path
    crec_key: Path
    ca: Path


def make_keys(directory: Path) -> Keys:
    pki = init_dev_pki(directory, node_id="0086", peers=("CREC", "CEMI"))

    def load(role: str) -> SigningKey:
        issued = pki.by_role(role)
        assert issued.key_path is not None
        key = load_pem_private_key(issued.key_path.read_bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        cert = x509.load_pem_x509_certificate(issued.certificate_path.read_bytes())
        return SigningKey(key, cert)

    crec = pki.by_role("peer CREC")
    assert crec.key_path is not None
    return Keys(
        directory=pki.directory,
        crec=load("peer CREC"),
        cemi=load("peer CEMI"),
        crec_cert=crec.certificate_path,
        crec_key=crec.key_path,
        ca=pki.directory / "ca.pem",
    )


def put_message(content: str = "QUJD", *, wrapped: bool = False) -> bytes:
    """A binary put RequestMessage; ``wrapped`` puts it in a SOAP 1.1 envelope."""
    message = (
        f'<msg:RequestMessage xmlns:msg="{MSG_NAMESPACE}">\n'
        "  <msg:Header>\n"
        "    <msg:Verb>create</msg:Verb>\n"
        "    <msg:Noun>Compressed</msg:Noun>\n"
        "    <msg:Timestamp>2024-05-01T10:00:00Z</msg:Timestamp>\n"
        "  </msg:Header>\n"
        '  <msg:Request><msg:ID idType="name">F1_0086_20240501.0.bz2</msg:ID></msg:Request>\n'
        f"  <msg:Payload><msg:Compressed>{content}</msg:Compressed>"
        "<msg:Format>BINARY</msg:Format></msg:Payload>\n"
        "</msg:RequestMessage>"
    )
    if not wrapped:
        return message.encode()
    return (
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:unused="urn:unused"><soapenv:Body>' + message + "</soapenv:Body></soapenv:Envelope>"
    ).encode()


def message_of(document: bytes) -> etree._Element:
    """The RequestMessage/ResponseMessage in ``document`` (bare or in an envelope)."""
    root = etree.fromstring(document)
    if root.tag.startswith(MSG):
        return root
    found = root.find(f".//{MSG}RequestMessage")
    assert found is not None
    return found
