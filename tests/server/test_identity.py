"""Who is calling (CPCSCC.md §2): certificate DN first, SOAP header second, CRL."""

from __future__ import annotations

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from concentrador.pki import CertificateAuthority, DevPki
from concentrador.protocol.messages import InformacionDisponible, PeticionFechaHora
from tests.server.conftest import Node, soap_call


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
    from dataclasses import replace

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
