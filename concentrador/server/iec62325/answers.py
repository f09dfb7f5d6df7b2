"""Answering a 504 request: a signed ResponseMessage, or a fault.

The answers to get, put and query are signed with our key when
``[signing]`` (or ``[client]``) gives one: REE's client verifies them. Not
to a peer with ``signatures = "off"``: off neither checks nor signs
(docs/configuration.md), for a peer whose software cannot handle them.
Decision: list answers are not signed. REE's client never verifies them
(nor does ours require it), and canonicalizing and digesting a list of
10,000 messages (5 MB of XML) costs ~80 ms, as much as building it. Signing
canonicalizes the message and makes one RSA signature, so it runs on a
worker thread. Faults
are not signed (REE's client reads them before any signature check); they go
out with HTTP 500, in the SOAP version of the request.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from lxml import etree

from concentrador.config.model import PeerConfig
from concentrador.protocol import SOAP11, SoapVersion
from concentrador.protocol.iec62325.envelope import build_504_envelope
from concentrador.protocol.iec62325.errors import ErrorCode, Iec62325Error
from concentrador.protocol.iec62325.faults import fault_envelope
from concentrador.protocol.iec62325.signature import SigningKey, sign
from concentrador.server.iec62325.signing import SigningKeyError
from concentrador.server.state import ServerState

__all__ = ["fault_answer", "message_answer", "our_signing_key"]

log = logging.getLogger(__name__)


def our_signing_key(state: ServerState, peer: PeerConfig) -> SigningKey | None:
    """Our key for answering ``peer`` (None: unsigned, ``off`` or no key), or
    HAND-009 (a server-side fault) when it cannot be loaded."""
    if peer.signatures == "off":
        return None
    try:
        return state.signing_key()
    except SigningKeyError as exc:
        log.error("cannot sign IEC 62325-504 answers: %s", exc)
        raise Iec62325Error(ErrorCode.CANNOT_SIGN, "the answer could not be signed") from None


def _signed_envelope(
    message: etree._Element, key: SigningKey | None, version: SoapVersion
) -> bytes:
    if key is not None:
        sign(message, key)
    return build_504_envelope(message, version)


async def message_answer(
    state: ServerState, peer: PeerConfig, message: etree._Element, version: SoapVersion
) -> web.Response:
    """HTTP 200 with ``message`` (a ResponseMessage), signed per :func:`our_signing_key`."""
    key = our_signing_key(state, peer)
    body = await asyncio.to_thread(_signed_envelope, message, key, version)
    return web.Response(status=200, body=body, headers={"Content-Type": version.content_type})


def fault_answer(error: Iec62325Error, version: SoapVersion | None) -> web.Response:
    """HTTP 500 with the SOAP fault whose detail is ``FaultMessage/Reply`` FAILED."""
    version = version or SOAP11
    body = fault_envelope([error], version)
    return web.Response(status=500, body=body, headers={"Content-Type": version.content_type})
