"""A small certificate authority for development and tests.

It issues certificates shaped like the ones REE's CA issues to metering
concentrators (CPCSCC.md §2): subject ``C=es, O=REE, OU=Concentradores,
CN=<organisation>, CN=<client or host name>``, with a CRL distribution
point. Tests use it directly to mint extra certificates (another CA, an
unknown DN, a revoked one); ``concentrador certs init`` uses it through
:mod:`concentrador.pki.devpki`.

Keys are RSA 2048: Java 17 / Apache Axis, OpenSSL and Python all take them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

REE_COUNTRY = "es"
REE_ORGANIZATION = "REE"
CONCENTRATOR_UNIT = "Concentradores"
DEFAULT_CRL_URL = "http://localhost/concentrador-dev-ca.crl"

CA_VALIDITY = timedelta(days=3650)
LEAF_VALIDITY = timedelta(days=825)
CRL_VALIDITY = timedelta(days=3650)
# Backdating absorbs small clock differences between test machines.
BACKDATE = timedelta(days=1)


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ree_name(organization: str, common_name: str) -> x509.Name:
    """``C=es, O=REE, OU=Concentradores, CN=<organization>, CN=<common_name>``
    in certificate order: the first CN is the owning organisation, the
    second the end user (client id or server host name)."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, REE_COUNTRY),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, REE_ORGANIZATION),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, CONCENTRATOR_UNIT),
            x509.NameAttribute(NameOID.COMMON_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key."""

    certificate: x509.Certificate
    key: rsa.RSAPrivateKey


@dataclass(frozen=True)
class CertificateAuthority:
    """A self-signed CA that issues server and client certificates and CRLs."""

    certificate: x509.Certificate
    key: rsa.RSAPrivateKey
    crl_url: str = DEFAULT_CRL_URL

    @classmethod
    def create(
        cls,
        common_name: str = "concentrador development CA",
        *,
        crl_url: str = DEFAULT_CRL_URL,
        now: datetime | None = None,
    ) -> CertificateAuthority:
        now = now or datetime.now(UTC)
        key = new_key()
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, REE_COUNTRY),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, REE_ORGANIZATION),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, CONCENTRATOR_UNIT),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            ]
        )
        public = key.public_key()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(certificate, key, crl_url)

    def issue_server(
        self,
        organization: str,
        hostname: str = "localhost",
        *,
        ip_addresses: Iterable[str] = ("127.0.0.1", "::1"),
        now: datetime | None = None,
    ) -> Issued:
        """A TLS server certificate. The host name goes in a DNS SAN too:
        Debian's Axis checks DNS names only, never IP SANs."""
        names: list[x509.GeneralName] = [x509.DNSName(hostname)]
        names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
        return self._issue(
            ree_name(organization, hostname),
            ExtendedKeyUsageOID.SERVER_AUTH,
            x509.SubjectAlternativeName(names),
            now,
        )

    def issue_client(
        self, organization: str, client_id: str, *, now: datetime | None = None
    ) -> Issued:
        """A TLS client certificate with a REE-shaped subject."""
        return self._issue(
            ree_name(organization, client_id), ExtendedKeyUsageOID.CLIENT_AUTH, None, now
        )

    def crl(
        self, revoked: Iterable[x509.Certificate] = (), *, now: datetime | None = None
    ) -> x509.CertificateRevocationList:
        """A CRL revoking ``revoked`` (reason: key compromise)."""
        now = now or datetime.now(UTC)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(now - BACKDATE)
            # Long-lived: an expired CRL makes OpenSSL refuse every client.
            .next_update(now + CRL_VALIDITY)
            .add_extension(x509.CRLNumber(1), critical=False)
            .add_extension(self._authority_key_id(), critical=False)
        )
        for certificate in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(certificate.serial_number)
                .revocation_date(now - BACKDATE)
                .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
                .build()
            )
        return builder.sign(self.key, hashes.SHA256())

    def _authority_key_id(self) -> x509.AuthorityKeyIdentifier:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key())

    def _issue(
        self,
        subject: x509.Name,
        usage: x509.ObjectIdentifier,
        san: x509.SubjectAlternativeName | None,
        now: datetime | None,
    ) -> Issued:
        now = now or datetime.now(UTC)
        key = new_key()
        public = key.public_key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(min(now + LEAF_VALIDITY, self.certificate.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(self._authority_key_id(), critical=False)
            .add_extension(
                x509.CRLDistributionPoints(
                    [
                        x509.DistributionPoint(
                            full_name=[x509.UniformResourceIdentifier(self.crl_url)],
                            relative_name=None,
                            reasons=None,
                            crl_issuer=None,
                        )
                    ]
                ),
                critical=False,
            )
        )
        if san is not None:
            builder = builder.add_extension(san, critical=False)
        return Issued(builder.sign(self.key, hashes.SHA256()), key)


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=not cert_sign,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )
