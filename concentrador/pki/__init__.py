"""Development PKI: a REE-shaped CA, server and client certificates, CRL."""

from concentrador.pki.authority import CertificateAuthority, Issued, ree_name
from concentrador.pki.devpki import (
    P12_PASSWORD,
    DevPki,
    IssuedFile,
    PkiError,
    client_id_for,
    init_dev_pki,
)

__all__ = [
    "P12_PASSWORD",
    "CertificateAuthority",
    "DevPki",
    "Issued",
    "IssuedFile",
    "PkiError",
    "client_id_for",
    "init_dev_pki",
    "ree_name",
]
