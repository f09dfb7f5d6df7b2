"""Our signatures against two independent XMLDSig implementations, both directions.

signxml (Python, lxml + cryptography, whole document in memory) and xmlsec1
(Debian's CLI on libxmlsec1). The profile is REE's: enveloped, ``URI=""``,
inclusive C14N 1.0, rsa-sha256, sha256. One case per direction uses a large
payload signed and verified through the placeholder split and the splitter.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from concentrador.protocol.iec62325.signature import (
    PLACEHOLDER,
    SignatureError,
    canonical_parts,
    content_digest,
    sign,
    verify,
)
from concentrador.protocol.iec62325.streaming import Base64Encoder, CompressedSplitter
from concentrador.protocol.iec62325.wire import DS_NAMESPACE

from .signing_fixtures import MSG, Keys, make_keys, message_of, put_message

signxml = pytest.importorskip("signxml")
XMLSIGN = shutil.which("xmlsec1")
needs_xmlsec1 = pytest.mark.skipif(XMLSIGN is None, reason="xmlsec1 is not installed")

LARGE = 3 * 1024 * 1024  # bytes of file: 4 MiB of base64 in one element
CHUNK = 65536


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return make_keys(tmp_path_factory.mktemp("pki") / "certs")


def _ours_streamed(keys: Keys, data: bytes) -> bytes:
    """Sign a put of ``data`` the way the server does: digest while encoding, then splice."""
    message = message_of(put_message(PLACEHOLDER))
    before, after = canonical_parts(message)
    sign(message, keys.crec, content_digest(before, _encoded(data), after))
    head, tail = etree.tostring(message).split(PLACEHOLDER.encode())
    return head + b"".join(_encoded(data)) + tail


def _encoded(data: bytes) -> Iterator[bytes]:
    encoder = Base64Encoder()
    for start in range(0, len(data), CHUNK):
        yield encoder.feed(data[start : start + CHUNK])
    yield encoder.finish()


def _verify_streamed(document: bytes) -> object:
    """Verify ``document`` the way the adapters do: splitter, then verify over the pieces."""
    splitter = CompressedSplitter(max_xml=1 << 20, max_content=LARGE * 2)
    pieces: list[bytes] = []
    for start in range(0, len(document), CHUNK):
        pieces += splitter.feed(document[start : start + CHUNK])
    xml = splitter.close()
    assert len(xml) < 10_000
    return verify(message_of(xml), content=pieces)


# -- signxml --------------------------------------------------------------------


def _signxml_config() -> object:
    from signxml import CanonicalizationMethod, SignatureConfiguration

    # No c14n transform in our Reference: per XMLDSig the default is inclusive C14N 1.0.
    return SignatureConfiguration(
        default_reference_c14n_method=CanonicalizationMethod.CANONICAL_XML_1_0
    )


def _signxml_verify(keys: Keys, document: bytes) -> None:
    from signxml import XMLVerifier

    XMLVerifier().verify(
        etree.fromstring(document, etree.XMLParser(huge_tree=True)),
        x509_cert=keys.crec.certificate,
        ignore_ambiguous_key_info=True,
        expect_config=_signxml_config(),
    )


def _signxml_sign(keys: Keys, document: bytes) -> bytes:
    from signxml import CanonicalizationMethod, XMLSigner

    root = etree.fromstring(document, etree.XMLParser(huge_tree=True))
    header = root.find(f"{MSG}Header")
    assert header is not None
    # signxml puts the signature where this placeholder is: last child of the Header.
    etree.SubElement(header, f"{{{DS_NAMESPACE}}}Signature", Id="placeholder")
    signer = XMLSigner(c14n_algorithm=CanonicalizationMethod.CANONICAL_XML_1_0)
    signed = signer.sign(root, key=keys.crec.private_key, cert=[keys.crec.certificate])
    return etree.tostring(signed)


def test_signxml_verifies_ours(keys: Keys) -> None:
    message = message_of(put_message())
    sign(message, keys.crec)
    _signxml_verify(keys, etree.tostring(message))


def test_signxml_verifies_ours_streamed_with_a_large_payload(keys: Keys) -> None:
    _signxml_verify(keys, _ours_streamed(keys, os.urandom(LARGE)))


def test_ours_verifies_signxml(keys: Keys) -> None:
    signed = _signxml_sign(keys, put_message())
    transforms = message_of(signed).findall(f".//{{{DS_NAMESPACE}}}Transform")
    assert len(transforms) == 2  # enveloped + an explicit inclusive C14N
    assert verify(message_of(signed)) == keys.crec.certificate
    with pytest.raises(SignatureError, match="digest does not match"):
        verify(message_of(signed.replace(b"QUJD", b"QUJE")))


def test_ours_verifies_signxml_streamed_with_a_large_payload(keys: Keys) -> None:
    data = os.urandom(LARGE)
    signed = _signxml_sign(keys, put_message(base64.b64encode(data).decode()))
    assert _verify_streamed(signed) == keys.crec.certificate
    tampered = signed.replace(b"<msg:Compressed>", b"<msg:Compressed>AAAA")
    with pytest.raises(SignatureError, match="digest does not match"):
        _verify_streamed(tampered)


# -- xmlsec1 --------------------------------------------------------------------

_TEMPLATE = (
    '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>'
    '<ds:CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/>'
    '<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>'
    '<ds:Reference URI=""><ds:Transforms>'
    '<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>'
    "</ds:Transforms>"
    '<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>'
    "<ds:DigestValue/></ds:Reference></ds:SignedInfo><ds:SignatureValue/>"
    "<ds:KeyInfo><ds:X509Data><ds:X509Certificate/></ds:X509Data></ds:KeyInfo>"
    "</ds:Signature>"
)


def _xmlsec1(*args: str) -> subprocess.CompletedProcess[str]:
    assert XMLSIGN is not None
    return subprocess.run([XMLSIGN, *args], capture_output=True, text=True, timeout=120)


def _xmlsec1_verify(
    keys: Keys, document: bytes, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "signed.xml"
    path.write_bytes(document)
    return _xmlsec1(
        "--verify", "--trusted-pem", str(keys.ca), "--enabled-reference-uris", "empty", str(path)
    )


def _xmlsec1_sign(keys: Keys, document: bytes, tmp_path: Path) -> bytes:
    template = document.replace(b"</msg:Timestamp>", b"</msg:Timestamp>" + _TEMPLATE.encode())
    path = tmp_path / "template.xml"
    path.write_bytes(template)
    out = tmp_path / "out.xml"
    done = _xmlsec1(
        "--sign",
        "--privkey-pem",
        f"{keys.crec_key},{keys.crec_cert}",
        "--output",
        str(out),
        str(path),
    )
    assert done.returncode == 0, done.stderr
    return out.read_bytes()


@needs_xmlsec1
def test_xmlsec1_verifies_ours(keys: Keys, tmp_path: Path) -> None:
    message = message_of(put_message())
    sign(message, keys.crec)
    done = _xmlsec1_verify(keys, etree.tostring(message), tmp_path)
    assert done.returncode == 0, done.stderr
    tampered = etree.tostring(message).replace(b"QUJD", b"QUJE")
    assert _xmlsec1_verify(keys, tampered, tmp_path).returncode != 0


@needs_xmlsec1
def test_xmlsec1_verifies_ours_streamed_with_a_large_payload(keys: Keys, tmp_path: Path) -> None:
    done = _xmlsec1_verify(keys, _ours_streamed(keys, os.urandom(LARGE)), tmp_path)
    assert done.returncode == 0, done.stderr


@needs_xmlsec1
def test_ours_verifies_xmlsec1(keys: Keys, tmp_path: Path) -> None:
    signed = _xmlsec1_sign(keys, put_message(), tmp_path)
    assert verify(message_of(signed)) == keys.crec.certificate


@needs_xmlsec1
def test_ours_verifies_xmlsec1_streamed_with_a_large_payload(keys: Keys, tmp_path: Path) -> None:
    data = os.urandom(LARGE)
    signed = _xmlsec1_sign(keys, put_message(base64.b64encode(data).decode()), tmp_path)
    assert _verify_streamed(signed) == keys.crec.certificate
