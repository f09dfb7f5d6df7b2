"""A CPCSCC DIME message has exactly two logical records (CPCSCC.md §5; issue 13, item 11).

enviarFichero with a third record is refused with a Client fault and leaves
nothing behind, in the spool or in the peer's ``.work/``.
"""

from __future__ import annotations

import hashlib
import time

from concentrador.protocol.dime import (
    BZIP2_MEDIA_TYPE,
    SOAP_ENVELOPE_TYPE,
    RecordHeader,
    TypeFormat,
    padded_length,
)
from concentrador.protocol.messages import EnviarFichero, EnviarFicheroResponse, Fichero
from concentrador.protocol.soap import build_envelope
from concentrador.spool.layout import SpoolState
from tests.server.conftest import Node, dime_call

NAME = "F1_0086_20240101_20240102.0.bz2"
DATA = b"BZh9" + bytes(range(256)) * 8
EXTRA_RECORD_FAULT = (
    "DIME message has more than two records: CPCSCC allows the SOAP envelope "
    "and one file attachment only"
)


def _record(*, first: bool, last: bool, media: TypeFormat, type_: str, data: bytes) -> bytes:
    kind = type_.encode()
    header = RecordHeader(first, last, False, media, 0, 0, len(kind), len(data)).encode()
    return (
        header
        + kind.ljust(padded_length(len(kind)), b"\0")
        + data.ljust(padded_length(len(data)), b"\0")
    )


def dime_with_records(envelope: bytes, *attachments: bytes, ends: bool = True) -> bytes:
    """A DIME message: the envelope, then each attachment as its own record.

    ``ends=False`` leaves ME off the last record (more records are to follow).
    """
    records = [(TypeFormat.ABSOLUTE_URI, SOAP_ENVELOPE_TYPE, envelope)]
    records += [(TypeFormat.MEDIA_TYPE, BZIP2_MEDIA_TYPE, payload) for payload in attachments]
    return b"".join(
        _record(
            first=index == 0,
            last=ends and index == len(records) - 1,
            media=media,
            type_=type_,
            data=data,
        )
        for index, (media, type_, data) in enumerate(records)
    )


def push_envelope() -> bytes:
    fichero = Fichero(NAME, hashlib.md5(DATA).hexdigest())
    return build_envelope(EnviarFichero(fichero).to_xml(), concentrador_id="CREC")


def nothing_stored(node: Node) -> bool:
    states = (SpoolState.INBOX, SpoolState.PARTIAL, SpoolState.MANUAL)
    return not any(node.names("CREC", state) for state in states) and not node.work_files("CREC")


async def test_two_records_are_stored(node: Node, crec) -> None:  # type: ignore[no-untyped-def]
    answer = await dime_call(crec, node.url, dime_with_records(push_envelope(), DATA))
    assert EnviarFicheroResponse.from_xml(answer.body).codigo == 0
    assert node.names("CREC", SpoolState.INBOX) == [NAME]


async def test_a_third_record_is_a_client_fault_and_nothing_is_stored(
    node: Node,
    crec,  # type: ignore[no-untyped-def]
) -> None:
    started = time.monotonic()
    message = dime_with_records(push_envelope(), DATA, b"extra record")
    answer = await dime_call(crec, node.url, message)
    assert time.monotonic() - started < 2.0
    assert answer.status == 500 and answer.fault_code == "Client"
    assert answer.envelope is not None and answer.envelope.fault is not None
    assert answer.envelope.fault.string == EXTRA_RECORD_FAULT
    assert nothing_stored(node)


async def test_a_huge_third_record_is_the_same_fault_not_code_5(
    node: Node,
    crec,  # type: ignore[no-untyped-def]
) -> None:
    # Its header announces more than an attachment may be: still "one record too many".
    kind = BZIP2_MEDIA_TYPE.encode()
    huge = RecordHeader(False, True, False, TypeFormat.MEDIA_TYPE, 0, 0, len(kind), 9 << 20)
    message = dime_with_records(push_envelope(), DATA, ends=False) + huge.encode() + kind
    answer = await dime_call(crec, node.url, message)
    assert answer.status == 500 and answer.envelope is not None
    assert answer.envelope.fault is not None
    assert answer.envelope.fault.string == EXTRA_RECORD_FAULT
    assert nothing_stored(node)
