"""The hardened XML parser refuses DTDs/entities and never reads or fetches anything."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lxml import etree

from concentrador.protocol.errors import ProtocolError
from concentrador.protocol.xmlparse import (
    XmlEncodingError,
    XmlError,
    XmlSecurityError,
    XmlSyntaxError,
    XmlTooLargeError,
    _new_parser,
    _refuse_dtd,
    attribute_by_local_name,
    local_name,
    parse_xml,
)

LIMIT = 1024 * 1024


def _utf8(doc: str) -> bytes:
    return doc.encode("utf-8")


def _utf16(doc: str) -> bytes:
    return doc.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")


def _utf32(doc: str) -> bytes:
    return doc.replace('encoding="UTF-8"', 'encoding="UTF-32"').encode("utf-32")


def _utf7_hidden(doc: str) -> bytes:
    # UTF-7 lets "!", "[" and "]" be base64-escaped, so "<!DOCTYPE" never
    # appears as bytes: this exercises the post-parse check, not the byte scan.
    escaped = doc.replace("!", "+ACE-").replace("[", "+AFs-").replace("]", "+AF0-")
    return escaped.replace('encoding="UTF-8"', 'encoding="UTF-7"').encode("ascii")


# Each encoding with the error that must refuse a DTD written in it: UTF-7
# could hide the DOCTYPE from the byte scan, so it is refused outright.
ENCODERS: list[tuple[Callable[[str], bytes], type[XmlError]]] = [
    (_utf8, XmlSecurityError),
    (_utf16, XmlSecurityError),
    (_utf32, XmlSecurityError),
    (_utf7_hidden, XmlEncodingError),
]
ENCODER_IDS = ["utf-8", "utf-16", "utf-32", "utf-7-hidden"]

BILLION_LAUGHS = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<lolz>&lol9;</lolz>"""


@pytest.mark.parametrize(("encode", "refusal"), ENCODERS, ids=ENCODER_IDS)
def test_billion_laughs_is_refused(encode: Callable[[str], bytes], refusal: type[XmlError]) -> None:
    with pytest.raises(refusal):
        parse_xml(encode(BILLION_LAUGHS), max_size=LIMIT)


@pytest.mark.parametrize(("encode", "refusal"), ENCODERS, ids=ENCODER_IDS)
def test_internal_entity_without_expansion_is_still_refused(
    encode: Callable[[str], bytes], refusal: type[XmlError]
) -> None:
    doc = '<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE r [<!ENTITY a "x">]><r>&a;</r>'
    with pytest.raises(refusal):
        parse_xml(encode(doc), max_size=LIMIT)


def test_dtd_that_slips_past_the_byte_scan_is_refused_after_parsing() -> None:
    # The second line of defence, fed a tree parsed with the same safe options
    # (entities unresolved) as if an exotic encoding had hidden the DOCTYPE.
    tree = etree.fromstring(b'<!DOCTYPE r [<!ENTITY a "EXPANDED">]><r>&a;</r>', _new_parser())
    assert "EXPANDED" not in "".join(tree.itertext())  # the entity stayed a reference
    with pytest.raises(XmlSecurityError):
        _refuse_dtd(tree)


def test_bare_doctype_is_refused() -> None:
    with pytest.raises(XmlSecurityError):
        parse_xml(b"<!DOCTYPE r><r/>", max_size=LIMIT)


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[tuple[Path, threading.Event]]:
    """A FIFO that records whether anyone opened it for reading.

    A writer thread blocks in open() until a reader appears; if the parser
    ever opens the file, the event is set. Afterwards we open the read end
    ourselves (non-blocking) to release the thread.
    """
    path = tmp_path / "secret.fifo"
    os.mkfifo(path)
    opened = threading.Event()
    released = threading.Event()

    def writer() -> None:
        fd = os.open(path, os.O_WRONLY)
        if not released.is_set():
            opened.set()
        os.close(fd)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    yield path, opened
    released.set()
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    thread.join(timeout=5)
    os.close(reader)
    assert not thread.is_alive()


@pytest.mark.parametrize(("encode", "refusal"), ENCODERS, ids=ENCODER_IDS)
def test_xxe_file_is_refused_and_never_opened(
    encode: Callable[[str], bytes], refusal: type[XmlError], fifo: tuple[Path, threading.Event]
) -> None:
    path, opened = fifo
    doc = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<!DOCTYPE r [<!ENTITY xxe SYSTEM "file://{path}">]><r>&xxe;</r>'
    )
    with pytest.raises(refusal):
        parse_xml(encode(doc), max_size=LIMIT)
    assert not opened.wait(0.2), "the parser opened the file named by the external entity"


