"""Enveloped signatures of 61968-100 messages: round trips, streaming, strict refusals."""

from __future__ import annotations

import base64
import copy
from pathlib import Path

import pytest
from lxml import etree

from concentrador.protocol.iec62325.errors import ErrorCode, Iec62325Error
from concentrador.protocol.iec62325.signature import (
    PLACEHOLDER,
    SignatureError,
    canonical_parts,
    content_digest,
    sign,
    verify,
)
from concentrador.protocol.iec62325.wire import DS_NAMESPACE

from .signing_fixtures import MSG, Keys, make_keys, message_of, put_message

DS = f"{{{DS_NAMESPACE}}}"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return make_keys(tmp_path_factory.mktemp("pki") / "certs")


def signed(keys: Keys, document: bytes | None = None) -> bytes:
    """Sign the message in ``document`` and serialize the whole document again."""
    root = etree.fromstring(document or put_message())
    message = root if root.tag.startswith(MSG) else root.find(f".//{MSG}RequestMessage")
    assert message is not None
    sign(message, keys.crec)
    return etree.tostring(root)


def refused(document: bytes, match: str, **kwargs: object) -> SignatureError:
    with pytest.raises(SignatureError, match=match) as caught:
        verify(message_of(document), **kwargs)  # type: ignore[arg-type]
    return caught.value


def test_sign_then_verify_returns_the_signers_certificate(keys: Keys) -> None:
    assert verify(message_of(signed(keys))) == keys.crec.certificate


def test_signature_is_the_last_child_of_the_header_and_ree_shaped(keys: Keys) -> None:
    header = message_of(signed(keys)).find(f"{MSG}Header")
    assert header is not None
    signature = header[-1]
    assert signature.tag == DS + "Signature"
    paths = [etree.QName(e).localname for e in signature.iter() if isinstance(e.tag, str)]
    assert paths[:2] == ["Signature", "SignedInfo"]
    assert {"X509IssuerSerial", "X509SubjectName", "X509Certificate"} <= set(paths)
    reference = signature.find(f"{DS}SignedInfo/{DS}Reference")
    assert reference is not None and reference.get("URI") == ""


def test_signature_error_is_an_iec62325_error_with_a_code(keys: Keys) -> None:
    document = signed(keys).replace(b"<msg:Verb>create", b"<msg:Verb>get")
    error = refused(document, "digest does not match")
    assert isinstance(error, Iec62325Error)
    assert error.code == ErrorCode.SIGNATURE_INVALID


def test_a_message_signed_alone_verifies_inside_an_envelope(keys: Keys) -> None:
    # Signed as its own document, then embedded: the envelope's namespaces do not count.
    message = message_of(put_message())
    sign(message, keys.crec)
    envelope = put_message(wrapped=True)
    root = etree.fromstring(envelope)
    body = root[0]
    body.remove(body[0])
    body.append(message)
    assert verify(message_of(etree.tostring(root))) == keys.crec.certificate


def test_a_message_signed_inside_an_envelope_verifies_alone(keys: Keys) -> None:
    document = signed(keys, put_message(wrapped=True))
    alone = copy.deepcopy(message_of(document))
    assert verify(message_of(etree.tostring(alone))) == keys.crec.certificate


def test_tampering_anywhere_is_refused(keys: Keys) -> None:
    document = signed(keys)
    refused(document.replace(b"QUJD", b"QUJE"), "digest does not match")
    refused(document.replace(b"0086_", b"0087_"), "digest does not match")
    refused(document.replace(b"</msg:Request>", b"<msg:ID>x</msg:ID></msg:Request>"), "digest")


def test_a_changed_signature_value_is_refused(keys: Keys) -> None:
    message = message_of(signed(keys))
    value = message.find(f".//{DS}SignatureValue")
    assert value is not None and value.text
    raw = bytearray(base64.b64decode(value.text))
    raw[10] ^= 1
    value.text = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(SignatureError, match="SignatureValue does not match"):
        verify(message)


def test_another_peers_signature_returns_that_peers_certificate(keys: Keys) -> None:
    message = message_of(put_message())
    sign(message, keys.cemi)
    assert verify(message) == keys.cemi.certificate  # the adapter refuses it: not the peer


