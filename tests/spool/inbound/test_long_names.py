"""Valid peer names near the 255-byte limit: the store must not trip on the
longer names it derives from them (the decompressed copy, the archive stamp)."""

from __future__ import annotations

import bz2
import os

import pytest

from concentrador.protocol.names import MAX_NAME_BYTES, is_valid_peer_filename
from concentrador.spool.inbound.store import InboundStore
from concentrador.spool.layout import PeerSpool, SpoolState
from concentrador.spool.ledger import Ledger
from tests.spool.conftest import receive

# Valid peer names (<= 255 bytes) whose "NAME.txt" copy would be 256+ bytes.
LONG_NAME = "F1_" + "x" * 250
LONG_UTF8_NAME = "F1_" + "ñ" * 126  # 255 bytes, 129 characters


@pytest.mark.parametrize("name", [LONG_NAME, LONG_UTF8_NAME])
def test_long_name_is_stored_and_recorded_without_a_copy(
    peer: PeerSpool, ledger: Ledger, name: str
) -> None:
    """Before the fix the copy's ENAMETOOLONG left the file unrecorded and
    every retry of the peer was answered "could not store"."""
    assert is_valid_peer_filename(name)
    store = InboundStore(peer, ledger, decompress=True)
    data = bz2.compress(b"1;2;3\n")
    first = receive(store, name, data)
    again = receive(store, name, data)  # the peer's retry: idempotent, no error
    assert first == again == peer.dir(SpoolState.INBOX) / name
    assert ledger.received("PEER", name) is not None
    assert os.listdir(peer.dir(SpoolState.INBOX)) == [name]


@pytest.mark.parametrize("name", [LONG_NAME, LONG_UTF8_NAME])
def test_long_name_can_be_replaced_and_the_old_file_is_archived(
    peer: PeerSpool, ledger: Ledger, name: str
) -> None:
    """Before the fix the stamped archive name was too long: a different file
    under a long name could never be stored (code 2 forever)."""
    store = InboundStore(peer, ledger, decompress=False)
    old, new = bz2.compress(b"old\n"), bz2.compress(b"new\n")
    receive(store, name, old)
    receive(store, name, new)
    assert (peer.dir(SpoolState.INBOX) / name).read_bytes() == new
    archived = list(peer.dir(SpoolState.ARCHIVE).iterdir())
    assert [p.read_bytes() for p in archived] == [old]
    assert len(os.fsencode(archived[0].name)) <= MAX_NAME_BYTES
