"""Who is calling: the peer behind a request (CPCSCC.md §2).

Two steps, because the two pieces of evidence arrive at different times:

1. :func:`peer_from_certificate`, before the body is read: the TLS client
   certificate's subject DN is authoritative. Refusing an unknown DN here
   means a stranger never gets us to parse (or store) anything.
2. :func:`check_header_id`, once the envelope is parsed: the SOAP header's
   ``Concentrador/id`` may be absent, but if present it must not contradict
   the DN's peer (when the peer is configured with ``header_must_match``).

With ``insecure_http`` (development only) there is no certificate, so the
header alone names the peer: :func:`peer_from_header`.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

from concentrador.config.dn import DistinguishedName, DNError, dn_from_der

if TYPE_CHECKING:
    from aiohttp import web

    from concentrador.config.model import Config, PeerConfig

__all__ = [
    "AuthenticationError",
    "check_header_id",
    "peer_certificate_der",
    "peer_from_certificate",
    "peer_from_header",
]

log = logging.getLogger(__name__)

_SHOWN = 64


class AuthenticationError(Exception):
    """The caller is not a registered peer; answered with ``Client.Autenticacion``.

    ``str()`` is the one-line faultstring. It names what was wrong, never
    which peers exist (a stranger learns nothing about our configuration).
    """


def _shown(text: str) -> str:
    return ascii(text[:_SHOWN]) + ("..." if len(text) > _SHOWN else "")


def peer_certificate_der(request: web.BaseRequest) -> bytes | None:
    """The DER of the verified TLS client certificate, or None without TLS."""
    transport = request.transport
    if transport is None:
        return None
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return der or None


@functools.lru_cache(maxsize=64)
def _subject_dn(der: bytes) -> DistinguishedName:
    """``dn_from_der``, remembered: a kept-alive peer presents the same
    certificate on every request, and parsing it was a tenth of the CPU of a
    small request. Keyed by the whole DER, so a different certificate is
    parsed afresh; bounded, so strangers cannot grow it. Only the DN is
    cached, never the peer it maps to: a reloaded config is always consulted.
    """
    return dn_from_der(der)


def peer_from_certificate(config: Config, der: bytes | None) -> PeerConfig:
    """The configured peer owning the certificate; raises :class:`AuthenticationError`."""
    if der is None:
        # CERT_REQUIRED makes this unreachable over TLS; it guards a
        # misconfigured listener rather than trusting an anonymous caller.
        raise AuthenticationError("no client certificate was presented")
    try:
        dn = _subject_dn(der)
    except DNError as exc:
        raise AuthenticationError(f"the client certificate cannot be read: {exc}") from None
    peer = config.peer_by_dn(dn)
    if peer is None:
        log.warning("refused a client certificate that maps to no peer: %s", dn)
        raise AuthenticationError(
            f"the certificate subject {_shown(str(dn))} is not registered for any concentrator"
        )
    return peer


def check_header_id(peer: PeerConfig, header_id: str | None) -> None:
    """Refuse a ``Concentrador/id`` that contradicts the certificate's peer.

    No header is fine (§2 Decision: receivers may ignore it). The comparison
    is exact: concentrator codes are assigned by the system operator.
    """
    if header_id is None or header_id == peer.id or not peer.header_must_match:
        return
    log.warning("peer %s sent Concentrador/id %s; refused", peer.id, _shown(header_id))
    raise AuthenticationError(
        f"the Concentrador id {_shown(header_id)} in the SOAP header does not match "
        "the client certificate"
    )


def peer_from_header(config: Config, header_id: str | None) -> PeerConfig:
    """``insecure_http`` mode: the header id alone names the peer."""
    if header_id is None:
        raise AuthenticationError(
            "no Concentrador id in the SOAP header (required without TLS client certificates)"
        )
    peer = config.peer_by_id(header_id)
    if peer is None:
        raise AuthenticationError(f"the Concentrador id {_shown(header_id)} is not registered")
    return peer
