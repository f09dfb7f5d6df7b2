"""Enveloped XML signatures of IEC 61968-100 messages, as REE's kit makes them.

The profile (checked in REE's kit): one ``ds:Signature``, the last child of the
message's ``msg:Header``; one ``Reference URI=""`` over the Request/ResponseMessage
taken as its own document; transforms ``[enveloped-signature]``; inclusive C14N 1.0
without comments; rsa-sha256 over SignedInfo and sha256 digests; ``KeyInfo/X509Data``
with ``X509IssuerSerial``, ``X509SubjectName`` and ``X509Certificate``.

Why our own code on lxml's C14N and ``cryptography`` instead of signxml or xmlsec:
a 50 MiB file is 67 MB of base64 in one element, and both libraries need the
whole document in memory to digest it. Here the message is canonicalized with a
short :data:`PLACEHOLDER` where the base64 goes; the canonical bytes are split
there and the digest runs over ``before + pieces + after`` while the adapter
streams the pieces (:func:`content_digest`). Tests check interoperability against
signxml and xmlsec1 in both directions.

"Own document" means ``copy.deepcopy`` of the element, in lxml's semantics: the
namespace declarations lexically inside it plus the inherited ones it uses.

Signature wrapping cannot work here by construction: the reference is always
``URI=""`` (the whole message, not an element found by Id), the message must hold
exactly one ``ds:Signature`` and it must be a child of this message's own Header,
``ds:Object`` is refused, and the bytes digested are the message the caller then
reads, not another element somewhere else in the envelope.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from concentrador.protocol.iec62325.errors import ErrorCode, SignatureError
from concentrador.protocol.iec62325.wire import DS_NAMESPACE, MSG_NAMESPACE, PLACEHOLDER

__all__ = [
    "PLACEHOLDER",
    "SignatureError",
    "SigningKey",
    "canonical_parts",
    "content_digest",
    "sign",
    "verify",
]

_PLACEHOLDER_BYTES = PLACEHOLDER.encode("ascii")

C14N_INCLUSIVE = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
_C14N_WITH_COMMENTS = C14N_INCLUSIVE + "#WithComments"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
_SHA1_ALGORITHMS = frozenset(
    {
        "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
        "http://www.w3.org/2000/09/xmldsig#sha1",
    }
)

_DS = f"{{{DS_NAMESPACE}}}"
_SIGNATURE = _DS + "Signature"
_HEADER = f"{{{MSG_NAMESPACE}}}Header"
_PAYLOAD = f"{{{MSG_NAMESPACE}}}Payload"
_COMPRESSED = f"{{{MSG_NAMESPACE}}}Compressed"
_SYNTAX = ErrorCode.SIGNATURE_SYNTAX
_XML_NS = "{http://www.w3.org/XML/1998/namespace}"
# Characters a base64 text may hold in XML (xs:base64Binary allows white space).
_BASE64_TEXT = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/= \t\r\n"


@dataclass(frozen=True)
class SigningKey:
    """Our key and certificate (the certificate must allow clientAuth: REE checks it)."""

    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate


def canonical_parts(message: etree._Element) -> tuple[bytes, bytes]:
    """Inclusive C14N of ``message`` as its own document, its signature removed.

    Split around :data:`PLACEHOLDER` (which must then be the whole text of this
    message's ``Payload/Compressed``): ``(before, after)``; ``(whole, b"")`` if absent.
    """
    return _canonical_parts(_own_document(message))


def content_digest(before: bytes, pieces: Iterable[bytes], after: bytes) -> bytes:
    """SHA-256 of ``before + canonical(pieces) + after``.

    ``pieces`` are the base64 text bytes exactly as on the wire. Their canonical
    form is what an XML parser would have made of them: line ends normalized
    (``\\r\\n`` and a lone ``\\r`` become ``\\n``), nothing else (no markup or
    references can occur: the splitter refused them).
    """
    digest = hashlib.sha256(before)
    skip_lf = False
    for piece in pieces:
        if piece.translate(None, _BASE64_TEXT):
            raise SignatureError("the Compressed content holds characters other than base64")
        if skip_lf and piece[:1] == b"\n":
            piece = piece[1:]  # the LF of a CR LF split across two pieces
        if b"\r" in piece:
            skip_lf = piece.endswith(b"\r")
            piece = piece.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        else:  # the usual case: a scan, not two copies
            skip_lf = False
        digest.update(piece)
    digest.update(after)
    return digest.digest()


def sign(message: etree._Element, key: SigningKey, digest: bytes | None = None) -> None:
    """Append an enveloped ``ds:Signature`` to ``message``'s ``msg:Header``.

    ``digest`` is the :func:`content_digest` of the message with its streamed
    content; ``None`` computes it from the message (which must then hold no
    :data:`PLACEHOLDER`).
    """
    header = _own_header(message)
    if next(message.iter(_SIGNATURE), None) is not None:
        raise SignatureError("the message already holds a ds:Signature", ErrorCode.CANNOT_SIGN)
    if digest is None:
        before, after = canonical_parts(message)
        if after:
            raise SignatureError(
                "the message holds the content placeholder: pass the streamed digest",
                ErrorCode.CANNOT_SIGN,
            )
        digest = hashlib.sha256(before).digest()
    if len(digest) != hashlib.sha256().digest_size:
        raise SignatureError("a SHA-256 digest has 32 bytes", ErrorCode.CANNOT_SIGN)
    signature = _signature_element(digest, key.certificate)
    header.append(signature)
    # SignatureValue signs SignedInfo canonicalized where it sits: in the message
    # taken as its own document (inclusive C14N: with every namespace in scope).
    signed_info = _own_document(message).find(f"{_HEADER}/{_SIGNATURE}/{_DS}SignedInfo")
    assert signed_info is not None  # just appended
    value = key.private_key.sign(
        _canonical_signed_info(signed_info), padding.PKCS1v15(), hashes.SHA256()
    )
    signature_value = signature.find(f"{_DS}SignatureValue")
    assert signature_value is not None
    signature_value.text = base64.b64encode(value).decode("ascii")


def verify(message: etree._Element, *, content: Iterable[bytes] = ()) -> x509.Certificate:
    """Check ``message``'s enveloped signature strictly; return the signer's certificate.

    ``content`` is the streamed base64 text that :data:`PLACEHOLDER` stands for.
    The caller checks that the certificate belongs to the peer.
    """
    own = _own_document(message)
    signatures = list(own.iter(_SIGNATURE))
    if len(signatures) != 1:
        raise SignatureError(
            f"the message must hold exactly one ds:Signature, it holds {len(signatures)}",
            ErrorCode.SIGNATURE_SYNTAX if not signatures else ErrorCode.SIGNATURE_INVALID,
        )
    signature = signatures[0]
    if signature.getparent() is not _own_header(own):
        raise SignatureError("the ds:Signature is not a child of this message's msg:Header")
    signed_info, value, certificate = _read_signature(signature)
    expected_digest = _read_signed_info(signed_info)
    public_key = certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise SignatureError("the signing certificate does not hold an RSA key")
    try:
        public_key.verify(
            value, _canonical_signed_info(signed_info), padding.PKCS1v15(), hashes.SHA256()
        )
    except InvalidSignature:
        raise SignatureError(
            "the SignatureValue does not match SignedInfo and the certificate's key"
        ) from None
    before, after = _canonical_parts(own)
    if after:
        actual = content_digest(before, content, after)
    else:
        if any(content):
            raise SignatureError("content was streamed but the message has no placeholder")
        actual = hashlib.sha256(before).digest()
    if not hmac.compare_digest(actual, expected_digest):
        raise SignatureError("the digest does not match: the signed message was changed")
    return certificate


# -- building -----------------------------------------------------------------


def _signature_element(digest: bytes, certificate: x509.Certificate) -> etree._Element:
    def sub(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
        child = etree.SubElement(parent, _DS + name)
        child.text = text
        return child

    signature = etree.Element(_SIGNATURE, nsmap={"ds": DS_NAMESPACE})
    signed_info = sub(signature, "SignedInfo")
    sub(signed_info, "CanonicalizationMethod").set("Algorithm", C14N_INCLUSIVE)
    sub(signed_info, "SignatureMethod").set("Algorithm", RSA_SHA256)
    reference = sub(signed_info, "Reference")
    reference.set("URI", "")
    sub(sub(reference, "Transforms"), "Transform").set("Algorithm", ENVELOPED)
    sub(reference, "DigestMethod").set("Algorithm", SHA256)
    sub(reference, "DigestValue", base64.b64encode(digest).decode("ascii"))
    sub(signature, "SignatureValue")
    x509_data = sub(sub(signature, "KeyInfo"), "X509Data")
    issuer_serial = sub(x509_data, "X509IssuerSerial")
    sub(issuer_serial, "X509IssuerName", certificate.issuer.rfc4514_string())
    sub(issuer_serial, "X509SerialNumber", str(certificate.serial_number))
    sub(x509_data, "X509SubjectName", certificate.subject.rfc4514_string())
    der = certificate.public_bytes(Encoding.DER)
    sub(x509_data, "X509Certificate", base64.b64encode(der).decode("ascii"))
    return signature


# -- reading ------------------------------------------------------------------


def _own_document(message: etree._Element) -> etree._Element:
    return copy.deepcopy(message)


def _canonical_signed_info(signed_info: etree._Element) -> bytes:
    """Inclusive C14N of SignedInfo: a copy as a root with every namespace in scope.

    Not ``etree.tostring(signed_info, method="c14n")``: for a non-root element lxml
    and libxml2 write ``xmlns=""`` on its grandchildren when they sit in a default
    namespace that shadows an ancestor's one, as REE's unprefixed Signature does
    inside a RequestMessage declaring ``xmlns="urn:iec62325.504:messages:1:0"``.
    """
    attributes = {str(name): str(value) for name, value in signed_info.attrib.items()}
    for ancestor in signed_info.iterancestors():  # inclusive C14N inherits xml:*
        for name, value in ancestor.attrib.items():
            if str(name).startswith(_XML_NS):
                attributes.setdefault(str(name), str(value))
    # The stubs type nsmap keys as str; lxml takes None for the default namespace.
    nsmap: Any = signed_info.nsmap
    root = etree.Element(signed_info.tag, attributes, nsmap=nsmap)
    root.text = signed_info.text
    root.extend(copy.deepcopy(child) for child in signed_info)
    return etree.tostring(etree.ElementTree(root), method="c14n")


def _own_header(message: etree._Element) -> etree._Element:
    headers = message.findall(_HEADER)
    if len(headers) != 1:
        raise SignatureError(
            f"the message must have one msg:Header, it has {len(headers)}", _SYNTAX
        )
    return headers[0]


def _canonical_parts(own: etree._Element) -> tuple[bytes, bytes]:
    """C14N of the (already copied) message minus the signature in its Header."""
    header = own.find(_HEADER)
    if header is not None:
        for signature in header.findall(_SIGNATURE):
            _remove_keeping_tail(signature)
    whole: bytes = etree.tostring(etree.ElementTree(own), method="c14n")
    count = whole.count(_PLACEHOLDER_BYTES)
    if count == 0:
        return whole, b""
    compressed = own.find(f"{_PAYLOAD}/{_COMPRESSED}")
    if count > 1 or compressed is None or compressed.text != PLACEHOLDER:
        raise SignatureError(
            "the content placeholder must be the text of Payload/Compressed, once", _SYNTAX
        )
    before, after = whole.split(_PLACEHOLDER_BYTES)
    return before, after


def _remove_keeping_tail(element: etree._Element) -> None:
    # The enveloped-signature transform removes the element node only; lxml's
    # remove() would take the text after it (its tail) along.
    parent = element.getparent()
    assert parent is not None
    if element.tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + element.tail
        else:
            parent.text = (parent.text or "") + element.tail
    parent.remove(element)


def _children(element: etree._Element) -> list[etree._Element]:
    # Comments and processing instructions inside ds:Signature are refused, not skipped.
    children = list(element)
    for child in children:
        if not isinstance(child.tag, str):
            raise SignatureError(f"unexpected comment or PI inside ds:{_local(element)}", _SYNTAX)
    return children


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname


def _expect(element: etree._Element, names: tuple[str, ...]) -> list[etree._Element]:
    children = _children(element)
    got = tuple(child.tag for child in children)
    if got != tuple(_DS + name for name in names):
        shown = ", ".join(etree.QName(tag).localname for tag in got if isinstance(tag, str))
        raise SignatureError(
            f"ds:{_local(element)} must hold {', '.join(names)}; it holds {shown or 'nothing'}",
            _SYNTAX,
        )
    return children


def _read_signature(signature: etree._Element) -> tuple[etree._Element, bytes, x509.Certificate]:
    children = _children(signature)
    if any(child.tag == _DS + "Object" for child in children):
        raise SignatureError("ds:Object is not allowed in the signature", _SYNTAX)
    signed_info, value, key_info = _expect(signature, ("SignedInfo", "SignatureValue", "KeyInfo"))
    certificates = key_info.findall(f"{_DS}X509Data/{_DS}X509Certificate")
    if len(certificates) != 1:
        raise SignatureError(
            f"KeyInfo/X509Data must hold one X509Certificate, it holds {len(certificates)}",
            _SYNTAX,
        )
    try:
        certificate = x509.load_der_x509_certificate(_base64(certificates[0], "X509Certificate"))
    except ValueError as err:
        raise SignatureError(f"the X509Certificate cannot be read: {err}", _SYNTAX) from None
    serial = key_info.findtext(f"{_DS}X509Data/{_DS}X509IssuerSerial/{_DS}X509SerialNumber")
    if serial is not None and serial.strip() != str(certificate.serial_number):
        raise SignatureError("X509SerialNumber does not match the X509Certificate", _SYNTAX)
    return signed_info, _base64(value, "SignatureValue"), certificate


def _read_signed_info(signed_info: etree._Element) -> bytes:
    """Check SignedInfo's algorithms and the one Reference; return its DigestValue."""
    c14n, method, reference = _expect(
        signed_info, ("CanonicalizationMethod", "SignatureMethod", "Reference")
    )
    _algorithm(c14n, (C14N_INCLUSIVE,), "CanonicalizationMethod")
    _algorithm(method, (RSA_SHA256,), "SignatureMethod")
    uri = reference.get("URI")
    if uri != "":
        shown = "no URI" if uri is None else f"URI={uri!r}"
        raise SignatureError(f'the Reference must have URI="" (whole message), it has {shown}')
    transforms, digest_method, digest_value = _expect(
        reference, ("Transforms", "DigestMethod", "DigestValue")
    )
    listed = _children(transforms)
    algorithms = [_algorithm(t, (ENVELOPED, C14N_INCLUSIVE), "Transform") for t in listed]
    if algorithms not in ([ENVELOPED], [ENVELOPED, C14N_INCLUSIVE]):
        raise SignatureError(
            f"the transforms must be [enveloped-signature] (+ inclusive C14N), not {algorithms}",
            _SYNTAX,
        )
    _algorithm(digest_method, (SHA256,), "DigestMethod")
    digest = _base64(digest_value, "DigestValue")
    if len(digest) != hashlib.sha256().digest_size:
        raise SignatureError("the DigestValue is not a SHA-256 digest", _SYNTAX)
    return digest


def _algorithm(element: etree._Element, allowed: tuple[str, ...], what: str) -> str:
    algorithm = element.get("Algorithm", "")
    if _children(element):
        raise SignatureError(f"ds:{what} must have no parameters", _SYNTAX)
    if algorithm in allowed:
        return algorithm
    if algorithm in _SHA1_ALGORITHMS:
        reason = "SHA-1 is refused; use rsa-sha256 and sha256"
    elif algorithm == _C14N_WITH_COMMENTS:
        reason = "only inclusive C14N 1.0 without comments is accepted"
    else:
        reason = f"accepted: {', '.join(allowed)}"
    raise SignatureError(f"{what} algorithm {algorithm!r} not accepted: {reason}", _SYNTAX)


def _base64(element: etree._Element, what: str) -> bytes:
    # xs:base64Binary may hold white space (Java puts line breaks, even &#13;).
    text = "".join((element.text or "").split())
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError(f"ds:{what} is not valid base64", _SYNTAX) from None
