"""Cycle locks: one collection (or push) per peer at a time, daemon and CLI alike."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from concentrador.cli import client as commands
from concentrador.cli.errors import CommandFailed
from concentrador.client.errors import CycleBusy
from concentrador.client.locks import cycle_lock
from concentrador.spool.layout import PeerSpool, Spool
from tests.client.conftest import SERVER_ID, client_config


def test_second_holder_is_refused_and_told_who(tmp_path: Path) -> None:
    peer_spool = PeerSpool(tmp_path, SERVER_ID)
    with cycle_lock(peer_spool, "collect"):
        with (
            pytest.raises(CycleBusy, match=f"pid {os.getpid()}"),
            cycle_lock(peer_spool, "collect"),
        ):
            pass
        with cycle_lock(peer_spool, "push"):  # another kind is independent
            pass
    with cycle_lock(peer_spool, "collect"):  # released
        pass


def test_lock_held_by_another_process(tmp_path: Path) -> None:
    peer_spool = PeerSpool(tmp_path, SERVER_ID)
    script = (
        "import sys, time; from pathlib import Path;"
        "from concentrador.client.locks import cycle_lock;"
        "from concentrador.spool.layout import PeerSpool;"
        f"lock = cycle_lock(PeerSpool(Path({str(tmp_path)!r}), {SERVER_ID!r}), 'collect');"
        "lock.__enter__(); print('held', flush=True); sys.stdin.readline()"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        with pytest.raises(CycleBusy, match=f"pid {child.pid}"), cycle_lock(peer_spool, "collect"):
            pass
    finally:
        child.communicate("\n", timeout=10)
    with cycle_lock(peer_spool, "collect"):
        pass


def test_cli_collect_refuses_while_a_cycle_runs(pki: Any, tmp_path: Path) -> None:
    config = client_config(pki, tmp_path / "spool", "http://127.0.0.1:9/")
    peer_spool = Spool(config.node.spool).peer(SERVER_ID).ensure()
    args = argparse.Namespace(peer=SERVER_ID)
    with cycle_lock(peer_spool, "collect"), pytest.raises(CommandFailed, match="already running"):
        commands.collect(config, args)
