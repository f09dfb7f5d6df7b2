"""The 504 fault: a SOAP Fault (HTTP 500) whose detail is a 61968-100 ``FaultMessage``.

REE's server answers errors this way (``FaultMessage/Reply/{Result FAILED,
Error/{code, details}}``) and its client reads the code from there. The SOAP
fault code says whose fault it is: ``Client``/``Sender`` for what the peer
sent, ``Server``/``Receiver`` for ours (:attr:`.Iec62325Error.server_side`).
"""

from __future__ import annotations

from collections.abc import Iterable

from lxml import etree

from concentrador.protocol.iec62325.elements import is_msg, msg_child, msg_q
from concentrador.protocol.iec62325.errors import ERROR_CODES, ErrorCode, Iec62325Error
from concentrador.protocol.iec62325.models import ReplyError
from concentrador.protocol.iec62325.response import read_reply_errors, reply_error
from concentrador.protocol.iec62325.wire import MSG_NAMESPACE, MSG_PREFIX, ReplyResult
from concentrador.protocol.soap import Envelope
from concentrador.protocol.soapenv import ENVELOPE_PREFIX, SOAP11, SoapVersion, build_envelope

__all__ = ["fault_envelope", "fault_message", "read_fault"]

_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def fault_message(errors: Iterable[Iec62325Error | ReplyError]) -> etree._Element:
    """``msg:FaultMessage/Reply`` with Result FAILED and one Error per error."""
    fault = etree.Element(msg_q("FaultMessage"), nsmap={MSG_PREFIX: MSG_NAMESPACE})
    reply = etree.SubElement(fault, msg_q("Reply"))
    etree.SubElement(reply, msg_q("Result")).text = ReplyResult.FAILED
    for item in errors:
        error = reply_error(item)
        element = etree.SubElement(reply, msg_q("Error"))
        etree.SubElement(element, msg_q("code")).text = error.code
        if error.level is not None:
            etree.SubElement(element, msg_q("level")).text = error.level
        if error.reason is not None:
            etree.SubElement(element, msg_q("reason")).text = error.reason
        etree.SubElement(element, msg_q("details")).text = _xml_safe(error.details)
    return fault


def _xml_safe(text: str) -> str:
    # Details may quote what a peer sent; drop what XML cannot carry.
    return "".join(
        c
        for c in text
        if c in "\t\n\r"
        or ("\x20" <= c <= "\ud7ff")
        or ("\ue000" <= c <= "\ufffd")
        or c >= "\U00010000"
    )


def fault_envelope(
    errors: Iterable[Iec62325Error | ReplyError], version: SoapVersion = SOAP11
) -> bytes:
    """The whole SOAP envelope of a 504 fault (send it with HTTP 500)."""
    items = [reply_error(e) for e in errors]
    if not items:
        items = [ReplyError(ErrorCode.INTERNAL, "unspecified error")]
    server = any(ERROR_CODES.get(e.code, (None, False))[1] for e in items)
    first = items[0]
    string = _xml_safe(f"{first.code}: {first.details}")
    ns = version.namespace
    fault = etree.Element(f"{{{ns}}}Fault", nsmap={ENVELOPE_PREFIX: ns})
    if version is SOAP11:
        etree.SubElement(
            fault, "faultcode"
        ).text = f"{ENVELOPE_PREFIX}:{'Server' if server else 'Client'}"
        etree.SubElement(fault, "faultstring").text = string
        detail = etree.SubElement(fault, "detail")
    else:
        code = etree.SubElement(fault, f"{{{ns}}}Code")
        etree.SubElement(
            code, f"{{{ns}}}Value"
        ).text = f"{ENVELOPE_PREFIX}:{'Receiver' if server else 'Sender'}"
        reason = etree.SubElement(fault, f"{{{ns}}}Reason")
        text = etree.SubElement(reason, f"{{{ns}}}Text")
        text.set(_XML_LANG, "en")
        text.text = string
        detail = etree.SubElement(fault, f"{{{ns}}}Detail")
    detail.append(fault_message(items))
    return build_envelope(fault, version=version)


def read_fault(envelope: Envelope | etree._Element) -> list[ReplyError]:
    """The errors of a peer's 504 fault.

    Takes a parsed :class:`~concentrador.protocol.soap.Envelope` (or the Fault
    element). Reads ``FaultMessage/Reply/Error`` wherever the detail holds it;
    a fault without one gives one ``HAND-010`` error carrying the SOAP fault
    text, so the caller always has a code to act on.
    """
    if isinstance(envelope, Envelope):
        if envelope.fault is None or not envelope.body_elements:
            return []
        element = envelope.body_elements[0]
        text = f"{envelope.fault.code}: {envelope.fault.string}"
    else:
        element = envelope
        text = " ".join(t.strip() for t in element.itertext() if isinstance(t, str) and t.strip())
    for candidate in element.iter():
        if isinstance(candidate.tag, str) and is_msg(candidate, "FaultMessage"):
            try:
                reply = msg_child(candidate, "Reply", ErrorCode.SCHEMA)
                errors = read_reply_errors(reply) if reply is not None else []
            except Iec62325Error:
                errors = []
            if errors:
                return errors
    return [ReplyError(ErrorCode.FAULT_RECEIVED, text[:4096])]
