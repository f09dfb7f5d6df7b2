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

from dataclasses import dataclass, field
from typing import ClassVar

from lxml import etree

from concentrador.protocol.faults import Fault
from concentrador.protocol.soapenv import (
    ENVELOPE_PREFIX,
    SOAP11,
    SOAP11_NAMESPACE,
    SOAP12,
    SOAP12_NAMESPACE,
    SoapError,
    SoapVersion,
    build_envelope,
)
from concentrador.protocol.wire import DEFAULT_MAX_ENVELOPE
from concentrador.protocol.xmlparse import (
    child_elements,
    local_name,
    namespace_of,
    parse_xml,
    text_content,
    xml_trim,
)

# The version vocabulary and the writer live in .soapenv (so that .faults can
# use them without importing this module); they are re-exported here.
__all__ = [
    "DEFAULT_MAX_ENVELOPE",
    "ENVELOPE_PREFIX",
    "SOAP11",
    "SOAP11_NAMESPACE",
    "SOAP12",
    "SOAP12_NAMESPACE",
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
    children = child_elements(root)
    headers = [e for e in children if _is_envelope_part(e, "Header", version)]
    bodies = [e for e in children if _is_envelope_part(e, "Body", version)]
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
                value = xml_trim(text_content(child))
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
