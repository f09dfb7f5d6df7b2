"""Exactly once across kill -9, for a 504 peer.

* a collecting client process is SIGKILLed at random points, again and again,
  then allowed to finish: every message is stored exactly once, none is
  lost, and no message that was stored *and recorded* is fetched again (a
  refetch would show as a ``duplicate`` event in the file's trail);
* the one window where a refetch is expected, between the store's rename and
  the ledger's transaction, is played deterministically: the identical file
  is found and kept once;
* our server process is SIGKILLed in the middle of a put: the push retries
  later and the server ends up with exactly one copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from concentrador.client.cycle import utc_now
from concentrador.client.errors import PeerConnectionError
from concentrador.client.progress import Progress
from concentrador.client.runner import ClientRunner
from concentrador.pki import DevPki
from concentrador.spool.layout import Spool, SpoolState
from concentrador.spool.ledger import EventKind, Ledger
from tests.client.conftest import SERVER_ID, bz2_payload
from tests.client.iec62325.conftest import iec_client_config
from tests.client.iec62325.processes import spawn_collect, spawn_server


def folder(root: Path, state: str) -> dict[str, bytes]:
    path = Spool(root).peer(SERVER_ID).dir(state)
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())} if path.is_dir() else {}


def published_files() -> dict[str, bytes]:
    # A mix of sizes, so that kills land inside transfers as well as between them.
    sizes = [3_000, 2_500_000, 40_000, 4_000_000, 1_000, 1_500_000, 300_000, 9_000]
    return {f"CUR_0086_CREC_202401{i:02d}.0.bz2": bz2_payload(i, size) for i, size in
            enumerate(sizes, 1)}  # fmt: skip


@pytest.mark.parametrize("seed", range(3))
async def test_collect_killed_at_random_points_stores_each_message_exactly_once(
    pki: DevPki, client_root: Path, iec_server: Any, seed: int
) -> None:
    server = await iec_server()
    files = published_files()
    for name, data in files.items():
        server.publish(name, data)
    rng = random.Random(seed)
    kills = 0
    for _ in range(8):
        child = await spawn_collect(pki.directory, client_root, server.url)
        # Kill after 0, 1 or 2 more stored messages, plus a random delay: in the
        # middle of a get, of a decode, of a commit, or between two messages.
        wait_for = rng.randint(0, 2)
        if wait_for == 0:
            await asyncio.sleep(rng.uniform(0.3, 1.0))  # the interpreter starts in ~0.4 s
        else:
            with contextlib.suppress(TimeoutError):
                for _ in range(wait_for):
                    if not (await child.line(timeout=20)).startswith("stored"):
                        break
            await asyncio.sleep(rng.uniform(0, 0.2))
        if await child.kill() == -signal.SIGKILL:
            kills += 1
    last = await spawn_collect(pki.directory, client_root, server.url)
    assert await last.wait() == 0
    assert kills > 0

    assert folder(client_root, SpoolState.INBOX) == files
    assert folder(client_root, SpoolState.ARCHIVE) == {}
    with Ledger(client_root / "ledger.sqlite3") as ledger:
        codes = [e.code for e in server.ledger.coded_entries("CREC")]
        assert ledger.iec_cursor(SERVER_ID) == max(codes)
        for name in files:
            events = [e.kind for e in ledger.events_for(SERVER_ID, name)]
            assert events.count(EventKind.STORED) == 1, (name, events)
            assert EventKind.DUPLICATE not in events, (name, events)


async def test_killed_between_store_and_ledger_keeps_one_copy(
    pki: DevPki, client_root: Path, iec_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await iec_server()
    files = published_files()
    names = list(files)[:3]
    for name in names:
        server.publish(name, files[name])
    config = iec_client_config(pki, client_root, server.url)

    class Died(BaseException):
        """Stands for the kill: nothing after it runs."""

    real = Ledger.record_received

    def dies_on_second(self: Ledger, peer: str, name: str, *args: Any, **kwargs: Any) -> None:
        if name == names[1]:
            raise Died  # after the rename into inbox/, before the transaction
        real(self, peer, name, *args, **kwargs)

    with Ledger(client_root / "ledger.sqlite3") as ledger:
        monkeypatch.setattr(Ledger, "record_received", dies_on_second)
        with pytest.raises(Died):
            await ClientRunner(config, ledger).collect(SERVER_ID)
        assert set(folder(client_root, SpoolState.INBOX)) == set(names[:2])
        first_code = server.ledger.coded_entry_by_name("CREC", names[0]).code  # type: ignore[union-attr]
        assert ledger.iec_cursor(SERVER_ID) == first_code
        monkeypatch.setattr(Ledger, "record_received", real)
        summary = await ClientRunner(config, ledger).collect(SERVER_ID)
        assert summary.stored == names[1:]  # the second one fetched again, then deduplicated
        assert folder(client_root, SpoolState.INBOX) == {n: files[n] for n in names}
        assert folder(client_root, SpoolState.ARCHIVE) == {}
        assert [e.kind for e in ledger.events_for(SERVER_ID, names[1])].count(EventKind.STORED) == 1


class KillAt(Progress):
    """Kills ``pid`` once ``threshold`` bytes of the put went out."""

    def __init__(self, pid: int, threshold: int) -> None:
        super().__init__()
        self.pid, self.threshold, self.killed = pid, threshold, False

    def advance(self, size: int) -> None:
        super().advance(size)
        if not self.killed and self.bytes_done >= self.threshold:
            self.killed = True
            os.kill(self.pid, signal.SIGKILL)


async def test_push_with_the_server_killed_mid_put_delivers_exactly_once(
    pki: DevPki, client_root: Path, tmp_path: Path
) -> None:
    server_root = tmp_path / "server-spool"
    server, port = await spawn_server(pki.directory, server_root)
    url = f"https://localhost:{port}/ServiceEME"
    config = iec_client_config(pki, client_root, url, deliver="push", retry_delay=60)
    sending = Spool(client_root).peer(SERVER_ID).ensure().dir(SpoolState.SENDING)
    data = bz2_payload(7, 6_000_000)
    (sending / "CUR_CREC_0086_20240101.0.bz2").write_bytes(data)
    try:
        with Ledger(client_root / "ledger.sqlite3") as ledger:
            progress = KillAt(server.pid, len(data) // 2)
            with pytest.raises(PeerConnectionError):
                await ClientRunner(config, ledger).push(SERVER_ID, progress=progress)
            assert progress.killed and await server.wait() == -signal.SIGKILL
            state = ledger.push_state(SERVER_ID, "CUR_CREC_0086_20240101.0.bz2")
            assert state is not None and state.attempts == 1
            # Restarted on the same spool and port; the retry is due a minute later.
            server, _ = await spawn_server(pki.directory, server_root, port)
            later = ClientRunner(config, ledger, now=lambda: utc_now() + timedelta(minutes=2))
            summary = await later.push(SERVER_ID)
            assert summary.delivered == ["CUR_CREC_0086_20240101.0.bz2"]
            # And once more, as if the answer had been lost: still one copy.
            (sending / "CUR_CREC_0086_20240101.0.bz2").write_bytes(data)
            assert (await later.push(SERVER_ID)).delivered == ["CUR_CREC_0086_20240101.0.bz2"]
    finally:
        await server.kill()
    inbox = server_root / "CREC" / "inbox"
    assert {p.name: p.read_bytes() for p in inbox.iterdir()} == {
        "CUR_CREC_0086_20240101.0.bz2": data
    }
    assert not any((server_root / "CREC" / "archive").glob("*"))
