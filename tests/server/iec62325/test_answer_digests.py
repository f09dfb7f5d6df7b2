"""A get of a published file is the stored message: its digest is computed once.

The first get computes the content digest (pass 1) and keeps it in the ledger;
the next ones sign it and read the file once. A stored digest is used only for
the publication and the canonical bytes it was computed with.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from cryptography import x509
from lxml import etree

from concentrador.protocol.iec62325 import get_request
from concentrador.protocol.iec62325.wire import MSG_NAMESPACE, format_datetime
from concentrador.server.iec62325 import stream
from concentrador.spool.ledger.answers import AnswerDigest
from concentrador.spool.outbound.answer_digests import answer_parts
from tests.server.conftest import FROZEN_NOW
from tests.server.iec62325.conftest import body_of, call, decoded, url_504, verify_answer

NAME = "F1_0086_20240101_20240102.0.bz2"
MSG = f"{{{MSG_NAMESPACE}}}"


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of every read of a served file (both passes go through read_exactly)."""
    seen: list[int] = []
    real = stream.read_exactly

    def recording(handle, size, *, close=False):  # type: ignore[no-untyped-def]
        seen.append(size)
        return real(handle, size, close=close)

    monkeypatch.setattr(stream, "read_exactly", recording)
    return seen


def _header(answer, name: str) -> str | None:  # type: ignore[no-untyped-def]
    return answer.message.findtext(f"{MSG}Header/{MSG}{name}")


def _signxml_verify(raw: bytes, pki) -> None:  # type: ignore[no-untyped-def]
    """signxml (another implementation) checks the answer as REE's profile signs it."""
    signxml = pytest.importorskip("signxml")
    # The message cut out of the envelope as its own document, as 504 signs it
    # (lxml's tostring of the element would carry the envelope's xmlns:soapenv).
    start = raw.index(b"<msg:ResponseMessage")
    end = raw.index(b"</msg:ResponseMessage>") + len(b"</msg:ResponseMessage>")
    document = etree.fromstring(raw[start:end])
    config = signxml.SignatureConfiguration(
        default_reference_c14n_method=signxml.CanonicalizationMethod.CANONICAL_XML_1_0
    )
    ours = x509.load_pem_x509_certificate((pki.directory / "client.pem").read_bytes())
    signxml.XMLVerifier().verify(
        document, x509_cert=ours, ignore_ambiguous_key_info=True, expect_config=config
    )


async def test_first_get_stores_the_digest_and_the_next_reads_the_file_once(
    start_504, crec, pki, reads
) -> None:
    node = await start_504()
    data = os.urandom(8 << 20)
    node.publish("CREC", NAME, data)
    (entry,) = node.ledger.coded_entries("CREC")
    key = {"published_at": entry.published_at, "md5": entry.md5}
    assert node.ledger.answer_digest("CREC", NAME, **key) is None

    first = await call(crec, url_504(node), body_of(get_request(code=entry.code)))
    assert decoded(first) == data
    verify_answer(first, pki)
    assert sum(reads) == 2 * len(data)  # no digest yet: pass 1, then the send
    stored = node.ledger.answer_digest("CREC", NAME, **key)
    assert stored is not None
    assert stored.fits(*answer_parts(NAME, entry.published_at, node.state.config.node.id))

    reads.clear()
    second = await call(crec, url_504(node), body_of(get_request(code=entry.code)))
    assert decoded(second) == data
    verify_answer(second, pki)
    # One pass: the file is read once, in the send's pieces.
    assert max(reads) == stream.PIECE and sum(reads) == len(data)
    # The stored message: the same bytes, signature included (RSA PKCS#1 v1.5 is
    # deterministic), dated by the publication and from our node.
    assert second.raw == first.raw
    assert _header(second, "Timestamp") == format_datetime(entry.published_at)
    assert _header(second, "Source") == node.state.config.node.id


async def test_the_answer_signed_with_the_stored_digest_verifies_with_signxml(
    start_504, crec, pki, reads
) -> None:
    node = await start_504()
    data = os.urandom(1 << 20)  # signxml's parser refuses text nodes over 10 MB
    node.publish("CREC", NAME, data)
    (entry,) = node.ledger.coded_entries("CREC")
    await call(crec, url_504(node), body_of(get_request(code=entry.code)))
    reads.clear()
    answer = await call(crec, url_504(node), body_of(get_request(code=entry.code)))
    assert sum(reads) == len(data)  # the stored digest was used
    _signxml_verify(answer.raw, pki)


async def test_a_stored_digest_around_other_bytes_is_ignored(start_504, crec, pki, reads) -> None:
    node = await start_504()
    data = os.urandom(300_001)
    node.publish("CREC", NAME, data)
    (entry,) = node.ledger.coded_entries("CREC")
    _, after = answer_parts(NAME, entry.published_at, node.state.config.node.id)
    # As if computed by another version of our builders: another `before`, a wrong digest.
    bogus = AnswerDigest.of(
        "CREC", NAME, entry.published_at, entry.md5, b"<other/>", after, bytes(32)
    )
    node.ledger.record_answer_digest(bogus)

    answer = await call(crec, url_504(node), body_of(get_request(code=entry.code)))
    assert decoded(answer) == data
    verify_answer(answer, pki)  # signed with a digest computed now, not the stored one
    _signxml_verify(answer.raw, pki)
    assert sum(reads) == 2 * len(data)
    stored = node.ledger.answer_digest("CREC", NAME, published_at=entry.published_at, md5=entry.md5)
    assert stored is not None and stored.digest != bytes(32)  # replaced by the right one


async def test_a_republished_file_does_not_get_its_old_digest(start_504, crec, pki, reads) -> None:
    node = await start_504()
    data = os.urandom(100_000)
    node.publish("CREC", NAME, data)
    (old,) = node.ledger.coded_entries("CREC")
    await call(crec, url_504(node), body_of(get_request(code=old.code)))
    assert node.ledger.answer_digest("CREC", NAME, published_at=old.published_at, md5=old.md5)

    node.ledger.set_state("CREC", NAME, "expired")
    later = FROZEN_NOW + timedelta(hours=1)
    assert node.ledger.republish("CREC", NAME, at=later, actor="test", reason="test") == 1
    (new,) = node.ledger.coded_entries("CREC")
    assert new.published_at == later and new.code != old.code
    assert node.ledger.answer_digest("CREC", NAME, published_at=later, md5=new.md5) is None

    reads.clear()
    answer = await call(crec, url_504(node), body_of(get_request(code=new.code)))
    assert decoded(answer) == data
    verify_answer(answer, pki)
    assert _header(answer, "Timestamp") == format_datetime(later)
    assert sum(reads) == 2 * len(data)  # computed anew, for the new publication
    stored = node.ledger.answer_digest("CREC", NAME, published_at=later, md5=new.md5)
    assert stored is not None
    # The old publication's row is gone (one row per name) and stays unused.
    assert (
        node.ledger.answer_digest("CREC", NAME, published_at=old.published_at, md5=old.md5) is None
    )


async def test_unsigned_answers_store_no_digest(start_504, crec, reads) -> None:
    node = await start_504(sign_answers=False)
    data = os.urandom(10_000)
    node.publish("CREC", NAME, data)
    (entry,) = node.ledger.coded_entries("CREC")
    answer = await call(crec, url_504(node), body_of(get_request(code=entry.code)))
    assert decoded(answer) == data and b"Signature" not in answer.raw
    assert sum(reads) == len(data)
    key = {"published_at": entry.published_at, "md5": entry.md5}
    assert node.ledger.answer_digest("CREC", NAME, **key) is None
