"""A get answer signed with the digest kept in the ledger verifies with the JDK.

REE's recorded get (eemws-kit's request bytes, ``test_ree_wire``) asked twice of
our server: the first answer computes the content digest and keeps it, the
second signs the kept one without reading the file for it. Both verify with
the JDK's XMLDSig (``EmeVerify``, as REE's client does) and are the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from concentrador.server.iec62325 import stream
from tests.interop.iec62325.eme_java import EmeJava
from tests.interop.iec62325.test_ree_wire import PUBLISHED, Replay, replay

__all__ = ["replay"]  # the fixture, used by name below

pytestmark = pytest.mark.interop


@pytest.mark.parametrize("soap", ["soap11", "soap12"])
async def test_jdk_verifies_the_answer_signed_with_the_stored_digest(
    replay: Replay,
    eme_java: EmeJava,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    soap: str,
) -> None:
    reads: list[int] = []
    real = stream.read_exactly

    def recording(handle, size, *, close=False):  # type: ignore[no-untyped-def]
        reads.append(size)
        return real(handle, size, close=close)

    monkeypatch.setattr(stream, "read_exactly", recording)
    first = await replay.send(f"get_code_{soap}")
    assert first.status == 200, first.raw[:600]
    size = len(PUBLISHED["F1_0086_20240601_20240602.0.bz2"])
    assert sum(reads) == 2 * size
    reads.clear()
    second = await replay.send(f"get_code_{soap}")
    assert sum(reads) == size  # signed with the stored digest: one pass
    assert second.raw == first.raw
    for name, answer in (("first", first), ("second", second)):
        saved = tmp_path / f"{name}.xml"
        saved.write_bytes(answer.raw)
        valid, signer = eme_java.verify_outcome(saved)
        assert valid, signer