def test_a_swapped_certificate_is_refused(keys: Keys) -> None:
    # Signed by CEMI, KeyInfo claims CREC: the key does not match the SignatureValue.
    message = message_of(put_message())
    sign(message, keys.cemi)
    crec = message_of(signed(keys)).find(f".//{DS}KeyInfo")
    old = message.find(f".//{DS}KeyInfo")
    assert crec is not None and old is not None
    old.getparent().replace(old, crec)  # type: ignore[union-attr]
    with pytest.raises(SignatureError, match="SignatureValue does not match"):
        verify(message)


# -- streamed content ---------------------------------------------------------


def test_streamed_digest_equals_the_digest_of_the_whole_message(keys: Keys) -> None:
    content = [b"QUJDRE", b"VGR0hJ", b"SktMTU5P"]
    with_placeholder = message_of(put_message(PLACEHOLDER))
    before, after = canonical_parts(with_placeholder)
    assert after.startswith(b"</msg:Compressed>")
    digest = content_digest(before, content, after)
    sign(with_placeholder, keys.crec, digest)
    wire = etree.tostring(with_placeholder).replace(PLACEHOLDER.encode(), b"".join(content))
    # A verifier that holds the whole message agrees...
    assert verify(message_of(wire)) == keys.crec.certificate
    # ...and so does one that reads the content as pieces.
    assert verify(with_placeholder, content=iter(content)) == keys.crec.certificate
    with pytest.raises(SignatureError, match="digest does not match"):
        verify(with_placeholder, content=[b"QUJDRE", b"VGR0hJ"])


def test_line_ends_in_streamed_content_are_normalized_like_a_parser_does(keys: Keys) -> None:
    text = "QUJD\r\nREVG\rR0hJ\nSktM"
    parsed = message_of(put_message(text.replace("\r", "&#13;")))  # the parsed text keeps CR
    wire_form = message_of(put_message(text))  # what a parser makes of raw CRs: LF
    sign(wire_form, keys.crec)
    placeholder = message_of(etree.tostring(wire_form).replace(b"QUJD\nREVG\nR0hJ\nSktM", b"X"))
    placeholder.find(f"{MSG}Payload/{MSG}Compressed").text = PLACEHOLDER  # type: ignore[union-attr]
    raw = text.encode()
    for cut in range(len(raw) + 1):
        pieces = [raw[:cut], raw[cut:]]
        assert verify(placeholder, content=pieces) == keys.crec.certificate
    assert parsed is not None


def test_content_without_placeholder_or_two_placeholders_are_refused(keys: Keys) -> None:
    refused(signed(keys), "no placeholder", content=[b"QUJD"])
    twice = message_of(put_message(PLACEHOLDER))
    verb = twice.find(f"{MSG}Header/{MSG}Verb")
    assert verb is not None
    verb.text = PLACEHOLDER
    with pytest.raises(SignatureError, match="text of Payload/Compressed, once"):
        canonical_parts(twice)


def test_content_digest_refuses_markup_in_pieces() -> None:
    with pytest.raises(SignatureError, match="other than base64"):
        content_digest(b"a", [b"QU&amp;"], b"b")


def test_sign_without_digest_refuses_a_placeholder_and_a_second_signature(keys: Keys) -> None:
    with pytest.raises(SignatureError, match="placeholder"):
        sign(message_of(put_message(PLACEHOLDER)), keys.crec)
    with pytest.raises(SignatureError, match="already holds"):
        sign(message_of(signed(keys)), keys.crec)


def test_canonical_parts_keeps_the_text_after_the_removed_signature(keys: Keys) -> None:
    plain = message_of(put_message())
    unsigned, _ = canonical_parts(plain)
    header = message_of(signed(keys)).find(f"{MSG}Header")
    assert header is not None
    # Pretty-printed: white space after the signature, before </msg:Header>.
    header[-2].tail, header[-1].tail = "\n    ", "\n  "
    whole, after = canonical_parts(header.getparent())  # type: ignore[arg-type]
    assert after == b""
    assert whole == unsigned.replace(b"</msg:Timestamp>\n  ", b"</msg:Timestamp>\n    \n  ")


# -- strictness: wrapping and algorithms ---------------------------------------


def test_a_second_signed_copy_in_the_payload_is_refused(keys: Keys) -> None:
    document = signed(keys)
    copy_of_signed = etree.tostring(message_of(document))
    wrapped = document.replace(b"<msg:Payload>", b"<msg:Payload><doc>" + copy_of_signed + b"</doc>")
    error = refused(wrapped, "exactly one ds:Signature, it holds 2")
    assert error.code == ErrorCode.SIGNATURE_INVALID


