"""REE's signature shape: an unprefixed ds:Signature whose default namespace shadows
the RequestMessage's ``xmlns="urn:iec62325.504:messages:1:0"``.

Regression: SignedInfo used to be canonicalized with ``etree.tostring(signed_info,
method="c14n")``, which for a non-root element writes ``xmlns=""`` on SignedInfo's
grandchildren (Transform, DigestMethod, DigestValue) in that shape, so every put
signed by REE's own client was refused with HAND-007 although its signature is good.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from lxml import etree

from concentrador.protocol.iec62325.signature import SignatureError, sign, verify
from concentrador.protocol.iec62325.wire import DS_NAMESPACE, MSG_NAMESPACE

from .signing_fixtures import Keys, make_keys, message_of

XMLSEC1 = shutil.which("xmlsec1")
needs_xmlsec1 = pytest.mark.skipif(XMLSEC1 is None, reason="xmlsec1 is not installed")

# The shape JAX-WS RI + REE's SignatureManager put on the wire (see
# tests/interop/iec62325/fixtures/ree/): ns2 for 61968-100, an unused default namespace.
ENVELOPE = (
    '<S:Envelope xmlns:S="http://www.w3.org/2003/05/soap-envelope"><S:Body>{}</S:Body></S:Envelope>'
)
REE_SHAPED = (
    '<ns2:RequestMessage xmlns="urn:iec62325.504:messages:1:0" xmlns:ns2="{msg}">'
    "<ns2:Header><ns2:Verb>create</ns2:Verb><ns2:Noun>Compressed</ns2:Noun>"
    "<ns2:Timestamp>2024-06-01T10:00:00.000Z</ns2:Timestamp>{signature}</ns2:Header>"
    '<ns2:Request><ns2:ID idType="name">F1_REE3_20240601.0.bz2</ns2:ID></ns2:Request>'
    "<ns2:Payload><ns2:Compressed>QlpoOTFBWSZTWQ==</ns2:Compressed>"
    "<ns2:Format>BINARY</ns2:Format></ns2:Payload></ns2:RequestMessage>"
)
TEMPLATE = (
    f'<Signature xmlns="{DS_NAMESPACE}"><SignedInfo>'
    '<CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/>'
    '<SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>'
    '<Reference URI=""><Transforms>'
    '<Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>'
    '</Transforms><DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>'
    "<DigestValue/></Reference></SignedInfo><SignatureValue/>"
    "<KeyInfo><X509Data><X509Certificate/></X509Data></KeyInfo></Signature>"
)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return make_keys(tmp_path_factory.mktemp("pki") / "certs")


def _xmlsec1(*args: str) -> subprocess.CompletedProcess[str]:
    assert XMLSEC1 is not None
    return subprocess.run([XMLSEC1, *args], capture_output=True, text=True, timeout=60)


def _signed_by_xmlsec1(keys: Keys, tmp_path: Path) -> bytes:
    """The bare RequestMessage signed (URI="" = the message as its own document, as REE)."""
    template = tmp_path / "template.xml"
    template.write_text(REE_SHAPED.format(msg=MSG_NAMESPACE, signature=TEMPLATE))
    out = tmp_path / "signed.xml"
    key = f"{keys.crec_key},{keys.crec_cert}"
    done = _xmlsec1("--sign", "--privkey-pem", key, "--output", str(out), str(template))
    assert done.returncode == 0, done.stderr
    return out.read_bytes()


@needs_xmlsec1
def test_ours_verifies_an_unprefixed_signature_in_a_shadowed_default_namespace(
    keys: Keys, tmp_path: Path
) -> None:
    signed = etree.tostring(etree.fromstring(_signed_by_xmlsec1(keys, tmp_path)))
    assert b"<Transforms>" in signed  # unprefixed, as REE's
    wrapped = ENVELOPE.format(signed.decode()).encode()  # as on the wire
    assert verify(message_of(wrapped)) == keys.crec.certificate
    with pytest.raises(SignatureError, match="digest"):
        verify(message_of(wrapped.replace(b"F1_REE3", b"F1_EVIL")))


@needs_xmlsec1
def test_xmlsec1_verifies_ours_in_the_same_shape(keys: Keys, tmp_path: Path) -> None:
    message = etree.fromstring(REE_SHAPED.format(msg=MSG_NAMESPACE, signature=""))
    sign(message, keys.crec)
    path = tmp_path / "ours.xml"
    path.write_bytes(etree.tostring(message))
    done = _xmlsec1(
        "--verify", "--trusted-pem", str(keys.ca), "--enabled-reference-uris", "empty", str(path)
    )
    assert done.returncode == 0, done.stderr
