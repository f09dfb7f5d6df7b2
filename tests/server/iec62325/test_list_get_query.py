"""list, get and query over mutual TLS: signed answers, codes, streaming, refusals."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from concentrador.protocol.iec62325 import (
    get_request,
    list_request,
    query_request,
    read_message_list,
    read_server_time,
)
from concentrador.server.iec62325 import stream
from tests.server.conftest import FROZEN_NOW
from tests.server.iec62325.conftest import (
    body_of,
    call,
    decoded,
    signing_key,
    url_504,
    verify_answer,
)

NAMES = ("F1_0086_20240101_20240102.0.bz2", "F1_0086_20240103_20240104.0.bz2")


async def test_query_server_time_is_signed_by_us(start_504, crec, pki) -> None:
    node = await start_504()
    answer = await call(crec, url_504(node), body_of(query_request()))
    assert answer.status == 200, answer.raw[:600]
    assert read_server_time(answer.response.payload) == FROZEN_NOW
    verify_answer(answer, pki)


async def test_query_list_of_data_types_and_an_unknown_one(start_504, crec) -> None:
    node = await start_504()
    answer = await call(crec, url_504(node), body_of(query_request("listOfDataTypes")))
    assert answer.status == 200
    assert b"serverTimestamp" in answer.raw
    answer = await call(crec, url_504(node), body_of(query_request("parameterLimits")))
    assert answer.status == 500 and answer.code == "QRY-002"


async def test_list_after_code_and_by_type(start_504, crec, pki) -> None:
    node = await start_504()
    node.publish("CREC", NAMES[0], b"BZh9one")
    node.publish("CREC", NAMES[1], b"BZh9two", file_type="TOD")
    node.publish("OTRO", "F1_0086_20240105_20240106.0.bz2", b"BZh9other")
    answer = await call(crec, url_504(node), body_of(list_request(after_code=0)))
    assert answer.status == 200, answer.raw[:600]
    entries = read_message_list(answer.response.payload)
    assert [e.message_identification for e in entries] == list(NAMES)
    assert entries[0].code < entries[1].code
    assert entries[0].owner == "0086" and entries[1].type == "TOD"
    assert b"Signature" not in answer.raw  # Decision: list answers are not signed
    after = await call(crec, url_504(node), body_of(list_request(after_code=entries[0].code)))
    assert [e.message_identification for e in read_message_list(after.response.payload)] == [
        NAMES[1]
    ]
    typed = await call(crec, url_504(node), body_of(list_request(after_code=0, msg_type="CUR")))
    assert [e.message_identification for e in read_message_list(typed.response.payload)] == [
        NAMES[0]
    ]


async def test_list_by_interval(start_504, crec) -> None:
    node = await start_504()
    node.publish("CREC", NAMES[0], b"BZh9one")
    start, end = FROZEN_NOW - timedelta(hours=1), FROZEN_NOW + timedelta(hours=1)
    answer = await call(crec, url_504(node), body_of(list_request(start=start, end=end)))
    assert [e.message_identification for e in read_message_list(answer.response.payload)] == [
        NAMES[0]
    ]
    later = await call(
        crec, url_504(node), body_of(list_request(start=end, end=end + timedelta(days=1)))
    )
    assert read_message_list(later.response.payload) == []


async def test_list_of_100_years_is_refused(start_504, crec) -> None:
    node = await start_504()
    end = FROZEN_NOW
    message = list_request(start=end - timedelta(days=36525), end=end)
    answer = await call(crec, url_504(node), body_of(message))
    assert answer.status == 500 and answer.code == "LST-004"


async def test_get_by_code_and_by_identification(start_504, crec, pki) -> None:
    node = await start_504()
    data = os.urandom(10_001)
    node.publish("CREC", NAMES[0], data)
    (entry,) = node.ledger.coded_entries("CREC")
    by_code = await call(crec, url_504(node), body_of(get_request(code=entry.code)))
    assert by_code.status == 200, by_code.raw[:600]
    assert decoded(by_code) == data and by_code.response.name == NAMES[0]
    verify_answer(by_code, pki)
    by_name = get_request(message_identification=NAMES[0], message_version=1)
    by_id = await call(crec, url_504(node), body_of(by_name))
    assert decoded(by_id) == data
    verify_answer(by_id, pki)


async def test_get_unsigned_when_we_have_no_key(start_504, crec) -> None:
    node = await start_504(sign_answers=False)
    node.publish("CREC", NAMES[0], b"BZh9abc")
    (entry,) = node.ledger.coded_entries("CREC")
    answer = await call(crec, url_504(node), body_of(get_request(code=entry.code)))
    assert decoded(answer) == b"BZh9abc" and b"Signature" not in answer.raw


async def test_get_of_what_is_not_ours_is_get_006(start_504, crec) -> None:
    node = await start_504()
    node.publish("OTRO", NAMES[0], b"BZh9other")
    (entry,) = node.ledger.coded_entries("OTRO")
    for message in (
        get_request(code=entry.code),
        get_request(code=999),
        get_request(message_identification=NAMES[0]),
        get_request(message_identification=NAMES[0], message_version=2),
    ):
        answer = await call(crec, url_504(node), body_of(message))
        assert answer.status == 500 and answer.code == "GET-006", answer.raw[:600]


async def test_get_of_8_mb_is_streamed_in_pieces(start_504, crec, pki, monkeypatch) -> None:
    node = await start_504()
    data = os.urandom(8 << 20)
    node.publish("CREC", NAMES[0], data)
    (entry,) = node.ledger.coded_entries("CREC")
    reads: list[int] = []
    real = stream.read_exactly

    def recording(handle, size, *, close=False):
        reads.append(size)
        return real(handle, size, close=close)

    monkeypatch.setattr(stream, "read_exactly", recording)
    answer = await call(crec, url_504(node), body_of(get_request(code=entry.code)))
    assert decoded(answer) == data
    verify_answer(answer, pki)
    # Two passes: the digest in pieces of DIGEST_PIECE, then the send in pieces of PIECE.
    digest_reads = -(-len(data) // stream.DIGEST_PIECE)
    first, second = reads[:digest_reads], reads[digest_reads:]
    assert max(first) == stream.DIGEST_PIECE and sum(first) == len(data)
    assert max(second) == stream.PIECE and sum(second) == len(data)


async def test_signed_list_request_of_another_peer_is_refused(start_504, crec, pki) -> None:
    node = await start_504(signatures="optional")
    message = list_request(after_code=0)
    answer = await call(crec, url_504(node), body_of(message, key=signing_key(pki, "OTRO-client")))
    assert answer.status == 500 and answer.code == "HAND-007"
    own_key = signing_key(pki, "CREC-client")
    own = await call(crec, url_504(node), body_of(list_request(after_code=0), key=own_key))
    assert own.status == 200


@pytest.mark.parametrize("source", ["OTRO", "someone"])
async def test_source_contradicting_the_certificate_is_refused(start_504, crec, source) -> None:
    node = await start_504()
    answer = await call(crec, url_504(node), body_of(query_request(source=source)))
    assert answer.status == 500 and answer.code == "HAND-003"
    for fine in ("CREC", "0086"):
        ok = await call(crec, url_504(node), body_of(query_request(source=fine)))
        assert ok.status == 200