def test_a_signature_only_in_the_payload_is_refused(keys: Keys) -> None:
    message = message_of(signed(keys))
    signature = message.find(f".//{DS}Signature")
    payload = message.find(f"{MSG}Payload")
    assert signature is not None and payload is not None
    payload.append(signature)
    with pytest.raises(SignatureError, match="not a child of this message's msg:Header"):
        verify(message)


def test_a_signature_of_an_enclosing_or_other_message_is_refused(keys: Keys) -> None:
    # The signed message travels as the payload of an unsigned one (wrapping).
    inner = etree.tostring(message_of(signed(keys)))
    outer = put_message().replace(b"<msg:Payload>", b"<msg:Payload>" + inner)
    refused(outer, "not a child of this message's msg:Header")
    missing = refused(put_message(), "it holds 0")
    assert missing.code == ErrorCode.SIGNATURE_SYNTAX


def _edit_signature(keys: Keys, old: bytes, new: bytes) -> bytes:
    document = signed(keys)
    assert old in document, old
    return document.replace(old, new, 1)


def test_an_object_element_is_refused(keys: Keys) -> None:
    document = _edit_signature(
        keys, b"</ds:KeyInfo>", b"</ds:KeyInfo><ds:Object><x>payload</x></ds:Object>"
    )
    refused(document, "ds:Object is not allowed")


def test_a_reference_to_an_id_or_without_uri_is_refused(keys: Keys) -> None:
    refused(_edit_signature(keys, b'URI=""', b'URI="#msg"'), "URI=\"\".*'#msg'")
    refused(_edit_signature(keys, b' URI=""', b""), "it has no URI")


def test_two_references_are_refused(keys: Keys) -> None:
    document = signed(keys)
    message = message_of(document)
    reference = message.find(f".//{DS}Reference")
    assert reference is not None
    reference.addnext(copy.deepcopy(reference))
    with pytest.raises(SignatureError, match="SignedInfo must hold"):
        verify(message)


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        (
            b"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            b"http://www.w3.org/2000/09/xmldsig#rsa-sha1",
            "SHA-1 is refused",
        ),
        (
            b"http://www.w3.org/2001/04/xmlenc#sha256",
            b"http://www.w3.org/2000/09/xmldsig#sha1",
            "SHA-1 is refused",
        ),
        (
            b'REC-xml-c14n-20010315"/><ds:SignatureMethod',
            b'REC-xml-c14n-20010315#WithComments"/><ds:SignatureMethod',
            "without comments",
        ),
        (
            b'REC-xml-c14n-20010315"/><ds:SignatureMethod',
            b'http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod',
            "CanonicalizationMethod algorithm",
        ),
        (
            b'enveloped-signature"/>',
            b'enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/TR/1999/'
            b'REC-xpath-19991116"/>',
            "Transform algorithm",
        ),
        (
            b'<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>',
            b"",
            r"transforms must be \[enveloped-signature\]",
        ),
        (b"<ds:X509Certificate>", b"<ds:X509Certificate>!", "not valid base64"),
        (b"<ds:X509Certificate>", b"<ds:X509Certificate>AAAA", "cannot be read"),
        (b"<ds:X509SerialNumber>", b"<ds:X509SerialNumber>9", "X509SerialNumber"),
    ],
)
def test_algorithms_and_syntax_are_checked_with_a_clear_reason(
    keys: Keys, old: bytes, new: bytes, reason: str
) -> None:
    error = refused(_edit_signature(keys, old, new), reason)
    assert error.code == ErrorCode.SIGNATURE_SYNTAX


def test_an_extra_inclusive_c14n_transform_is_accepted_but_signed_info_is_covered(
    keys: Keys,
) -> None:
    # Adding the transform changes SignedInfo, so our SignatureValue no longer matches:
    # the structure check passes and the RSA check is what refuses.
    document = _edit_signature(
        keys,
        b'enveloped-signature"/>',
        b'enveloped-signature"/><ds:Transform '
        b'Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/>',
    )
    refused(document, "SignatureValue does not match")


def test_a_comment_inside_the_signature_is_refused(keys: Keys) -> None:
    refused(_edit_signature(keys, b"<ds:SignedInfo>", b"<ds:SignedInfo><!--x-->"), "comment")


def test_keys_fixture_files_exist(keys: Keys) -> None:
    assert Path(keys.crec_cert).exists() and keys.ca.exists()
