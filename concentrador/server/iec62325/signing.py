"""Our XML-signature key: read from ``[signing]`` (PEM) once, not per answer.

``ServerState.signing_key()`` keeps the loaded key with the configuration
object it came from: a SIGHUP reload swaps ``state.config`` (see
``daemon/serve.py``), so the next answer loads the key of the new
configuration, and a reload that moved or renewed the files takes effect
like the TLS material does.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from concentrador.config.model import SigningConfig
from concentrador.protocol.iec62325.signature import SigningKey

__all__ = ["SigningKeyError", "load_signing_key"]


class SigningKeyError(Exception):
    """The configured signing key or certificate cannot be used."""


def load_signing_key(signing: SigningConfig) -> SigningKey:
    """The RSA key and its certificate (the first in the PEM file), checked to match."""
    try:
        key = load_pem_private_key(Path(signing.key).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise SigningKeyError(f"signing key {signing.key}: {exc}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SigningKeyError(f"signing key {signing.key}: an RSA key is needed (rsa-sha256)")
    try:
        certificate = x509.load_pem_x509_certificate(Path(signing.cert).read_bytes())
    except (OSError, ValueError) as exc:
        raise SigningKeyError(f"signing certificate {signing.cert}: {exc}") from None
    if certificate.public_key() != key.public_key():
        raise SigningKeyError(
            f"signing certificate {signing.cert} does not belong to the key {signing.key}"
        )
    return SigningKey(key, certificate)
