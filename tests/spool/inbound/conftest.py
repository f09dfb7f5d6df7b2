"""Fixtures of the inbound tests."""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture(params=["lbzip2", "bz2"])
def run_decoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs the test twice: runs of blocks decoded by ``lbzip2`` processes, and
    by Python's ``bz2`` (``lbzip2`` hidden from ``shutil.which``)."""
    which = shutil.which
    if request.param == "lbzip2":
        if which("lbzip2") is None:
            pytest.skip("lbzip2 is not installed")
    else:
        monkeypatch.setattr(
            shutil,
            "which",
            lambda name, *a, **k: None if name == "lbzip2" else which(name, *a, **k),
        )
    return str(request.param)
