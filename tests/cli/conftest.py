"""Fixtures of the CLI tests: the one-shot client commands run against the
client tests' fake peer with their dev PKI; ``status`` reads a daemon config."""

from __future__ import annotations

from pathlib import Path

import pytest

from concentrador.pki import DevPki
from tests.client import conftest as client_fixtures
from tests.daemon.helpers import config_text, write_config

# The client tests' fixtures, shared rather than copied: pytest finds them by name here.
pki = client_fixtures.pki
fake_peer = client_fixtures.fake_peer


@pytest.fixture
def config_path(tmp_path: Path, pki: DevPki) -> Path:
    """A daemon config of node 0086 serving CREC, its spool in ``tmp_path/spool``."""
    text = config_text(pki.directory, tmp_path / "spool")
    return write_config(tmp_path / "concentrador.toml", text)
