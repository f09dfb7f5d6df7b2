"""SOAP faults: the CPCSCC codes of §3, unknown codes, SOAP 1.1 and 1.2 shapes.

A :class:`Fault`'s ``code`` is the *local part* of the SOAP 1.1 faultcode,
e.g. ``"Client.Fichero"``; readers compare local parts (§3), so whatever
prefix a peer used is dropped. Unknown codes are kept exactly as they came;
``base_class`` / ``is_client`` / ``is_server`` classify them (§3: a client
must understand codes it does not know).

Writing, SOAP 1.1: ``<faultcode>soapenv:Client.Fichero</faultcode>``, the
code qualified in the envelope namespace, as §3 shows.

Writing, SOAP 1.2 (project mapping, read back by the same rules):

- ``Code/Value`` is ``env:Sender`` for ``Client*`` codes, ``env:Receiver``
  for ``Server*`` and any other unknown code, and the code itself for the
  SOAP-defined ``VersionMismatch``, ``MustUnderstand`` and
  ``DataEncodingUnknown``;
- unless the code is exactly one of those bases (``Client``, ``Server``,
  ``VersionMismatch``...), ``Code/Subcode/Value`` carries the whole code in
  the ``cp`` namespace: ``cp:Client.Fichero``.

Reading SOAP 1.2: a ``cp``-namespace subcode *is* the code; a subcode in any
other namespace is appended to the mapped base (``Client.<local>``); with no
subcode the code is the mapped base (``Sender`` → ``Client``, ``Receiver``
→ ``Server``). A Fault is read by its shape (``faultcode`` or ``Code``)
rather than by the envelope version, since mixed-up stacks exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from lxml import etree

from concentrador.protocol.errors import ProtocolError
from concentrador.protocol.messages.common import CP_NAMESPACE, CP_PREFIX
from concentrador.protocol.soapenv import (
    ENVELOPE_PREFIX,
    SOAP11,
    SoapError,
    SoapVersion,
    build_envelope,
)
from concentrador.protocol.xmlparse import child_elements, local_name, text_content

__all__ = [
    "Fault",
    "FaultCode",
    "FaultReceivedError",
    "MalformedFaultError",
    "fault_for_error",
]

# Hostile peers may send megabytes of faultstring; callers log these.
MAX_FAULT_TEXT = 4096

_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
# A faultcode must be a QName local part (an NCName) to be written.
_NCNAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


class FaultCode(StrEnum):
    """Fault codes this project writes or recognises (§3 and SOAP itself)."""

    AUTENTICACION = "Client.Autenticacion"
    FICHERO = "Client.Fichero"
    TOD = "Client.TOD"
    GENERICO = "Server.Generico"
    # Plain SOAP codes, for errors that §3 has no specific code for.
    CLIENT = "Client"
    SERVER = "Server"
    VERSION_MISMATCH = "VersionMismatch"
    MUST_UNDERSTAND = "MustUnderstand"


# SOAP 1.2 top-level Code values and the 1.1 base class each maps to.
_SOAP12_TO_BASE = {
    "Sender": "Client",
    "Receiver": "Server",
    "VersionMismatch": "VersionMismatch",
    "MustUnderstand": "MustUnderstand",
    "DataEncodingUnknown": "DataEncodingUnknown",
}
_BASE_TO_SOAP12 = {base: value for value, base in _SOAP12_TO_BASE.items()}


class MalformedFaultError(SoapError):
    """A Fault element without a usable fault code."""


class FaultReceivedError(ProtocolError):
    """A peer answered with a SOAP fault; ``.fault`` holds it."""

    def __init__(self, fault: Fault) -> None:
        super().__init__(f"peer answered fault {fault.code}: {fault.string}")
        self.fault = fault


def _local_part(qname_text: str) -> str:
    return qname_text.strip().rsplit(":", 1)[-1]


def _clip(text: str) -> str:
    return text if len(text) <= MAX_FAULT_TEXT else text[:MAX_FAULT_TEXT] + "..."


@dataclass(frozen=True, slots=True)
class Fault:
    """A SOAP fault. ``detail`` is present when the fault is about the Body."""

    code: str
    string: str
    detail: str | None = None

    def __post_init__(self) -> None:
        # Accept FaultCode members and prefixed codes; keep a plain local part.
        object.__setattr__(self, "code", _local_part(str(self.code)))

    @property
    def base_class(self) -> str:
        """``"Client"``, ``"Server"``, or the first dotted part of another code."""
        return self.code.split(".", 1)[0]

    @property
    def is_client(self) -> bool:
        """The requester is at fault (do not retry the same request blindly)."""
        return self.base_class == "Client"

    @property
    def is_server(self) -> bool:
        return self.base_class == "Server"

    @property
    def known(self) -> FaultCode | None:
        """The code as a :class:`FaultCode`, or ``None`` when unknown."""
        try:
            return FaultCode(self.code)
        except ValueError:
            return None

    def to_element(self, version: SoapVersion = SOAP11) -> etree._Element:
        """The ``Fault`` element, to be the only child of a Body."""
        if not _NCNAME_RE.fullmatch(self.code):
            raise SoapError(f"fault code {self.code!r} is not a valid XML name")
        ns = version.namespace
        fault = etree.Element(
            f"{{{ns}}}Fault", nsmap={ENVELOPE_PREFIX: ns, CP_PREFIX: CP_NAMESPACE}
        )
        try:
            if version is SOAP11:
                self._fill_soap11(fault)
            else:
                self._fill_soap12(fault, ns)
        except ValueError:
            # lxml refuses control characters, which XML cannot carry.
            raise SoapError("fault text contains characters XML cannot carry") from None
        return fault

    def _fill_soap11(self, fault: etree._Element) -> None:
        # SOAP 1.1 fault children are unqualified.
        etree.SubElement(fault, "faultcode").text = f"{ENVELOPE_PREFIX}:{self.code}"
        etree.SubElement(fault, "faultstring").text = self.string
        if self.detail is not None:
            detail = etree.SubElement(fault, "detail")
            etree.SubElement(detail, f"{{{CP_NAMESPACE}}}mensaje").text = self.detail

    def _fill_soap12(self, fault: etree._Element, ns: str) -> None:
        code = etree.SubElement(fault, f"{{{ns}}}Code")
        value = _BASE_TO_SOAP12.get(self.base_class, "Receiver")
        etree.SubElement(code, f"{{{ns}}}Value").text = f"{ENVELOPE_PREFIX}:{value}"
        if self.code not in _BASE_TO_SOAP12:
            subcode = etree.SubElement(code, f"{{{ns}}}Subcode")
            etree.SubElement(subcode, f"{{{ns}}}Value").text = f"{CP_PREFIX}:{self.code}"
        reason = etree.SubElement(fault, f"{{{ns}}}Reason")
        text = etree.SubElement(reason, f"{{{ns}}}Text")
        text.set(_XML_LANG, "en")
        text.text = self.string
        if self.detail is not None:
            detail = etree.SubElement(fault, f"{{{ns}}}Detail")
            etree.SubElement(detail, f"{{{CP_NAMESPACE}}}mensaje").text = self.detail

    def to_envelope(self, version: SoapVersion = SOAP11) -> bytes:
        """A complete envelope whose Body is this fault."""
        return build_envelope(self.to_element(version), version=version)

    @classmethod
    def from_element(cls, element: etree._Element) -> Fault:
        """Read a ``Fault`` element liberally (either SOAP shape, any prefixes).

        The shape (``faultcode`` or ``Code``) decides how, not the envelope
        version: some stacks mix them up.
        """
        children = {local_name(child).lower(): child for child in reversed(child_elements(element))}
        if "faultcode" in children:
            code = _local_part(_text(children["faultcode"]))
            string = _text(children.get("faultstring"))
            detail_element = children.get("detail")
        elif "code" in children:
            code = _soap12_code(children["code"])
            string = _soap12_reason(children.get("reason"))
            detail_element = children.get("detail")
        else:
            raise MalformedFaultError("SOAP Fault has no faultcode")
        if not code:
            raise MalformedFaultError("SOAP Fault has an empty faultcode")
        detail = None
        if detail_element is not None:
            pieces = (t.strip() for t in detail_element.itertext() if isinstance(t, str))
            detail = _clip(" ".join(t for t in pieces if t))
        return cls(_clip(code), _clip(string), detail)


def _text(element: etree._Element | None) -> str:
    return "" if element is None else text_content(element).strip()


def _first_child(element: etree._Element, name: str) -> etree._Element | None:
    for child in child_elements(element):
        if local_name(child).lower() == name:
            return child
    return None


def _soap12_code(code: etree._Element) -> str:
    value = _first_child(code, "value")
    if value is None:
        return ""
    top = _local_part(_text(value))
    base = _SOAP12_TO_BASE.get(top, top)
    subcode = _first_child(code, "subcode")
    sub_value = _first_child(subcode, "value") if subcode is not None else None
    if sub_value is None or not _text(sub_value):
        return base
    raw = _text(sub_value)
    prefix = raw.rsplit(":", 1)[0] if ":" in raw else None
    if sub_value.nsmap.get(prefix) == CP_NAMESPACE:
        return _local_part(raw)
    return f"{base}.{_local_part(raw)}"


def _soap12_reason(reason: etree._Element | None) -> str:
    if reason is None:
        return ""
    text = _first_child(reason, "text")
    return _text(text) if text is not None else _text(reason)


def fault_for_error(error: ProtocolError) -> Fault:
    """The fault a server answers for a core error raised by a request.

    The code comes from the error class's ``fault_code`` (``Client.TOD`` for a
    TOD mix, ``VersionMismatch``...) and defaults to ``Client``, since a core
    error is raised by what the peer sent. ``detail`` is present when the
    error class says it is about the Body (``fault_from_body``), as §3 asks.
    """
    code = getattr(error, "fault_code", FaultCode.CLIENT)
    message = str(error) or type(error).__name__
    detail = message if getattr(error, "fault_from_body", False) else None
    return Fault(code, message, detail)
