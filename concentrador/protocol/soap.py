"""SOAP 1.1/1.2 envelopes and the ``Concentrador/id`` header (CPCSCC.md §1, §2, §10).

We speak SOAP 1.1; a server also reads SOAP 1.2 and answers in the version it
was asked in (§1 Decision). Reading is liberal about what real stacks do
(§10): the ``cp`` namespace may be bound to different prefixes in the header
and the body, the header may carry ``soapenv:actor``, the body may hold a
wrapper in a default namespace or bare parameters. Reading is strict about
structure that would make the message ambiguous: the root must be an
Envelope, there must be exactly one Body, and a Body holds at most one Fault
and nothing beside it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, ClassVar

from lxml import etree

from concentrador.protocol.errors import ProtocolError
from concentrador.protocol.messages.common import CP_NAMESPACE, CP_PREFIX
from concentrador.protocol.xmlparse import child_elements, local_name, namespace_of, parse_xml

if TYPE_CHECKING:
    from concentrador.protocol.faults import Fault

__all__ = [
    "DEFAULT_MAX_ENVELOPE",
    "SOAP11",
    "SOAP12",
    "Envelope",
    "FaultWithContentError",
    "MissingBodyError",
    "MultipleFaultsError",
    "NotSoapError",
    "SoapError",
    "SoapVersion",
    "SoapVersionMismatchError",
    "build_envelope",
    "parse_envelope",
]

DEFAULT_MAX_ENVELOPE = 1024 * 1024
"""Same default as the DIME envelope record limit (1 MiB)."""

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


class NotSoapError(SoapError):
    """The root element is not a SOAP Envelope."""


class SoapVersionMismatchError(SoapError):
    """An Envelope in a namespace that is neither SOAP 1.1 nor SOAP 1.2."""

    fault_code: ClassVar[str] = "VersionMismatch"


class MissingBodyError(SoapError):
    """The Envelope has no Body."""


class MultipleFaultsError(SoapError):
    """The Body holds more than one Fault (SOAP allows at most one)."""


class FaultWithContentError(SoapError):
    """The Body holds a Fault next to other elements."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """A parsed SOAP envelope.

    ``body_elements`` are the Body's element children (comments and text
    dropped). ``fault`` is set when the Body is a Fault (it is then the only
    body element). ``concentrador_id`` is the header's ``Concentrador/id``
    (``None`` when absent or empty). ``must_understand`` lists, in Clark
    notation, header blocks marked ``mustUnderstand`` that we do not know, so
    a server can answer the MustUnderstand fault.
    """

    version: SoapVersion
    body: etree._Element
    body_elements: list[etree._Element]
    concentrador_id: str | None = None
    fault: Fault | None = None
    header_elements: list[etree._Element] = field(default_factory=list)
    must_understand: list[str] = field(default_factory=list)

    @property
    def first_body_element(self) -> etree._Element | None:
        return self.body_elements[0] if self.body_elements else None


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


def parse_envelope(data: bytes, *, max_size: int = DEFAULT_MAX_ENVELOPE) -> Envelope:
    """Parse a peer's SOAP envelope (hardened, see :mod:`.xmlparse`).

    Raises an :class:`~concentrador.protocol.xmlparse.XmlError` for bytes that
    are not acceptable XML and a :class:`SoapError` for XML that is not an
    acceptable envelope.
    """
    root = parse_xml(data, max_size=max_size)
    if local_name(root) != "Envelope":
        raise NotSoapError(f"not a SOAP message: the root element is <{local_name(root)}>")
    version = SoapVersion.from_namespace(namespace_of(root))
    if version is None:
        raise SoapVersionMismatchError(
            f"SOAP Envelope in unsupported namespace {namespace_of(root)!r}; "
            f"use {SOAP11_NAMESPACE} (SOAP 1.1) or {SOAP12_NAMESPACE} (SOAP 1.2)"
        )
    header, body = _header_and_body(root, version)
    body_elements = child_elements(body)
    fault = _read_fault(body_elements, version)
    header_elements = child_elements(header) if header is not None else []
    return Envelope(
        version=version,
        body=body,
        body_elements=body_elements,
        concentrador_id=_concentrador_id(header_elements),
        fault=fault,
        header_elements=header_elements,
        must_understand=_not_understood(header_elements, version),
    )


def _is_envelope_part(element: etree._Element, name: str, version: SoapVersion) -> bool:
    # Liberal: an unqualified Header/Body inside a qualified Envelope is taken
    # as the envelope's own; an element of another namespace is not.
    return local_name(element) == name and namespace_of(element) in (version.namespace, None)


def _header_and_body(
    root: etree._Element, version: SoapVersion
) -> tuple[etree._Element | None, etree._Element]:
    headers = [e for e in child_elements(root) if _is_envelope_part(e, "Header", version)]
    bodies = [e for e in child_elements(root) if _is_envelope_part(e, "Body", version)]
    if len(headers) > 1:
        raise SoapError(f"SOAP Envelope has {len(headers)} Header elements; at most one is allowed")
    if not bodies:
        raise MissingBodyError("SOAP Envelope has no Body")
    if len(bodies) > 1:
        raise SoapError(f"SOAP Envelope has {len(bodies)} Body elements; exactly one is allowed")
    return (headers[0] if headers else None), bodies[0]


def _read_fault(body_elements: list[etree._Element], version: SoapVersion) -> Fault | None:
    faults = [e for e in body_elements if _is_envelope_part(e, "Fault", version)]
    if not faults:
        return None
    if len(faults) > 1:
        raise MultipleFaultsError(f"SOAP Body has {len(faults)} Fault elements; at most one")
    if len(body_elements) > 1:
        raise FaultWithContentError("SOAP Body has a Fault beside other elements")
    # Imported here because faults.py builds envelopes with this module.
    from concentrador.protocol.faults import Fault

    return Fault.from_element(faults[0])


def _concentrador_id(header_elements: list[etree._Element]) -> str | None:
    """The ``Concentrador/id`` header value, matched by local name.

    Several Concentrador blocks are tolerated only when they agree: the id
    is checked against the peer's certificate, so an ambiguous one is refused.
    """
    found: set[str] = set()
    for block in header_elements:
        if local_name(block).lower() != "concentrador":
            continue
        for child in child_elements(block):
            if local_name(child).lower() == "id":
                value = "".join(child.itertext()).strip()
                if value:
                    found.add(value)
    if len(found) > 1:
        raise SoapError("SOAP Header carries several different Concentrador ids")
    return found.pop() if found else None


def _not_understood(header_elements: list[etree._Element], version: SoapVersion) -> list[str]:
    flagged: list[str] = []
    for block in header_elements:
        if local_name(block).lower() == "concentrador":
            continue
        value = block.get(f"{{{version.namespace}}}mustUnderstand", "").strip().lower()
        if value in ("1", "true"):
            flagged.append(str(block.tag))
    return flagged
