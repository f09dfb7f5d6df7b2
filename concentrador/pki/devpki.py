"""``concentrador certs init DIR``: a complete development PKI on disk.

Layout (file names are part of the contract: the shipped config and other
people's tests refer to them):

- ``ca.pem``, ``ca.key``, ``ca.crl`` (PEM CRL), ``ca.p12`` (Java truststore);
- ``server.pem`` / ``.key`` / ``.p12``: ``localhost`` (DNS SAN) + 127.0.0.1, ::1;
- ``client.pem`` / ``.key`` / ``.p12``: our own node's client certificate;
- ``<PEER>-client.pem`` / ``.key`` / ``.p12`` for each dev peer;
- ``revoked-client.pem`` / ``.key`` / ``.p12``: listed in ``ca.crl``. It has
  the *same subject* as the first peer's client certificate (ours when there
  are no peers), like a certificate re-issued after a compromise: its DN maps
  to a configured peer, so revocation is the only reason to refuse it.

Private keys and PKCS12 bundles are written mode 0600; PKCS12 password
``changeit`` (the Java default), legacy 3DES/SHA-1 encryption so that every
Java version and OpenSSL read them.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from concentrador.config.checks import ID_PATTERN
from concentrador.config.dn import dn_from_name
from concentrador.pki.authority import DEFAULT_CRL_URL, CertificateAuthority, Issued

P12_PASSWORD = b"changeit"
DEFAULT_NODE_ID = "0086"
DEFAULT_PEERS: tuple[str, ...] = ("CREC",)


class PkiError(Exception):
    """``certs init`` cannot proceed; ``str(err)`` is one line."""


@dataclass(frozen=True)
class IssuedFile:
    """One certificate written by :func:`init_dev_pki`."""

    role: str
    """``ca``, ``server``, ``client``, ``peer <ID>`` or ``revoked``."""
    certificate_path: Path
    key_path: Path | None
    p12_path: Path | None
    subject: str
    """The subject DN as an RFC 4514 string, ready for a config ``dn``."""


@dataclass(frozen=True)
class DevPki:
    """What :func:`init_dev_pki` created."""

    directory: Path
    files: tuple[IssuedFile, ...]
    crl_path: Path

    def by_role(self, role: str) -> IssuedFile:
        for issued in self.files:
            if issued.role == role:
                return issued
        raise KeyError(role)


def client_id_for(organization: str) -> str:
    """The dev client id of an organisation: ``CREC`` -> ``crec-client-1``."""
    return f"{organization.lower()}-client-1"


def planned_files(peers: Sequence[str]) -> list[str]:
    """Every file name :func:`init_dev_pki` writes."""
    stems = ["server", "client", *(f"{peer}-client" for peer in peers), "revoked-client"]
    names = ["ca.pem", "ca.key", "ca.crl", "ca.p12"]
    for stem in stems:
        names += [f"{stem}.pem", f"{stem}.key", f"{stem}.p12"]
    return names


def init_dev_pki(
    directory: str | os.PathLike[str],
    *,
    node_id: str = DEFAULT_NODE_ID,
    peers: Sequence[str] = DEFAULT_PEERS,
    force: bool = False,
    crl_url: str = DEFAULT_CRL_URL,
    now: datetime | None = None,
) -> DevPki:
    """Create the development PKI in ``directory``; raises :class:`PkiError`.

    Refuses to overwrite any existing file unless ``force``.
    """
    target = Path(os.path.abspath(directory))
    _check_ids(node_id, peers)
    if target.exists() and not target.is_dir():
        raise PkiError(f"{target} exists and is not a directory")
    if not force:
        existing = [name for name in planned_files(peers) if (target / name).exists()]
        if existing:
            raise PkiError(
                f"{target} already holds {existing[0]}; use --force to replace the dev PKI"
            )
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    now = now or datetime.now(UTC)

    authority = CertificateAuthority.create(crl_url=crl_url, now=now)
    server = authority.issue_server(node_id, "localhost", now=now)
    own = authority.issue_client(node_id, client_id_for(node_id), now=now)
    peer_certs = [
        (peer, authority.issue_client(peer, client_id_for(peer), now=now)) for peer in peers
    ]
    revoked_org = peers[0] if peers else node_id
    revoked = authority.issue_client(revoked_org, client_id_for(revoked_org), now=now)
    crl = authority.crl([revoked.certificate], now=now)

    _write(target / "ca.pem", _pem(authority.certificate), private=False)
    _write(target / "ca.key", _key_pem(authority.key), private=True)
    crl_path = target / "ca.crl"
    _write(crl_path, crl.public_bytes(serialization.Encoding.PEM), private=False)
    truststore = pkcs12.serialize_java_truststore(
        [pkcs12.PKCS12Certificate(authority.certificate, b"concentrador-dev-ca")],
        _p12_encryption(),
    )
    _write(target / "ca.p12", truststore, private=False)
    files = [
        IssuedFile(
            "ca", target / "ca.pem", target / "ca.key", target / "ca.p12", _subject(authority)
        )
    ]
    bundles: list[tuple[str, str, Issued]] = [
        ("server", "server", server),
        ("client", "client", own),
        *((f"peer {peer}", f"{peer}-client", issued) for peer, issued in peer_certs),
        ("revoked", "revoked-client", revoked),
    ]
    for role, stem, issued in bundles:
        files.append(_write_bundle(target, stem, role, issued, authority))
    return DevPki(target, tuple(files), crl_path)


def _check_ids(node_id: str, peers: Sequence[str]) -> None:
    for value in (node_id, *peers):
        if not ID_PATTERN.match(value):
            raise PkiError(f"{value!r} is not a valid concentrator id")
    folded = [peer.casefold() for peer in peers]
    if len(set(folded)) != len(folded):
        raise PkiError("a peer id is listed twice")
    if node_id.casefold() in folded:
        raise PkiError(f"{node_id!r} is our own node id; client.pem is its certificate")


def _subject(holder: CertificateAuthority | Issued) -> str:
    return dn_from_name(holder.certificate.subject).text


def _write_bundle(
    target: Path, stem: str, role: str, issued: Issued, authority: CertificateAuthority
) -> IssuedFile:
    cert_path, key_path, p12_path = (target / f"{stem}{ext}" for ext in (".pem", ".key", ".p12"))
    _write(cert_path, _pem(issued.certificate), private=False)
    _write(key_path, _key_pem(issued.key), private=True)
    bundle = pkcs12.serialize_key_and_certificates(
        stem.encode(), issued.key, issued.certificate, [authority.certificate], _p12_encryption()
    )
    _write(p12_path, bundle, private=True)
    return IssuedFile(role, cert_path, key_path, p12_path, _subject(issued))


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    # Unencrypted PKCS8: the daemon starts unattended. The file mode
    # (0600) is the protection.
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _p12_encryption() -> serialization.KeySerializationEncryption:
    return (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(50000)
        .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
        .hmac_hash(hashes.SHA1())
        .build(P12_PASSWORD)
    )


def _write(path: Path, data: bytes, *, private: bool) -> None:
    """Write atomically (temp file + rename) with the final mode set before
    any byte is written, so a key is never readable by others, not even
    briefly or after --force replaced a world-readable file."""
    mode = 0o600 if private else 0o644
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
