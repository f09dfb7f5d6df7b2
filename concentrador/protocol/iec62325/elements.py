"""Reading and writing the 61968-100 message parts that requests and responses share.

Liberal reading: an element is taken as the 61968-100 one by its local name,
in the ``msg`` namespace or in none (some stacks drop it), with any prefix.
"""

from __future__ import annotations

from datetime import UTC, datetime

from lxml import etree

from concentrador.protocol.iec62325.errors import ErrorCode, Iec62325Error
from concentrador.protocol.iec62325.models import Header, MessageId
from concentrador.protocol.iec62325.wire import (
    MSG_NAMESPACE,
    MSG_PREFIX,
    OptionName,
    format_datetime,
    parse_datetime,
)
from concentrador.protocol.xmlparse import child_elements, local_name, namespace_of, xml_trim

__all__ = [
    "child_text",
    "datetime_of",
    "is_msg",
    "msg_child",
    "msg_children",
    "msg_q",
    "new_message",
    "parse_long",
    "read_header",
    "read_ids",
    "read_options",
    "refuse_unknown",
    "text_of",
]

_MAX_LONG = 2**63 - 1  # REE reads codes as Java longs


def is_msg(element: etree._Element, name: str) -> bool:
    """``element`` is the 61968-100 ``name`` (qualified, or unqualified: liberal)."""
    return local_name(element) == name and namespace_of(element) in (MSG_NAMESPACE, None)


def msg_children(element: etree._Element, name: str) -> list[etree._Element]:
    return [child for child in child_elements(element) if is_msg(child, name)]


def msg_child(element: etree._Element, name: str, code: str) -> etree._Element | None:
    """The one ``name`` child of ``element`` (``None`` if absent); two is ``code``."""
    found = msg_children(element, name)
    if len(found) > 1:
        raise Iec62325Error(code, f"<{local_name(element)}> has {len(found)} <{name}> elements")
    return found[0] if found else None


def text_of(element: etree._Element) -> str:
    """The text of a simple-content element; child elements are refused."""
    if child_elements(element):
        raise Iec62325Error(
            ErrorCode.SCHEMA, f"<{local_name(element)}> must hold text, not elements"
        )
    return "".join(t for t in element.itertext() if isinstance(t, str))


def child_text(element: etree._Element, name: str, code: str) -> str | None:
    child = msg_child(element, name, code)
    return None if child is None else text_of(child)


def datetime_of(text: str, what: str, code: str) -> datetime:
    value = parse_datetime(xml_trim(text))
    if value is None:
        raise Iec62325Error(code, f"{what} {text[:60]!r} is not an xs:dateTime")
    return value


def read_ids(element: etree._Element) -> tuple[MessageId, ...]:
    return tuple(MessageId(text_of(i), i.get("idType")) for i in msg_children(element, "ID"))


def read_header(message: etree._Element) -> Header:
    """The ``Header`` of a Request/Response message (HAND-002 when unusable)."""
    header = msg_child(message, "Header", ErrorCode.SCHEMA)
    if header is None:
        raise Iec62325Error(ErrorCode.SCHEMA, f"<{local_name(message)}> has no <Header>")
    verb = child_text(header, "Verb", ErrorCode.SCHEMA)
    noun = child_text(header, "Noun", ErrorCode.SCHEMA)
    if verb is None or noun is None:
        raise Iec62325Error(ErrorCode.SCHEMA, "the Header must have a Verb and a Noun")
    stamp = child_text(header, "Timestamp", ErrorCode.SCHEMA)
    return Header(
        verb=xml_trim(verb),  # an enumeration: collapsed
        noun=noun,
        timestamp=None if stamp is None else datetime_of(stamp, "Timestamp", ErrorCode.SCHEMA),
        source=child_text(header, "Source", ErrorCode.SCHEMA),
        message_id=child_text(header, "MessageID", ErrorCode.SCHEMA),
        correlation_id=child_text(header, "CorrelationID", ErrorCode.SCHEMA),
    )


def msg_q(name: str) -> str:
    return f"{{{MSG_NAMESPACE}}}{name}"


def new_message(
    root: str, verb: str, noun: str, now: datetime | None, source: str | None
) -> tuple[etree._Element, etree._Element]:
    """A ``root`` message with its Header filled in; returns (message, header)."""
    message = etree.Element(msg_q(root), nsmap={MSG_PREFIX: MSG_NAMESPACE})
    header = etree.SubElement(message, msg_q("Header"))
    etree.SubElement(header, msg_q("Verb")).text = verb
    etree.SubElement(header, msg_q("Noun")).text = noun
    etree.SubElement(header, msg_q("Timestamp")).text = format_datetime(now or datetime.now(UTC))
    if source is not None:
        etree.SubElement(header, msg_q("Source")).text = source
    return message, header


def read_options(
    request: etree._Element | None, bad_parameter: str, bad_date: str
) -> dict[str, str | None]:
    """Options by name, with StartTime/EndTime elements folded in (as REE does)."""
    found: dict[str, str | None] = {}
    if request is None:
        return found

    def add(name: str, value: str | None) -> None:
        if name in found:
            raise Iec62325Error(bad_parameter, f"option {name[:60]!r} is given twice")
        found[name] = value

    for name in (OptionName.START_TIME, OptionName.END_TIME):
        text = child_text(request, name, bad_parameter)
        if text is not None:
            add(name, text)
    for option in msg_children(request, "Option"):
        name_text = child_text(option, "name", bad_parameter)
        if name_text is None:
            raise Iec62325Error(bad_parameter, "an Option has no name")
        add(name_text, child_text(option, "value", bad_parameter))
    for name in (OptionName.START_TIME, OptionName.END_TIME):
        value = found.get(name)
        if name in found and value is None:
            raise Iec62325Error(bad_date, f"{name} has no value")
    return found


def refuse_unknown(options: dict[str, str | None], allowed: frozenset[str], code: str) -> None:
    for name in options:
        if name not in allowed:
            raise Iec62325Error(code, f"unknown option {name[:60]!r}")


def parse_long(text: str | None) -> int | None:
    value = xml_trim(text or "")
    if not value or not value.lstrip("+-").isascii() or not value.lstrip("+-").isdigit():
        return None
    if len(value) > 20:
        return None
    number = int(value)
    return number if -_MAX_LONG - 1 <= number <= _MAX_LONG else None
