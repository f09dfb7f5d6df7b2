"""Fixtures and helpers of the spool tests (``ledger`` comes from tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from concentrador.spool.inbound.store import InboundStore
from concentrador.spool.layout import PeerSpool


@pytest.fixture
def peer(tmp_path: Path) -> PeerSpool:
    """The spool folders of peer ``PEER``, created in ``tmp_path``."""
    return PeerSpool(tmp_path, "PEER").ensure()


def receive(store: InboundStore, name: str, data: bytes, *, manual: bool = False) -> Path:
    """Store ``data`` as a peer's file ``name`` (in 4 KiB writes) and commit it."""
    with store.open(name, manual=manual) as writer:
        for i in range(0, len(data), 4096):
            writer.write(data[i : i + 4096])
        return store.commit(writer, name)
