"""The development PKI: files, shapes, CRL, PKCS12, and a real TLS handshake."""

from __future__ import annotations

import shutil
import socket
import ssl
import stat
import subprocess
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from concentrador.config.dn import dn_from_der, dn_from_getpeercert, dn_from_name, parse_dn
from concentrador.pki import P12_PASSWORD, PkiError, init_dev_pki
from concentrador.pki.devpki import DevPki, planned_files

PEERS = ("CREC", "CEMI")
CREC_DN = "CN=crec-client-1,CN=CREC,OU=Concentradores,O=REE,C=es"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    return init_dev_pki(tmp_path_factory.mktemp("pki") / "certs", node_id="0086", peers=PEERS)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_every_file_is_written_with_safe_modes(pki: DevPki) -> None:
    names = sorted(p.name for p in pki.directory.iterdir())
    assert names == sorted(planned_files(PEERS))
    assert {"CREC-client.pem", "CEMI-client.key", "revoked-client.p12", "ca.crl"} <= set(names)
    for name in names:
        mode = stat.S_IMODE((pki.directory / name).stat().st_mode)
        secret = name.endswith(".key") or (name.endswith(".p12") and name != "ca.p12")
        assert mode == (0o600 if secret else 0o644), name


def test_subjects_are_ree_shaped(pki: DevPki) -> None:
    expected = {
        "client": "CN=0086-client-1,CN=0086,OU=Concentradores,O=REE,C=es",
        "peer CREC": CREC_DN,
        "peer CEMI": "CN=cemi-client-1,CN=CEMI,OU=Concentradores,O=REE,C=es",
        "server": "CN=localhost,CN=0086,OU=Concentradores,O=REE,C=es",
        "revoked": CREC_DN,
    }
    for role, dn in expected.items():
        issued = pki.by_role(role)
        assert issued.subject == dn
        assert dn_from_name(_cert(issued.certificate_path).subject) == parse_dn(dn)


def test_certificates_chain_to_the_ca_and_carry_the_crl_url(pki: DevPki) -> None:
    ca = _cert(pki.directory / "ca.pem")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for issued in pki.files[1:]:
        certificate = _cert(issued.certificate_path)
        certificate.verify_directly_issued_by(ca)
        points = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        (uri,) = points[0].full_name
        assert uri.value.startswith("http://")
        usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        wanted = "serverAuth" if issued.role == "server" else "clientAuth"
        assert [oid._name for oid in usage] == [wanted]


def test_server_certificate_names_localhost_as_dns(pki: DevPki) -> None:
    server = _cert(pki.directory / "server.pem")
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert "127.0.0.1" in {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}


def test_crl_revokes_only_the_revoked_client(pki: DevPki) -> None:
    ca = _cert(pki.directory / "ca.pem")
    crl = x509.load_pem_x509_crl(pki.crl_path.read_bytes())
    assert crl.is_signature_valid(ca.public_key())
    revoked = _cert(pki.directory / "revoked-client.pem")
    crec = _cert(pki.directory / "CREC-client.pem")
    assert [entry.serial_number for entry in crl] == [revoked.serial_number]
    assert crl.get_revoked_certificate_by_serial_number(crec.serial_number) is None
    # Same DN as CREC's valid certificate: only revocation tells them apart.
    assert revoked.subject == crec.subject and revoked.serial_number != crec.serial_number


def test_pkcs12_bundles_open_with_the_password(pki: DevPki) -> None:
    ca = _cert(pki.directory / "ca.pem")
    for stem in ("server", "client", "CREC-client", "revoked-client"):
        key, certificate, extra = pkcs12.load_key_and_certificates(
            (pki.directory / f"{stem}.p12").read_bytes(), P12_PASSWORD
        )
        assert certificate == _cert(pki.directory / f"{stem}.pem")
        assert key is not None and key.public_key() == certificate.public_key()
        assert extra == [ca]
    truststore = pkcs12.load_pkcs12((pki.directory / "ca.p12").read_bytes(), P12_PASSWORD)
    assert truststore.key is None
    assert [entry.certificate for entry in truststore.additional_certs] == [ca]


