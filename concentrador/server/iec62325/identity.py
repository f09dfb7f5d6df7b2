"""Who sent a 504 request, and whether its signature may stand for them.

The TLS client certificate names the peer, as for v2.3
(:mod:`concentrador.server.identity`). On top of it:

- the 61968-100 header ``Source``, when present, must name that peer: its
  concentrator code, or our own node id (REE's client puts the
  configured "our code" there, and peers configured from our side often use
  ours). Anything else is refused (HAND-003), as a contradicting
  ``Concentrador/id`` is for v2.3;
- a signature, per the peer's ``signatures`` policy: ``required`` refuses
  an unsigned put, ``optional`` verifies a signature when there is one,
  ``off`` ignores them. Decision: ``required`` applies to put (the requests
  that carry a document); REE's own client never signs list, get or query,
  which TLS authenticates, so those are verified when signed and accepted
  when not;
- the signer's certificate must be the peer's, checked by
  :class:`concentrador.pki.signer.SignerTrust` (the same check the client
  applies to answers): issued by a CA of ``[server] client_ca``, valid now,
  clientAuth if it lists usages, not revoked by ``[server] crl`` when one is
  configured, and a subject DN among the peer's. A self-made certificate
  with the peer's DN, an expired one, or another peer's key is refused
  (HAND-007), even when the signature itself is valid.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from cryptography import x509
from lxml import etree

from concentrador.config.model import Config, PeerConfig
from concentrador.pki.signer import SignerRefused, SignerTrust
from concentrador.protocol.iec62325.errors import ErrorCode, Iec62325Error, SignatureError
from concentrador.protocol.iec62325.models import Header
from concentrador.protocol.iec62325.signature import verify
from concentrador.protocol.iec62325.wire import DS_NAMESPACE
from concentrador.server.iec62325.signing import SignerTrustError

__all__ = ["check_source", "is_signed", "peer_from_source", "verify_signer"]

log = logging.getLogger(__name__)

_SIGNATURE = f"{{{DS_NAMESPACE}}}Signature"
_SHOWN = 64


def _shown(text: str) -> str:
    return ascii(text[:_SHOWN]) + ("..." if len(text) > _SHOWN else "")


def check_source(config: Config, peer: PeerConfig, header: Header) -> None:
    """Refuse a header ``Source`` that names someone other than ``peer``."""
    source = header.source
    if source is None or source.strip() in ("", peer.id, config.node.id):
        return
    log.warning("peer %s sent Source %s; refused", peer.id, _shown(source))
    raise Iec62325Error(
        ErrorCode.NOT_ALLOWED,
        f"the header Source {_shown(source)} does not match the client certificate",
    )


def peer_from_source(config: Config, header: Header) -> PeerConfig:
    """``insecure_http`` (development only): the header ``Source`` alone names the peer."""
    peer = config.peer_by_id((header.source or "").strip())
    if peer is None:
        raise Iec62325Error(
            ErrorCode.UNIDENTIFIED,
            "no registered peer in the header Source (required without TLS client certificates)",
        )
    return peer


def is_signed(message: etree._Element) -> bool:
    """Whether ``message`` holds a ``ds:Signature`` anywhere (a wrapped one counts:
    the verifier then refuses it, rather than it being ignored as absent)."""
    return next(message.iter(_SIGNATURE), None) is not None


def verify_signer(
    message: etree._Element,
    peer: PeerConfig,
    trust: Callable[[], SignerTrust | None],
    content: Iterable[bytes] = (),
) -> x509.Certificate | None:
    """Apply ``peer``'s signature policy to ``message`` (blocking: hashes the content).

    ``trust`` gives the CAs and CRL (``ServerState.signer_trust``), loaded only
    when there is a signature to check. Returns the signer's certificate, or
    None when nothing was verified. Raises :class:`SignatureError`
    (HAND-007/HAND-008), or HAND-022 when the CA or CRL file cannot be read.
    """
    if peer.signatures == "off":
        return None
    if not is_signed(message):
        return None  # the caller decides whether unsigned is acceptable here
    certificate = verify(message, content=content)
    _check_signer_is(peer, certificate, trust)
    return certificate


def require_signature(message: etree._Element, peer: PeerConfig) -> None:
    """``required``: refuse an unsigned message (HAND-008)."""
    if peer.signatures == "required" and not is_signed(message):
        log.warning("peer %s sent an unsigned put; its policy requires signatures", peer.id)
        raise SignatureError(
            "the message is not signed; this server requires XML signatures from this peer",
            ErrorCode.SIGNATURE_SYNTAX,
        )


def _check_signer_is(
    peer: PeerConfig, certificate: x509.Certificate, trust: Callable[[], SignerTrust | None]
) -> None:
    try:
        authorities = trust()
    except SignerTrustError as exc:
        log.error("cannot check the signer of a put from %s: %s", peer.id, exc)
        raise Iec62325Error(ErrorCode.INTERNAL, "the signer could not be checked") from None
    if authorities is None:
        raise SignatureError("this server has no [server] client_ca to check XML signers against")
    try:
        # The real clock, as TLS checks certificates (``state.now`` may be a test's frozen one).
        authorities.check(certificate, peer.id, peer.dn, datetime.now(UTC))
    except SignerRefused as exc:
        log.warning("peer %s sent a message whose signer is refused: %s", peer.id, exc)
        raise SignatureError(f"the signer is refused: {str(exc)[:300]}") from None
