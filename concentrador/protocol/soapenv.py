"""SOAP versions, the SOAP error root and envelope writing.

What both :mod:`.soap` (reading envelopes, which may carry a fault) and
:mod:`.faults` (writing faults as envelopes) need; it imports neither, so
the two do not import each other's module.
"""

from __future__ import annotations

import copy
from enum import Enum

from lxml import etree

from concentrador.protocol.errors import ProtocolError
from concentrador.protocol.messages.common import CP_NAMESPACE, CP_PREFIX

__all__ = [
    "ENVELOPE_PREFIX",
    "SOAP11",
    "SOAP11_NAMESPACE",
    "SOAP12",
    "SOAP12_NAMESPACE",
    "SoapError",
    "SoapVersion",
    "build_envelope",
]

SOAP11_NAMESPACE = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_NAMESPACE = "http://www.w3.org/2003/05/soap-envelope"
ENVELOPE_PREFIX = "soapenv"


class SoapVersion(Enum):
    """A SOAP version, with its envelope namespace and HTTP Content-Type."""

    SOAP11 = "1.1"
    SOAP12 = "1.2"

    @property
    def namespace(self) -> str:
        return SOAP11_NAMESPACE if self is SoapVersion.SOAP11 else SOAP12_NAMESPACE

    @property
    def media_type(self) -> str:
        return "text/xml" if self is SoapVersion.SOAP11 else "application/soap+xml"

    @property
    def content_type(self) -> str:
        """The Content-Type of a plain (non-DIME) message in this version."""
        return f"{self.media_type}; charset=utf-8"

    @classmethod
    def from_namespace(cls, namespace: str | None) -> SoapVersion | None:
        for version in cls:
            if version.namespace == namespace:
                return version
        return None

    @classmethod
    def from_content_type(cls, content_type: str | None) -> SoapVersion | None:
        """The version a Content-Type announces (``None`` if it names neither).

        The envelope's namespace is what counts; this only helps an adapter
        pick the answer's Content-Type before parsing.
        """
        if not content_type:
            return None
        media = content_type.split(";", 1)[0].strip().lower()
        for version in cls:
            if version.media_type == media:
                return version
        return None


SOAP11 = SoapVersion.SOAP11
SOAP12 = SoapVersion.SOAP12


class SoapError(ProtocolError):
    """The message is XML but not an acceptable SOAP envelope."""


def build_envelope(
    body: etree._Element | None,
    *,
    version: SoapVersion = SOAP11,
    concentrador_id: str | None = None,
) -> bytes:
    """Serialise a SOAP envelope (UTF-8, with an XML declaration).

    ``body`` (copied, never moved out of the caller's tree) becomes the only
    Body child; ``None`` gives an empty Body. With ``concentrador_id`` the
    §2 identification header is added:
    ``<cp:Concentrador soapenv:mustUnderstand="0"><cp:id>ID</cp:id></cp:Concentrador>``
    (``"0"``, because Axis servers refuse a header they must understand).
    """
    ns = version.namespace
    root = etree.Element(f"{{{ns}}}Envelope", nsmap={ENVELOPE_PREFIX: ns})
    if concentrador_id is not None:
        header = etree.SubElement(root, f"{{{ns}}}Header")
        concentrador = etree.SubElement(
            header, f"{{{CP_NAMESPACE}}}Concentrador", nsmap={CP_PREFIX: CP_NAMESPACE}
        )
        concentrador.set(f"{{{ns}}}mustUnderstand", "0")
        id_element = etree.SubElement(concentrador, f"{{{CP_NAMESPACE}}}id")
        try:
            id_element.text = concentrador_id
        except ValueError:
            raise SoapError(
                f"concentrador id cannot be written in XML: {concentrador_id!r}"
            ) from None
    body_element = etree.SubElement(root, f"{{{ns}}}Body")
    if body is not None:
        body_element.append(copy.deepcopy(body))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