@pytest.mark.skipif(shutil.which("keytool") is None, reason="needs a JDK's keytool")
def test_java_reads_the_keystore_and_truststore(pki: DevPki) -> None:
    def keytool_list(name: str) -> str:
        return subprocess.run(
            [
                "keytool",
                "-list",
                "-storetype",
                "PKCS12",
                "-storepass",
                "changeit",
                "-keystore",
                str(pki.directory / name),
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout

    assert "PrivateKeyEntry" in keytool_list("CREC-client.p12")
    assert "trustedCertEntry" in keytool_list("ca.p12")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")
def test_openssl_spellings_of_a_subject(pki: DevPki) -> None:
    def subject(nameopt: str) -> str:
        return subprocess.run(
            [
                "openssl",
                "x509",
                "-noout",
                "-subject",
                "-nameopt",
                nameopt,
                "-in",
                str(pki.directory / "CREC-client.pem"),
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()

    assert parse_dn(subject("compat")) == parse_dn(CREC_DN)
    assert parse_dn(subject("RFC2253")) == parse_dn(CREC_DN)
    # The default "C = es, O = REE, ..." lists the root first: the config
    # loader refuses it (see test_loader) instead of silently never matching.
    assert parse_dn(subject("oneline")).starts_with_country


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    first = init_dev_pki(tmp_path, peers=())
    before = (tmp_path / "ca.pem").read_bytes()
    with pytest.raises(PkiError, match=r"already holds .*use --force"):
        init_dev_pki(tmp_path, peers=())
    assert (tmp_path / "ca.pem").read_bytes() == before
    (tmp_path / "client.key").chmod(0o644)
    second = init_dev_pki(tmp_path, peers=(), force=True)
    assert (tmp_path / "ca.pem").read_bytes() != before
    assert stat.S_IMODE((tmp_path / "client.key").stat().st_mode) == 0o600
    # Without peers, the revoked certificate shadows our own client DN.
    assert first.by_role("revoked").subject == second.by_role("client").subject


@pytest.mark.parametrize(
    ("node_id", "peers", "message"),
    [("00 86", (), "not a valid"), ("0086", ("CREC", "crec"), "twice"), ("0086", ("0086",), "own")],
)
def test_bad_ids_are_refused(tmp_path: Path, node_id: str, peers: tuple, message: str) -> None:
    with pytest.raises(PkiError, match=message):
        init_dev_pki(tmp_path, node_id=node_id, peers=peers)
    assert list(tmp_path.iterdir()) == []


def _handshake(pki: DevPki, client_stem: str) -> dict[str, object]:
    """A real mutual-TLS handshake on loopback with CRL checking, as the
    server will do it. Returns what the server saw."""
    folder = pki.directory
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(folder / "server.pem", folder / "server.key")
    server_context.load_verify_locations(folder / "ca.pem")
    server_context.load_verify_locations(folder / "ca.crl")
    server_context.verify_mode = ssl.CERT_REQUIRED
    server_context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    seen: dict[str, object] = {}
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def serve() -> None:
        try:
            connection, _ = listener.accept()
            with server_context.wrap_socket(connection, server_side=True) as tls:
                seen["subject"] = tls.getpeercert()["subject"]
                seen["der"] = tls.getpeercert(binary_form=True)
                tls.sendall(b"ok")
        except (ssl.SSLError, OSError) as exc:
            seen["error"] = exc

    thread = threading.Thread(target=serve)
    thread.start()
    client_context = ssl.create_default_context(cafile=str(folder / "ca.pem"))
    client_context.load_cert_chain(folder / f"{client_stem}.pem", folder / f"{client_stem}.key")
    try:
        with (
            socket.create_connection(listener.getsockname(), timeout=10) as raw,
            client_context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            seen["reply"] = tls.recv(2)
    except (ssl.SSLError, OSError) as exc:
        seen["client_error"] = exc
    thread.join(10)
    listener.close()
    return seen


def test_tls_handshake_identifies_the_peer_and_refuses_the_revoked(pki: DevPki) -> None:
    accepted = _handshake(pki, "CREC-client")
    assert accepted.get("reply") == b"ok", accepted
    assert dn_from_getpeercert(accepted["subject"]) == parse_dn(CREC_DN)  # type: ignore[arg-type]
    assert dn_from_der(accepted["der"]) == parse_dn(CREC_DN)  # type: ignore[arg-type]

    refused = _handshake(pki, "revoked-client")
    assert "reply" not in refused
    assert "revoked" in str(refused.get("error")), refused
