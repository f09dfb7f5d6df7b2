"""IEC 62325-504 server tests: the real app over mutual TLS, peers signing with
their own certificates (helper B's ``sign``), our answers signed with the node's."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from lxml import etree

from concentrador.config.model import SigningConfig
from concentrador.pki import DevPki
from concentrador.protocol.iec62325 import (
    PLACEHOLDER,
    build_504_envelope,
    read_fault,
    read_response_message,
    split_at_placeholder,
)
from concentrador.protocol.iec62325.models import ReplyError, Response
from concentrador.protocol.iec62325.signature import (
    SigningKey,
    canonical_parts,
    content_digest,
    sign,
    verify,
)
from concentrador.protocol.soap import SOAP11, SoapVersion, parse_envelope
from concentrador.spool.layout import SpoolState
from tests.server.conftest import Node, ServerFactory

PATH = "/ServiceEME"
STORAGE = (SpoolState.INBOX, SpoolState.PARTIAL, SpoolState.MANUAL)


def signing_key(pki: DevPki, stem: str) -> SigningKey:
    key = load_pem_private_key((pki.directory / f"{stem}.key").read_bytes(), password=None)
    cert = x509.load_pem_x509_certificate((pki.directory / f"{stem}.pem").read_bytes())
    return SigningKey(key, cert)  # type: ignore[arg-type]


Start504 = Callable[..., Awaitable[Node]]


@pytest.fixture
def start_504(start_server: ServerFactory, pki: DevPki) -> Start504:
    """A server where CREC speaks 504 (``signatures`` as given) and we sign with client.pem."""

    async def factory(
        signatures: str = "required", *, sign_answers: bool = True, **changes: Any
    ) -> Node:
        crec = {"protocol": "iec62325-504", "signatures": signatures, **changes}
        node = await start_server(CREC=crec)
        signing = SigningConfig(pki.directory / "client.pem", pki.directory / "client.key")
        config = node.state.config
        node.state.config = dataclasses.replace(config, signing=signing if sign_answers else None)
        return node

    return factory


def url_504(node: Node) -> str:
    return node.url.rsplit("/cpcscc/services", 1)[0] + PATH


@dataclass
class Answer:
    status: int
    raw: bytes
    message: etree._Element | None
    response: Response | None
    errors: list[ReplyError]

    @property
    def code(self) -> str | None:
        return self.errors[0].code if self.errors else None


def parse_answer(status: int, raw: bytes) -> Answer:
    if len(raw) < 1 << 20:
        envelope = parse_envelope(raw)
        if envelope.fault is not None:
            return Answer(status, raw, None, None, read_fault(envelope))
        message = envelope.first_body_element
    else:  # a big get answer: lxml's own limit on text nodes is lifted for the test
        root = etree.fromstring(raw, etree.XMLParser(huge_tree=True))
        message = root[-1][0]
    assert message is not None
    return Answer(status, raw, message, read_response_message(message), [])


def body_of(
    message: etree._Element,
    *,
    key: SigningKey | None = None,
    content: bytes | None = None,
    version: SoapVersion = SOAP11,
) -> bytes:
    """The request body; ``content`` (base64 text) replaces the placeholder."""
    if content is None:
        if key is not None:
            sign(message, key)
        return build_504_envelope(message, version)
    if key is not None:
        before, after = canonical_parts(message)
        sign(message, key, content_digest(before, [content], after))
    prefix, suffix = split_at_placeholder(build_504_envelope(message, version))
    return prefix + content + suffix


async def call(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    *,
    version: SoapVersion = SOAP11,
) -> Answer:
    headers = {"Content-Type": version.content_type, "SOAPAction": '"#request"'}
    async with session.post(url, data=body, headers=headers) as response:
        raw = await response.read()
        return parse_answer(response.status, raw)


def verify_answer(answer: Answer, pki: DevPki) -> x509.Certificate:
    """Check our answer's signature (with its base64 content) and that it is client.pem's."""
    assert answer.message is not None
    message = answer.message
    content: list[bytes] = []
    compressed = answer.response.compressed if answer.response else None
    if compressed is not None:
        # The received text stands where the placeholder was when it was signed.
        for element in message.iter("{http://iec.ch/TC57/2011/schema/message}Compressed"):
            element.text = PLACEHOLDER
        content = [compressed.encode()]
    certificate = verify(message, content=content)
    expected = x509.load_pem_x509_certificate((pki.directory / "client.pem").read_bytes())
    assert certificate == expected
    return certificate


def decoded(answer: Answer) -> bytes:
    assert answer.response is not None and answer.response.compressed is not None
    return base64.b64decode(answer.response.compressed)


def stored(node: Node, peer: str = "CREC") -> dict[str, list[str]]:
    found = {state.value: node.names(peer, state) for state in STORAGE}
    found[".work"] = node.work_files(peer)
    return {k: v for k, v in found.items() if v}
