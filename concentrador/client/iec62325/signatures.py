"""The XML signature policy of one 504 peer, as the client applies it.

``[[peers]] signatures`` says:

* ``required``: we sign every request, and refuse an answer to get, put or
  query that is unsigned or whose signature or signer we do not accept;
* ``optional``: we sign every request, and check an answer's signature when
  it has one (an unsigned answer is taken);
* ``off``: we neither sign nor check.

Decisions:

* We sign every request, not only put as REE's client does: a peer that
  requires signatures of every request (ours, configured so) accepts them,
  and a peer that does not check ignores them.
* A ``list`` answer is checked when signed but never required to be: REE's
  client does not verify list answers, so a REE-compatible server need not
  sign them; the messages the list names are each verified when fetched.

The signer must be the peer: see :mod:`concentrador.pki.signer` (the check the
server applies to a put's signer too).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from lxml import etree

from concentrador.client.cycle import utc_now
from concentrador.client.errors import PeerProtocolError
from concentrador.config.model import Config, PeerConfig
from concentrador.pki.signer import SignerRefused, SignerTrust
from concentrador.protocol.iec62325.signature import SignatureError, SigningKey, sign, verify
from concentrador.protocol.iec62325.wire import DS_NAMESPACE

__all__ = ["SignatureRefused", "Signatures", "load_signing_key"]

_SIGNATURE = f"{{{DS_NAMESPACE}}}Signature"


class SignatureRefused(PeerProtocolError):
    """An answer's signature is missing, invalid, or not by the peer."""


def load_signing_key(cert: Path, key: Path) -> SigningKey:
    """Our RSA key and certificate from PEM files."""
    private_key = load_pem_private_key(key.read_bytes(), password=None)
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise ValueError(f"{key}: XML signatures (rsa-sha256) need an RSA key")
    certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    return SigningKey(private_key, certificate)


class Signatures:
    """Signs our requests and checks the answers for one peer."""

    def __init__(
        self,
        peer: PeerConfig,
        key: SigningKey | None,
        trust: SignerTrust | None,
        *,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        if peer.signatures == "required" and trust is None:
            raise ValueError(f"peer {peer.id}: checking signatures needs a CA")
        self.peer = peer
        self.key = key
        self.trust = trust
        self.now = now

    @classmethod
    def from_config(cls, config: Config, peer: PeerConfig) -> Signatures:
        if peer.signatures == "off":
            return cls(peer, None, None)
        signing = config.signing
        if signing is None:
            raise ValueError(
                f"peer {peer.id} has signatures = {peer.signatures!r} but there is no "
                "[signing] (or [client]) certificate and key to sign with"
            )
        key = load_signing_key(signing.cert, signing.key)
        trust = (
            SignerTrust.from_files(config.client.ca, source="[client] ca")
            if config.client is not None
            else None
        )
        return cls(peer, key, trust)

    @property
    def enabled(self) -> bool:
        return self.peer.signatures != "off"

    def sign(self, message: etree._Element, digest: bytes | None = None) -> None:
        """Sign ``message`` when the policy says so (``digest``: of the streamed content)."""
        if self.enabled and self.key is not None:
            sign(message, self.key, digest)

    def check(
        self,
        operation: str,
        message: etree._Element,
        content: Iterable[bytes] = (),
        *,
        must_be_signed: bool = True,
    ) -> x509.Certificate | None:
        """Apply the policy to an answer; the signer's certificate, or None if unchecked.

        Blocking (it digests ``content``): call it in a worker thread for a big answer.
        """
        if not self.enabled:
            return None
        signed = next(message.iter(_SIGNATURE), None) is not None
        if not signed:
            if self.peer.signatures == "required" and must_be_signed:
                raise SignatureRefused(
                    self.peer.id,
                    f"{operation}: the answer is not signed and signatures = required "
                    "for this peer",
                )
            return None
        try:
            certificate = verify(message, content=content)
        except SignatureError as exc:
            raise SignatureRefused(
                self.peer.id, f"{operation}: answer signature refused: {exc.code}: {exc.details}"
            ) from None
        if self.trust is None:  # optional without a CA: nothing to check the signer against
            raise SignatureRefused(
                self.peer.id, f"{operation}: signed answer but no CA to check its signer"
            )
        try:
            self.trust.check(certificate, self.peer.id, self.peer.dn, self.now())
        except SignerRefused as exc:
            raise SignatureRefused(
                self.peer.id, f"{operation}: answer signer refused: {exc}"
            ) from None
        return certificate