def test_xxe_secret_never_appears(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    doc = f'<!DOCTYPE r [<!ENTITY xxe SYSTEM "file://{secret}">]><r>&xxe;</r>'
    with pytest.raises(XmlSecurityError) as info:
        parse_xml(doc.encode(), max_size=LIMIT)
    assert "TOP-SECRET" not in str(info.value)


@pytest.fixture
def listener() -> Iterator[tuple[int, list[bytes]]]:
    """A loopback TCP listener that records every connection it gets."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.1)
    seen: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    seen.append(conn.recv(4096))
                except OSError:
                    seen.append(b"")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], seen
    stop.set()
    thread.join(timeout=5)
    server.close()


HTTP_ATTACKS = [
    '<!DOCTYPE r [<!ENTITY xxe SYSTEM "http://127.0.0.1:{port}/x">]><r>&xxe;</r>',
    '<!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:{port}/p.dtd"> %p;]><r/>',
    '<!DOCTYPE r SYSTEM "http://127.0.0.1:{port}/r.dtd"><r/>',
    '<!DOCTYPE r PUBLIC "-//X//Y" "http://127.0.0.1:{port}/r.dtd"><r/>',
]


@pytest.mark.parametrize("template", HTTP_ATTACKS)
@pytest.mark.parametrize(("encode", "refusal"), ENCODERS, ids=ENCODER_IDS)
def test_xxe_http_is_refused_and_never_fetched(
    template: str,
    encode: Callable[[str], bytes],
    refusal: type[XmlError],
    listener: tuple[int, list[bytes]],
) -> None:
    port, seen = listener
    doc = '<?xml version="1.0" encoding="UTF-8"?>' + template.format(port=port)
    with pytest.raises(refusal):
        parse_xml(encode(doc), max_size=LIMIT)
    assert seen == []


def test_xinclude_is_not_processed(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    doc = (
        '<r xmlns:xi="http://www.w3.org/2001/XInclude">'
        f'<xi:include href="file://{secret}" parse="text"/></r>'
    )
    root = parse_xml(doc.encode(), max_size=LIMIT)
    assert "TOP-SECRET" not in "".join(root.itertext())
    assert local_name(root[0]) == "include"


def test_size_limit_is_checked_before_parsing() -> None:
    # Not XML at all: a size error (not a syntax error) proves no parse ran.
    with pytest.raises(XmlTooLargeError, match="over the 100-byte limit"):
        parse_xml(b"\x00" * 101, max_size=100)


def test_document_at_exactly_the_limit_is_accepted() -> None:
    doc = b"<r>" + b"x" * 93 + b"</r>"
    assert len(doc) == 100
    assert parse_xml(doc, max_size=100).text == "x" * 93


def test_deep_nesting_is_refused() -> None:
    depth = 5000
    doc = b"<a>" * depth + b"</a>" * depth
    with pytest.raises(XmlSyntaxError):
        parse_xml(doc, max_size=LIMIT)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"   ",
        b"<r>",
        b"<a></b>",
        b"not xml",
        b"<r/><r/>",
        b"<r a='1' a='2'/>",
        b"\xff\xfe\x00",
    ],
)
def test_malformed_xml_is_a_syntax_error_with_a_one_line_message(data: bytes) -> None:
    with pytest.raises(XmlSyntaxError) as info:
        parse_xml(data, max_size=LIMIT)
    assert isinstance(info.value, ProtocolError)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "data",
    [
        b'<?xml version="1.0" encoding="NOPE-42"?><r/>',
        b'<?xml version="1.0" encoding="UTF-7"?><r/>',
        b'<?xml version="1.0" encoding="UTF-16"?><r/>',  # ASCII bytes labelled UTF-16
        '<?xml version="1.0" encoding="UTF-8"?><r/>'.encode("utf-16"),
        b"\x4c\x6f\xa7\x94\x93@",  # EBCDIC "<?xml "
    ],
)
def test_encodings_that_could_hide_markup_are_refused(data: bytes) -> None:
    with pytest.raises(XmlEncodingError):
        parse_xml(data, max_size=LIMIT)


def test_overlong_declaration_is_refused() -> None:
    # Padding could push encoding="UTF-7" past what the encoding check reads.
    doc = b'<?xml version="1.0"' + b" " * 2000 + b'encoding="UTF-7"?><r/>'
    with pytest.raises(XmlSyntaxError, match="declaration"):
        parse_xml(doc, max_size=LIMIT)


@pytest.mark.parametrize("encoding", ["ISO-8859-1", "windows-1252", "us-ascii", "utf-8"])
def test_ascii_compatible_declared_encodings_are_accepted(encoding: str) -> None:
    doc = f'<?xml version="1.0" encoding="{encoding}"?><r>ok</r>'.encode()
    assert parse_xml(doc, max_size=LIMIT).text == "ok"


def test_str_input_is_refused() -> None:
    with pytest.raises(XmlSyntaxError, match="bytes"):
        parse_xml("<r/>", max_size=LIMIT)  # type: ignore[arg-type]


def test_leading_whitespace_before_declaration_is_tolerated() -> None:
    root = parse_xml(b'\r\n  <?xml version="1.0"?><r>ok</r>', max_size=LIMIT)
    assert root.text == "ok"


@pytest.mark.parametrize(
    "data",
    [
        '<?xml version="1.0" encoding="UTF-16"?><r>ñ</r>'.encode("utf-16"),
        b"\xfe\xff" + '<?xml version="1.0" encoding="UTF-16"?><r>ñ</r>'.encode("utf-16-be"),
        '<?xml version="1.0" encoding="UTF-32"?><r>ñ</r>'.encode("utf-32"),
        '<?xml version="1.0" encoding="UTF-8"?><r>ñ</r>'.encode("utf-8-sig"),
        "<r>ñ</r>".encode("utf-16"),
    ],
    ids=["utf-16", "utf-16-be", "utf-32", "utf-8-bom", "utf-16-no-declaration"],
)
def test_unicode_encodings_without_dtd_parse(data: bytes) -> None:
    assert parse_xml(data, max_size=LIMIT).text == "ñ"


def test_attribute_lookup_by_local_name() -> None:
    root = parse_xml(b'<r xmlns:p="urn:x" p:ID="a" other="b"/>', max_size=LIMIT)
    assert attribute_by_local_name(root, "id") == "a"
    assert attribute_by_local_name(root, "other") == "b"
    assert attribute_by_local_name(root, "missing") is None
