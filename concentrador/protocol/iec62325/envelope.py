"""The SOAP envelope of a 504 message: plain SOAP 1.1 or 1.2, nothing in the Header.

REE's stack puts no SOAP header (no WS-Security, no ``Concentrador/id``):
the signature lives inside the 61968-100 ``Header``. Reading an envelope is
:func:`concentrador.protocol.soap.parse_envelope`'s job (hardened parser);
here is only what is 504-specific.
"""

from __future__ import annotations

from collections.abc import Sequence

from lxml import etree

from concentrador.protocol.iec62325.errors import ErrorCode, Iec62325Error
from concentrador.protocol.iec62325.wire import MSG_NAMESPACE, PLACEHOLDER, SOAP_ACTION
from concentrador.protocol.soapenv import SOAP11, SoapVersion, build_envelope
from concentrador.protocol.xmlparse import local_name, namespace_of

__all__ = [
    "MESSAGE_ROOTS",
    "build_504_envelope",
    "content_type_504",
    "message_from_body",
    "split_at_placeholder",
]

MESSAGE_ROOTS = frozenset({"RequestMessage", "ResponseMessage"})
_PLACEHOLDER_BYTES = PLACEHOLDER.encode("ascii")


def build_504_envelope(message: etree._Element, version: SoapVersion = SOAP11) -> bytes:
    """``message`` (a Request/ResponseMessage, signed or not) as the only Body
    child of a SOAP ``version`` envelope, UTF-8 with an XML declaration.

    The element is copied with its own namespace declarations, so a signature
    over it stays valid in the envelope.
    """
    return build_envelope(message, version=version)


def content_type_504(version: SoapVersion) -> str:
    """The HTTP Content-Type of a 504 request in ``version`` (the SOAP 1.2 one
    carries the action, as JAX-WS sends it; SOAP 1.1 uses the SOAPAction header)."""
    if version is SOAP11:
        return version.content_type
    return f'{version.media_type}; charset=utf-8; action="{SOAP_ACTION}"'


def message_from_body(body_elements: Sequence[etree._Element]) -> etree._Element | None:
    """The 61968-100 Request/ResponseMessage in a SOAP Body, or ``None`` if the
    Body holds none (not a 504 message: perhaps CPCSCC 2.3).

    A 504 message must be alone in the Body (HAND-006 otherwise).
    """
    found = [
        e
        for e in body_elements
        if namespace_of(e) == MSG_NAMESPACE and local_name(e) in MESSAGE_ROOTS
    ]
    if not found:
        return None
    if len(body_elements) > 1:
        raise Iec62325Error(
            ErrorCode.BAD_FORMAT,
            f"the SOAP Body must hold only the {local_name(found[0])}, "
            f"it holds {len(body_elements)} elements",
        )
    return found[0]


def split_at_placeholder(data: bytes) -> tuple[bytes, bytes]:
    """``data`` (a serialized envelope) cut around the one
    :data:`~.wire.PLACEHOLDER`: the bytes before it and after it, between
    which the streamed base64 text goes."""
    first = data.find(_PLACEHOLDER_BYTES)
    if first < 0 or data.find(_PLACEHOLDER_BYTES, first + 1) >= 0:
        raise ValueError("the envelope must contain the placeholder exactly once")
    return data[:first], data[first + len(_PLACEHOLDER_BYTES) :]
