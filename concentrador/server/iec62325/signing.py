"""Our XML-signature key, and the CAs a peer's signer is checked against: read
once, not per request.

``ServerState.signing_key()`` keeps the loaded key with the configuration
object it came from: a SIGHUP reload swaps ``state.config`` (see
``daemon/serve.py``), so the next answer loads the key of the new
configuration, and a reload that moved or renewed the files takes effect
like the TLS material does.

``ServerState.signer_trust()`` keeps ``[server] client_ca`` and ``[server] crl``
loaded (:class:`concentrador.pki.signer.SignerTrust`, the check the client
applies to answers too), keyed by the files' paths, sizes and modification
times: a renewed CRL takes effect at the next put, as it does for TLS
(``server/tls.py`` reloads the CRL when its file changes).
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from concentrador.config.model import ServerConfig, SigningConfig
from concentrador.pki.signer import SignerTrust
from concentrador.protocol.iec62325.signature import SigningKey

__all__ = [
    "SignerTrustError",
    "SigningKeyError",
    "load_signer_trust",
    "load_signing_key",
    "signer_trust_stamp",
]

TrustStamp = tuple[tuple[str, int, int], ...]


class SigningKeyError(Exception):
    """The configured signing key or certificate cannot be used."""


class SignerTrustError(Exception):
    """``[server] client_ca`` or ``[server] crl`` cannot be read to check a signer."""


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


def _stamp(path: Path) -> tuple[str, int, int]:
    try:
        info = path.stat()
    except OSError:
        return (str(path), -1, -1)
    return (str(path), info.st_size, info.st_mtime_ns)


def signer_trust_stamp(server: ServerConfig) -> TrustStamp:
    """What identifies the loaded trust: the files' paths, sizes and mtimes."""
    return tuple(_stamp(path) for path in (server.client_ca, server.crl) if path is not None)


def load_signer_trust(server: ServerConfig) -> SignerTrust | None:
    """``[server] client_ca`` (+ ``crl``) as a :class:`SignerTrust`; None without a CA
    (``insecure_http``, development: a signed put is then refused, not trusted)."""
    if server.client_ca is None:
        return None
    try:
        return SignerTrust.from_files(server.client_ca, server.crl, source="[server] client_ca")
    except (OSError, ValueError) as exc:
        raise SignerTrustError(f"[server] client_ca / crl: {exc}") from None
