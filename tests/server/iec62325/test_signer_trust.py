"""Whose signature a 504 put may carry: the signer checked like a TLS client
certificate (``concentrador.pki.signer``), not by its DN alone; answers to an
``off`` peer unsigned; a replayed put stored once."""

from __future__ import annotations

import base64
import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, load_pem_private_key
from cryptography.x509.oid import ExtendedKeyUsageOID

from concentrador.pki import DevPki
from concentrador.pki.authority import CertificateAuthority
from concentrador.protocol.iec62325 import get_request, put_binary_request, query_request
from concentrador.protocol.iec62325.signature import SigningKey
from concentrador.protocol.iec62325.wire import DataType
from concentrador.spool.layout import SpoolState
from tests.server.iec62325.conftest import body_of, call, signing_key, stored, url_504

NAME = "F1_0086_20240101_20240102.0.bz2"


def _load(pki: DevPki, stem: str) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    cert = x509.load_pem_x509_certificate((pki.directory / f"{stem}.pem").read_bytes())
    key = load_pem_private_key((pki.directory / f"{stem}.key").read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return cert, key


def _certificate(
    subject: x509.Name,
    issuer: x509.Name,
    issuer_key: rsa.RSAPrivateKey,
    *,
    key: rsa.RSAPrivateKey,
    start: datetime,
    end: datetime,
    usage: x509.ObjectIdentifier = ExtendedKeyUsageOID.CLIENT_AUTH,
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )


def _crec_subject(pki: DevPki) -> x509.Name:
    return _load(pki, "CREC-client")[0].subject


def self_made(pki: DevPki) -> SigningKey:
    """CREC's DN on a certificate its holder signed itself."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC)
    subject = _crec_subject(pki)
    cert = _certificate(
        subject, subject, key, key=key, start=now - timedelta(days=1), end=now + timedelta(days=9)
    )
    return SigningKey(key, cert)


def rogue_ca(pki: DevPki) -> SigningKey:
    """CREC's DN, issued by a CA that has our CA's very name but another key."""
    ca_cert, _ = _load(pki, "ca")
    rogue = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC)
    cert = _certificate(
        _crec_subject(pki),
        ca_cert.subject,
        rogue,
        key=key,
        start=now - timedelta(days=1),
        end=now + timedelta(days=9),
    )
    return SigningKey(key, cert)


def by_our_ca(
    pki: DevPki,
    *,
    start: datetime,
    end: datetime,
    usage: x509.ObjectIdentifier = ExtendedKeyUsageOID.CLIENT_AUTH,
) -> SigningKey:
    ca_cert, ca_key = _load(pki, "ca")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = _certificate(
        _crec_subject(pki), ca_cert.subject, ca_key, key=key, start=start, end=end, usage=usage
    )
    return SigningKey(key, cert)


def expired(pki: DevPki) -> SigningKey:
    now = datetime.now(UTC)
    return by_our_ca(pki, start=now - timedelta(days=400), end=now - timedelta(days=30))


def server_only(pki: DevPki) -> SigningKey:
    now = datetime.now(UTC)
    return by_our_ca(
        pki,
        start=now - timedelta(days=1),
        end=now + timedelta(days=9),
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
    )


def revoked(pki: DevPki) -> SigningKey:
    """The dev PKI's revoked client certificate: CREC's DN, issued by our CA, in ca.crl."""
    cert, key = _load(pki, "revoked-client")
    assert cert.subject == _crec_subject(pki)
    return SigningKey(key, cert)


def put_body(name: str, data: bytes, key: SigningKey | None) -> bytes:
    return body_of(put_binary_request(name), key=key, content=base64.b64encode(data))


@pytest.mark.parametrize(
    ("forge", "why"),
    [
        (self_made, "was not issued by a CA of [server] client_ca"),
        (rogue_ca, "was not issued by a CA of [server] client_ca"),
        (expired, "is not valid now"),
        (server_only, "does not allow clientAuth"),
        (revoked, "is revoked"),
    ],
)
async def test_a_signer_with_the_peers_dn_but_not_trusted_is_refused(
    start_504, crec, pki, forge, why
) -> None:
    node = await start_504("required")
    answer = await call(crec, url_504(node), put_body(NAME, b"BZh9data", forge(pki)))
    assert answer.status == 500 and answer.code == "HAND-007", answer.raw[:600]
    assert why in answer.errors[0].details
    assert stored(node) == {}
    assert node.ledger.received("CREC", NAME) is None


async def test_the_peers_own_certificate_is_accepted(start_504, crec, pki) -> None:
    node = await start_504("required")
    answer = await call(
        crec, url_504(node), put_body(NAME, b"BZh9data", signing_key(pki, "CREC-client"))
    )
    assert answer.status == 200, answer.raw[:600]
    assert stored(node) == {"inbox": [NAME]}


async def test_without_a_crl_only_the_ca_is_checked(start_504, crec, pki) -> None:
    """No ``[server] crl``: nothing to check revocation against (TLS does not either)."""
    node = await start_504("required")
    config = node.state.config
    node.state.config = dataclasses.replace(
        config, server=dataclasses.replace(config.server, crl=None)
    )
    answer = await call(crec, url_504(node), put_body(NAME, b"BZh9data", revoked(pki)))
    assert answer.status == 200, answer.raw[:600]


async def test_a_crl_of_another_ca_refuses_the_signer(start_504, crec, pki, tmp_path) -> None:
    """As OpenSSL's leaf CRL check: a CRL file with no CRL of the signer's CA refuses."""
    other = CertificateAuthority.create("another CA")
    crl_path = tmp_path / "other.crl"
    crl_path.write_bytes(other.crl().public_bytes(Encoding.PEM))
    node = await start_504("required")
    config = node.state.config
    node.state.config = dataclasses.replace(
        config, server=dataclasses.replace(config.server, crl=crl_path)
    )
    key = signing_key(pki, "CREC-client")
    answer = await call(crec, url_504(node), put_body(NAME, b"BZh9data", key))
    assert answer.status == 500 and answer.code == "HAND-007"
    assert "holds no CRL of its CA" in answer.errors[0].details
    assert stored(node) == {}


async def test_answers_to_an_off_peer_are_not_signed(start_504, crec, pki) -> None:
    """``off`` neither checks nor signs, even though we have a signing key."""
    node = await start_504("off")
    query = await call(crec, url_504(node), body_of(query_request(DataType.SERVER_TIMESTAMP)))
    assert query.status == 200 and b"Signature" not in query.raw
    put = await call(crec, url_504(node), put_body(NAME, b"BZh9data", None))
    assert put.status == 200 and b"Signature" not in put.raw
    node.publish("CREC", "F1_0086_20240103_20240104.0.bz2", b"BZh9abc")
    (entry, *_) = node.ledger.coded_entries("CREC")
    got = await call(crec, url_504(node), body_of(get_request(code=entry.code)))
    assert got.status == 200 and b"Signature" not in got.raw
    # The same server signs for a peer whose policy is not off.
    signed = await start_504("optional")
    answer = await call(crec, url_504(signed), body_of(query_request(DataType.SERVER_TIMESTAMP)))
    assert b"Signature" in answer.raw


async def test_a_replayed_signed_put_stores_one_file(start_504, crec, pki) -> None:
    """Decision (docs/protocol.md): no Timestamp/MessageID replay check; TLS client
    authentication binds the sender, and the store keeps one copy of an identical file."""
    node = await start_504("required")
    body = put_body(NAME, b"BZh9same-data", signing_key(pki, "CREC-client"))
    first = await call(crec, url_504(node), body)
    again = await call(crec, url_504(node), body)
    assert first.status == 200, first.raw[:600]
    assert again.status == 200, again.raw[:600]
    assert stored(node) == {"inbox": [NAME]}
    assert (node.folder("CREC", SpoolState.INBOX) / NAME).read_bytes() == b"BZh9same-data"
    assert node.ledger.received("CREC", NAME) is not None
