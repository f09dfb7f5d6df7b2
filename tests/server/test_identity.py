"""Who is calling (CPCSCC.md §2): certificate DN first, SOAP header second, CRL.

The DN cache of ``identity.py`` caches DER -> DN parsing only: which peer a DN
belongs to always comes from the *current* config, so a reload that unmaps a
certificate refuses it at once, even on a kept-alive connection."""

from __future__ import annotations

from dataclasses import replace

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from concentrador.config.dn import dn_from_der, parse_dn
from concentrador.pki import CertificateAuthority, DevPki
from concentrador.protocol.messages import InformacionDisponible, PeticionFechaHora
from concentrador.server import identity
from concentrador.server.identity import AuthenticationError, peer_from_certificate
from tests.server.conftest import Node, load_der, make_config, soap_call


async def test_known_dn_without_header_is_accepted(node: Node, crec) -> None:
    answer = await soap_call(crec, node.url, PeticionFechaHora().to_xml(), concentrador_id=None)
    assert answer.status == 200
    assert answer.fault_code is None


async def test_unknown_dn_is_client_autenticacion(node: Node, open_client) -> None:
    # client.pem is our own node's client certificate: signed by the CA, mapped to no peer.
    stranger = open_client("client")
    answer = await soap_call(
        stranger, node.url, PeticionFechaHora().to_xml(), concentrador_id="CREC"
    )
    assert answer.status == 500
    assert answer.fault_code == "Client.Autenticacion"
    assert "not registered" in answer.envelope.fault.string


async def test_header_contradicting_dn_is_refused(node: Node, crec) -> None:
    answer = await soap_call(crec, node.url, PeticionFechaHora().to_xml(), concentrador_id="OTRO")
    assert answer.status == 500
    assert answer.fault_code == "Client.Autenticacion"


async def test_header_mismatch_allowed_when_configured(start_server, crec) -> None:
    node = await start_server(CREC={"header_must_match": False})
    answer = await soap_call(crec, node.url, PeticionFechaHora().to_xml(), concentrador_id="OTRO")
    assert answer.status == 200


async def test_dn_decides_whose_files_are_listed(node: Node, open_client) -> None:
    node.publish("OTRO", "F1_0001_20240101_20240102.0.bz2", b"o")
    otro = open_client("OTRO-client")
    answer = await soap_call(
        otro, node.url, InformacionDisponible(("CUR",)).to_xml(), concentrador_id="OTRO"
    )
    assert b"F1_0001_20240101_20240102.0.bz2" in answer.raw


async def test_revoked_certificate_fails_the_handshake(node: Node, open_client) -> None:
    revoked = open_client("revoked-client")  # same DN as CREC's, but in ca.crl
    with pytest.raises(aiohttp.ClientError):
        await soap_call(revoked, node.url, PeticionFechaHora().to_xml())


async def test_no_client_certificate_fails_the_handshake(node: Node, open_client) -> None:
    anonymous = open_client(None)
    with pytest.raises(aiohttp.ClientError):
        await soap_call(anonymous, node.url, PeticionFechaHora().to_xml())


def _authority(pki: DevPki) -> CertificateAuthority:
    directory = pki.directory
    certificate = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
    key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), None)
    return CertificateAuthority(certificate, key)  # type: ignore[arg-type]


async def test_crl_reload_refuses_a_newly_revoked_certificate(
    start_server, open_client, pki: DevPki, tmp_path
) -> None:
    node = await start_server()
    assert node.tls is not None
    before = await soap_call(
        open_client("OTRO-client"), node.url, PeticionFechaHora().to_xml(), concentrador_id="OTRO"
    )
    assert before.status == 200

    directory = pki.directory
    revoked = [
        x509.load_pem_x509_certificate((directory / f"{stem}.pem").read_bytes())
        for stem in ("revoked-client", "OTRO-client")
    ]
    new_crl = tmp_path / "new.crl"
    crl = _authority(pki).crl(revoked)
    new_crl.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    node.tls.reload(replace(node.tls._files, crl=new_crl))

    with pytest.raises(aiohttp.ClientError):
        await soap_call(
            open_client("OTRO-client"),
            node.url,
            PeticionFechaHora().to_xml(),
            concentrador_id="OTRO",
        )
    # Others are unaffected, and no restart was needed.
    still = await soap_call(open_client("CREC-client"), node.url, PeticionFechaHora().to_xml())
    assert still.status == 200


async def test_insecure_http_identifies_by_header(start_server, open_client) -> None:
    node = await start_server(insecure=True)
    plain = open_client("plain")
    ok = await soap_call(plain, node.url, PeticionFechaHora().to_xml(), concentrador_id="OTRO")
    assert ok.status == 200
    missing = await soap_call(plain, node.url, PeticionFechaHora().to_xml(), concentrador_id=None)
    assert missing.fault_code == "Client.Autenticacion"
    unknown = await soap_call(
        plain, node.url, PeticionFechaHora().to_xml(), concentrador_id="NADIE"
    )
    assert unknown.fault_code == "Client.Autenticacion"
    assert unknown.status == 500


STRANGER_DN = parse_dn("CN=someone-else,OU=Concentradores,O=REE,C=es")


def test_cached_der_is_mapped_through_each_new_config(pki: DevPki, tmp_path) -> None:
    der = load_der(pki.directory / "CREC-client.pem")
    crec_dn = dn_from_der(der)
    config = make_config(pki, tmp_path)
    assert peer_from_certificate(config, der).id == "CREC"
    hits = identity._subject_dn.cache_info().hits

    # Reloaded: CREC now has another certificate; ours maps to nobody.
    unmapped = make_config(pki, tmp_path, CREC={"dn": (STRANGER_DN,)})
    with pytest.raises(AuthenticationError, match="not registered"):
        peer_from_certificate(unmapped, der)
    # Reloaded again: the same certificate now belongs to OTRO.
    moved = make_config(pki, tmp_path, CREC={"dn": (STRANGER_DN,)}, OTRO={"dn": (crec_dn,)})
    assert peer_from_certificate(moved, der).id == "OTRO"
    assert peer_from_certificate(config, der).id == "CREC"

    # Those answers came from the cached DN, not from parsing afresh.
    assert identity._subject_dn.cache_info().hits == hits + 3


def test_unreadable_certificate_is_refused_every_time(pki: DevPki, tmp_path) -> None:
    config = make_config(pki, tmp_path)
    for _ in range(2):  # a failed parse is not cached as a DN
        with pytest.raises(AuthenticationError, match="cannot be read"):
            peer_from_certificate(config, b"\x30\x03not a certificate")


async def test_reload_that_unmaps_a_dn_refuses_the_kept_alive_peer(
    node: Node, crec, pki: DevPki
) -> None:
    call = PeticionFechaHora().to_xml()
    assert (await soap_call(crec, node.url, call)).status == 200
    before = node.state.config
    spool_root = before.node.spool

    node.state.config = make_config(pki, spool_root, CREC={"dn": (STRANGER_DN,)})
    refused = await soap_call(crec, node.url, call)  # same session, same certificate
    assert refused.status == 500
    assert refused.fault_code == "Client.Autenticacion"

    node.state.config = replace(before)
    assert (await soap_call(crec, node.url, call)).status == 200
