"""Fixtures shared across the test areas."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from concentrador.spool.ledger import Ledger


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    """A fresh ledger in ``tmp_path/ledger.sqlite3``, closed after the test."""
    with Ledger(tmp_path / "ledger.sqlite3") as opened:
        yield opened
