"""The one signer check both 504 sides use (``concentrador.pki.signer``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from concentrador.config.dn import dn_from_name
from concentrador.pki.authority import CertificateAuthority
from concentrador.pki.signer import SignerRefused, SignerTrust, load_crls

NOW = datetime.now(UTC)


def test_issued_valid_client_signer_with_the_peers_dn_is_accepted() -> None:
    ca = CertificateAuthority.create()
    signer = ca.issue_client("CREC", "crec-1").certificate
    SignerTrust([ca.certificate]).check(signer, "CREC", [dn_from_name(signer.subject)], NOW)


def test_a_peer_without_a_dn_cannot_be_checked() -> None:
    ca = CertificateAuthority.create()
    signer = ca.issue_client("CREC", "crec-1").certificate
    with pytest.raises(SignerRefused, match="has no dn in the config"):
        SignerTrust([ca.certificate]).check(signer, "CREC", [], NOW)


def test_crl_rules(tmp_path: Path) -> None:
    ca = CertificateAuthority.create()
    good = ca.issue_client("CREC", "crec-1").certificate
    bad = ca.issue_client("CREC", "crec-1").certificate
    dns = [dn_from_name(good.subject)]
    other = CertificateAuthority.create("other CA")
    # Several PEM CRLs in one file (as OpenSSL reads them), and a DER one.
    pem = tmp_path / "crls.pem"
    pem.write_bytes(
        other.crl().public_bytes(Encoding.PEM) + ca.crl([bad]).public_bytes(Encoding.PEM)
    )
    der = tmp_path / "crl.der"
    der.write_bytes(ca.crl([bad]).public_bytes(Encoding.DER))
    for path in (pem, der):
        trust = SignerTrust([ca.certificate], load_crls(path))
        trust.check(good, "CREC", dns, NOW)
        with pytest.raises(SignerRefused, match="is revoked"):
            trust.check(bad, "CREC", dns, NOW)
    # A CRL past its next update refuses, as OpenSSL does for TLS.
    stale = SignerTrust([ca.certificate], [ca.crl(now=NOW - timedelta(days=4000))])
    with pytest.raises(SignerRefused, match="past its next update"):
        stale.check(good, "CREC", dns, NOW)
    with pytest.raises(SignerRefused, match="holds no CRL of its CA"):
        SignerTrust([ca.certificate], load_crls(tmp_path / "crl.der")[:0]).check(
            good, "CREC", dns, NOW
        )
