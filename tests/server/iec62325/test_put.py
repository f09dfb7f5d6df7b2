"""put over mutual TLS: signatures per policy, enviarFichero's checks, nothing stored on refusal."""

from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import os

import pytest
from lxml import etree

from concentrador.config.loadwindow import LoadWindow
from concentrador.protocol.iec62325 import put_binary_request
from concentrador.protocol.iec62325.elements import msg_q
from concentrador.protocol.iec62325.signature import sign
from concentrador.server.iec62325 import putting, upload
from concentrador.spool.layout import SpoolState
from tests.server.conftest import Node
from tests.server.iec62325.conftest import (
    body_of,
    call,
    signing_key,
    stored,
    url_504,
    verify_answer,
)

NAME = "F1_0086_20240101_20240102.0.bz2"
MSG = "http://iec.ch/TC57/2011/schema/message"
DS = "http://www.w3.org/2000/09/xmldsig#"


def put_body(name: str, data: bytes, key=None, *, source: str | None = None, fmt="BINARY") -> bytes:
    message = put_binary_request(name, fmt, source=source)
    return body_of(message, key=key, content=base64.b64encode(data))


async def test_signed_binary_of_5_mb_is_verified_and_stored(start_504, crec, pki) -> None:
    node = await start_504()
    data = os.urandom(5 << 20)
    answer = await call(crec, url_504(node), put_body(NAME, data, signing_key(pki, "CREC-client")))
    assert answer.status == 200, answer.raw[:600]
    assert answer.response.name == NAME
    verify_answer(answer, pki)
    assert stored(node) == {"inbox": [NAME]}
    assert (node.folder("CREC", SpoolState.INBOX) / NAME).read_bytes() == data
    assert node.ledger.received("CREC", NAME).md5 == hashlib.md5(data).hexdigest()


async def test_unsigned_put_is_refused_when_required(start_504, crec) -> None:
    node = await start_504("required")
    answer = await call(crec, url_504(node), put_body(NAME, b"BZh9data"))
    assert answer.status == 500 and answer.code == "HAND-008"
    assert stored(node) == {}


async def test_unsigned_put_is_accepted_when_optional_or_off(start_504, crec) -> None:
    for policy in ("optional", "off"):
        node = await start_504(policy)
        answer = await call(crec, url_504(node), put_body(NAME, b"BZh9data"))
        assert answer.status == 200, answer.raw[:600]
        assert node.names("CREC", SpoolState.INBOX) == [NAME]
        (node.folder("CREC", SpoolState.INBOX) / NAME).unlink()


async def test_tampered_content_is_refused(start_504, crec, pki) -> None:
    node = await start_504("optional")
    body = put_body(NAME, b"BZh9data-data", signing_key(pki, "CREC-client"))
    tampered = body.replace(base64.b64encode(b"BZh9data-data"), base64.b64encode(b"BZh9data-evil"))
    assert tampered != body
    answer = await call(crec, url_504(node), tampered)
    assert answer.status == 500 and answer.code == "HAND-007", answer.raw[:600]
    assert stored(node) == {}


async def test_off_ignores_even_a_bad_signature(start_504, crec, pki) -> None:
    node = await start_504("off")
    body = put_body(NAME, b"BZh9data-data", signing_key(pki, "CREC-client"))
    tampered = body.replace(base64.b64encode(b"BZh9data-data"), base64.b64encode(b"BZh9data-evil"))
    answer = await call(crec, url_504(node), tampered)
    assert answer.status == 200
    assert (node.folder("CREC", SpoolState.INBOX) / NAME).read_bytes() == b"BZh9data-evil"


async def test_another_peers_key_is_refused(start_504, crec, pki) -> None:
    node = await start_504()
    answer = await call(
        crec, url_504(node), put_body(NAME, b"BZh9x", signing_key(pki, "OTRO-client"))
    )
    assert answer.status == 500 and answer.code == "HAND-007"
    assert "not a dn of peer CREC" in answer.errors[0].details
    assert stored(node) == {}


async def test_source_contradicting_the_certificate_stores_nothing(start_504, crec, pki) -> None:
    node = await start_504()
    body = put_body(NAME, b"BZh9x", signing_key(pki, "CREC-client"), source="OTRO")
    answer = await call(crec, url_504(node), body)
    assert answer.status == 500 and answer.code == "HAND-003"
    assert stored(node) == {}


def _signed_put(key, data: bytes) -> etree._Element:
    message = put_binary_request(NAME)
    compressed = message.find(f"{{{MSG}}}Payload/{{{MSG}}}Compressed")
    compressed.text = base64.b64encode(data).decode()
    sign(message, key)
    return message


def _wrapped_in_header(key) -> bytes:
    """The signed original hidden inside the Header, a different file outside."""
    evil = put_binary_request(NAME)
    evil.find(f"{{{MSG}}}Header").append(_signed_put(key, b"BZh9good"))
    return body_of(evil, content=base64.b64encode(b"BZh9evil"))


def _signature_moved(key) -> bytes:
    """The original's signature moved onto a message with other content."""
    signature = _signed_put(key, b"BZh9good").find(f"{{{MSG}}}Header/{{{DS}}}Signature")
    evil = put_binary_request(NAME)
    evil.find(f"{{{MSG}}}Header").append(copy.deepcopy(signature))
    return body_of(evil, content=base64.b64encode(b"BZh9evil"))


def _two_signatures(key) -> bytes:
    """A valid signature of the evil message plus a second one wrapped beside it."""
    good = _signed_put(key, b"BZh9good").find(f"{{{MSG}}}Header/{{{DS}}}Signature")
    evil = put_binary_request(NAME)
    content = base64.b64encode(b"BZh9evil")
    from concentrador.protocol.iec62325.signature import canonical_parts, content_digest

    before, after = canonical_parts(evil)
    sign(evil, key, content_digest(before, [content], after))
    evil.find(f"{{{MSG}}}Header").insert(0, copy.deepcopy(good))
    from concentrador.protocol.iec62325 import build_504_envelope, split_at_placeholder

    prefix, suffix = split_at_placeholder(build_504_envelope(evil))
    return prefix + content + suffix


@pytest.mark.parametrize(
    ("forge", "code"),
    [
        (_wrapped_in_header, "HAND-002"),  # a second Payload/Compressed: refused by the splitter
        (_signature_moved, "HAND-007"),
        (_two_signatures, "HAND-007"),
    ],
)
async def test_signature_wrapping_is_refused(start_504, crec, pki, forge, code) -> None:
    node = await start_504()
    answer = await call(crec, url_504(node), forge(signing_key(pki, "CREC-client")))
    assert answer.status == 500, answer.raw[:600]
    assert answer.code == code, answer.errors
    assert stored(node) == {}


async def test_oversized_base64_is_refused_while_streaming(start_504, crec, monkeypatch) -> None:
    node = await start_504("off")
    monkeypatch.setattr(upload, "MAX_CONTENT", 1 << 20)
    answer = await call(crec, url_504(node), put_body(NAME, os.urandom(1 << 20)))
    assert answer.status == 500 and answer.code == "PUT-018"
    assert stored(node) == {}


async def test_file_over_the_limit_is_refused_after_decoding(start_504, crec, monkeypatch) -> None:
    node = await start_504("off")
    monkeypatch.setattr(putting, "MAX_FILE_SIZE", 1000)
    answer = await call(crec, url_504(node), put_body(NAME, os.urandom(1001)))
    assert answer.status == 500 and answer.code == "PUT-018"
    assert stored(node) == {}
    ok = await call(crec, url_504(node), put_body(NAME, os.urandom(1000)))
    assert ok.status == 200


@pytest.mark.parametrize(
    ("changes", "name", "code"),
    [
        ({}, "../evil.bz2", "PUT-010"),
        ({"participants": frozenset({"9999"})}, NAME, "PUT-008"),
        ({"allowed_types": frozenset({"TOD"})}, NAME, "PUT-005"),
    ],
)
async def test_enviar_checks_refuse_and_store_nothing(start_504, crec, changes, name, code) -> None:
    node = await start_504("off", **changes)
    answer = await call(crec, url_504(node), put_body(name, b"BZh9data"))
    assert answer.status == 500 and answer.code == code, answer.raw[:600]
    assert stored(node) == {}


async def test_invalid_base64_is_put_011(start_504, crec) -> None:
    node = await start_504("off")
    message = put_binary_request(NAME)
    answer = await call(crec, url_504(node), body_of(message, content=b"QUJD="))
    assert answer.status == 500 and answer.code == "PUT-011"
    assert stored(node) == {}


async def test_outside_the_load_window_goes_to_manual(start_504, crec) -> None:
    # FROZEN_NOW is 11:00 in Madrid.
    node = await start_504("off", load_window=LoadWindow.parse("01:00-02:00"))
    answer = await call(crec, url_504(node), put_body(NAME, b"BZh9late"))
    assert answer.status == 200
    assert stored(node) == {"manual": [NAME]}


async def test_xml_payload_is_stored_as_a_file(start_504, crec, pki) -> None:
    node: Node = await start_504()
    from concentrador.protocol.iec62325.elements import new_message

    message, _ = new_message("RequestMessage", "create", "Doc", None, None)
    payload = etree.SubElement(message, msg_q("Payload"))
    document = etree.SubElement(payload, "{urn:example}Doc")
    etree.SubElement(document, "{urn:example}MessageIdentification", v="DOC_0086_1")
    answer = await call(crec, url_504(node), body_of(message, key=signing_key(pki, "CREC-client")))
    assert answer.status == 200, answer.raw[:600]
    assert stored(node) == {"inbox": ["DOC_0086_1.xml"]}
    text = (node.folder("CREC", SpoolState.INBOX) / "DOC_0086_1.xml").read_bytes()
    assert etree.fromstring(text).tag == "{urn:example}Doc"


async def test_gzip_xml_payload_is_stored_decompressed(start_504, crec) -> None:
    node = await start_504("off")
    document = b"<Doc xmlns='urn:example'/>"
    body = put_body("doc_0086.xml", gzip.compress(document), fmt="XML")
    answer = await call(crec, url_504(node), body)
    assert answer.status == 200, answer.raw[:600]
    assert (node.folder("CREC", SpoolState.INBOX) / "doc_0086.xml").read_bytes() == document
