"""Whether an XML signature's certificate may stand for a peer (504, both sides).

An enveloped XML signature carries its certificate in ``KeyInfo``, so a valid
signature alone proves nothing: anyone can sign with a certificate they made
themselves, with any subject they like. The server (checking a peer's put)
and the client (checking a peer's answers) accept a signer only when its
certificate

* was issued directly by a CA of the bundle we already trust for the peer's
  TLS certificate (``[server] client_ca`` / ``[client] ca``), the CA's own
  signature over it checked;
* is valid now (the real clock, as TLS checks it);
* allows ``clientAuth`` when it lists extended key usages (REE's kit checks a
  signer like a TLS client certificate, so we ask the same of peers);
* is not revoked by a CRL we were given (the server's ``[server] crl``, the
  file TLS already checks client certificates against; with the same rule
  as OpenSSL's leaf check there: a CRL file that covers no CRL of the
  signer's CA, or one past its next update, refuses the signer);
* has a subject DN among the peer's configured ``dn`` (matched with
  :func:`concentrador.config.dn.dn_matches`), so another peer's key is refused.

``cryptography``'s client verifier is not used because it requires a
subjectAltName, which REE-style client certificates (and our dev PKI's) lack.
One CA level only: REE's and our dev PKI issue end certificates directly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.x448 import X448PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from cryptography.x509.oid import ExtendedKeyUsageOID

from concentrador.config.dn import DistinguishedName, DNError, dn_from_name, dn_matches

__all__ = ["SignerRefused", "SignerTrust", "load_crls"]

_PEM_CRL = re.compile(rb"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----", re.DOTALL)


class SignerRefused(Exception):
    """The signer's certificate is not one we accept for this peer (one line)."""


def load_crls(path: Path) -> list[x509.CertificateRevocationList]:
    """Every CRL in ``path`` (PEM, one or more; or one DER). Raises ValueError/OSError."""
    data = path.read_bytes()
    if b"-----BEGIN" not in data:
        return [x509.load_der_x509_crl(data)]
    found = [x509.load_pem_x509_crl(block) for block in _PEM_CRL.findall(data)]
    if not found:
        raise ValueError(f"{path}: no X509 CRL in the file")
    return found


class SignerTrust:
    """The CAs signers must be issued by (directly), and the CRLs that may revoke them."""

    def __init__(
        self,
        authorities: Sequence[x509.Certificate],
        crls: Sequence[x509.CertificateRevocationList] | None = None,
        *,
        source: str = "the CA bundle",
    ) -> None:
        if not authorities:
            raise ValueError("no CA certificate to check XML signers against")
        self.authorities = list(authorities)
        # None: no CRL configured (nothing to check). A list: check, as TLS does.
        self.crls = list(crls) if crls is not None else None
        self.source = source

    @classmethod
    def from_files(cls, ca: Path, crl: Path | None = None, *, source: str) -> SignerTrust:
        """Load the CA bundle (PEM) and, if given, the CRL file. Raises ValueError/OSError."""
        authorities = x509.load_pem_x509_certificates(ca.read_bytes())
        return cls(authorities, load_crls(crl) if crl is not None else None, source=source)

    def check(
        self,
        certificate: x509.Certificate,
        peer_id: str,
        peer_dns: Sequence[DistinguishedName],
        now: datetime,
    ) -> None:
        """Raise :class:`SignerRefused` unless ``certificate`` may sign for the peer."""
        subject = certificate.subject.rfc4514_string()
        if not peer_dns:
            raise SignerRefused(
                f"signed by {subject!r}, but peer {peer_id} has no dn in the config to "
                "check it against (add the DN of its signing certificate)"
            )
        try:
            dn = dn_from_name(certificate.subject)
        except DNError as exc:
            raise SignerRefused(f"signer certificate subject is unreadable: {exc}") from None
        if not any(dn_matches(dn, own) for own in peer_dns):
            raise SignerRefused(
                f"signed by {subject!r}, which is not a dn of peer {peer_id} (another party's key?)"
            )
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise SignerRefused(
                f"signer certificate {subject!r} is not valid now (valid "
                f"{certificate.not_valid_before_utc:%Y-%m-%d} to "
                f"{certificate.not_valid_after_utc:%Y-%m-%d})"
            )
        _check_client_usage(certificate, subject)
        issuer = next((ca for ca in self.authorities if _issued_by(certificate, ca)), None)
        if issuer is None:
            raise SignerRefused(
                f"signer certificate {subject!r} (issuer {certificate.issuer.rfc4514_string()!r})"
                f" was not issued by a CA of {self.source}"
            )
        if self.crls is not None:
            self._check_not_revoked(certificate, issuer, subject, now)

    def _check_not_revoked(
        self,
        certificate: x509.Certificate,
        issuer: x509.Certificate,
        subject: str,
        now: datetime,
    ) -> None:
        assert self.crls is not None
        crls = [
            crl for crl in self.crls if crl.issuer == issuer.subject and _crl_signed_by(crl, issuer)
        ]
        if not crls:
            raise SignerRefused(
                f"signer certificate {subject!r}: the CRL file holds no CRL of its CA "
                f"{issuer.subject.rfc4514_string()!r}"
            )
        for crl in crls:
            next_update = crl.next_update_utc
            if next_update is not None and next_update < now:
                raise SignerRefused(
                    f"signer certificate {subject!r}: the CRL of its CA is past its next "
                    f"update ({next_update:%Y-%m-%d})"
                )
            if crl.get_revoked_certificate_by_serial_number(certificate.serial_number):
                raise SignerRefused(f"signer certificate {subject!r} is revoked")


def _check_client_usage(certificate: x509.Certificate, subject: str) -> None:
    try:
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return  # no restriction listed: any usage
    if ExtendedKeyUsageOID.CLIENT_AUTH not in usages:
        raise SignerRefused(f"signer certificate {subject!r} does not allow clientAuth")


def _issued_by(certificate: x509.Certificate, authority: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(authority)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _crl_signed_by(crl: x509.CertificateRevocationList, authority: x509.Certificate) -> bool:
    """Whether ``authority`` signed ``crl`` (a same-named CA with another key did not)."""
    key = authority.public_key()
    if isinstance(key, X25519PublicKey | X448PublicKey):  # key agreement only: signs nothing
        return False
    try:
        return crl.is_signature_valid(key)
    except (ValueError, TypeError):
        return False
