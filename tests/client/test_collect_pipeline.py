"""Pipelined collection: a whole file's commit runs while the next file is
fetched and it is confirmed right after that fetch, yet never before its
store is durable and recorded in the ledger; a failed store fails the cycle
without confirming that file; background ledger writes are awaited."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from concentrador.client.collect import CollectionSummary, Collector
from concentrador.client.session import PeerSession
from concentrador.config.model import Config
from concentrador.protocol.messages import ConfirmacionRecepcionFichero, RecogerFichero
from concentrador.spool.inbound.store import InboundWriter
from concentrador.spool.layout import PeerSpool, Spool, SpoolState
from concentrador.spool.ledger import Ledger
from tests.client.conftest import MADRID, SERVER_ID, bz2_payload, client_config
from tests.client.fake_peer import FakePeer

NAMES = ["A.bz2", "B.bz2", "C.bz2", "D.bz2"]
HOLD = 10.0  # seconds a held commit waits for the next fetch (a deadline, not a delay)

Event = tuple[str, str]


@dataclass
class RecordingPeer(FakePeer):
    """The fake peer, noting every fetch and confirmation in one shared log.

    At each confirmation it also looks at *our* side: is the file already in
    the client's ledger and inbox, with the bytes it served?
    """

    events: list[Event] = field(default_factory=list)
    served: dict[str, bytes] = field(default_factory=dict)
    client_ledger: Ledger | None = None
    client_inbox: Path | None = None
    fetch_seen: dict[str, threading.Event] = field(default_factory=dict)
    stored_when_confirmed: dict[str, bool] = field(default_factory=dict)

    def offer(self, names: list[str]) -> None:
        for seed, name in enumerate(names):
            self.served[name] = bz2_payload(100 + seed)
            self.fetch_seen[name] = threading.Event()
        self.files = dict(self.served)

    async def recoger(self, request: web.Request, message: RecogerFichero) -> web.StreamResponse:
        self.events.append(("fetch", message.nombre_fichero))
        self.fetch_seen[message.nombre_fichero].set()
        return await super().recoger(request, message)

    def confirmar(
        self, request: web.Request, message: ConfirmacionRecepcionFichero
    ) -> web.StreamResponse:
        name = message.nombre_fichero
        self.events.append(("confirm", name))
        self.stored_when_confirmed[name] = is_stored(self, name)
        return super().confirmar(request, message)


def is_stored(peer: RecordingPeer, name: str) -> bool:
    """In our ledger *and* in our inbox with the very bytes the peer served."""
    assert peer.client_ledger is not None and peer.client_inbox is not None
    entry = peer.client_ledger.received(SERVER_ID, name)
    path = peer.client_inbox / name
    if entry is None or not path.is_file():
        return False
    return hashlib.md5(path.read_bytes()).hexdigest() == entry.md5 == md5(peer.served[name])


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@dataclass
class Setup:
    peer: RecordingPeer
    config: Config
    ledger: Ledger
    marked_at_return: dict[str, bool] = field(default_factory=dict)
    """Confirmed name -> its "confirmed" mark was in the ledger when ``run()`` ended."""

    @property
    def peer_spool(self) -> PeerSpool:
        return Spool(self.config.node.spool).peer(SERVER_ID)

    def confirmed(self) -> list[str]:
        return [name for name, code in self.peer.confirmations if code == 0]

    def leftovers(self) -> list[str]:
        work = self.peer_spool.work_dir
        return sorted(p.name for p in work.iterdir() if p.name != "peer.lock")


@pytest.fixture
async def setup(pki: Any, tmp_path: Path, client_ledger: Ledger) -> AsyncIterator[Setup]:
    peer = RecordingPeer(fecha_hora=datetime.now(MADRID).replace(tzinfo=None))
    runner = web.AppRunner(peer.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    config = client_config(pki, tmp_path / "client-spool", f"http://127.0.0.1:{port}/cpcscc")
    peer.client_ledger = client_ledger
    peer.client_inbox = Spool(config.node.spool).peer(SERVER_ID).dir(SpoolState.INBOX)
    try:
        yield Setup(peer, config, client_ledger)
    finally:
        await runner.cleanup()


CommitHook = Callable[[str], None]


async def run_cycle(
    setup: Setup,
    *,
    before_commit: CommitHook | None = None,
    confirmed_mark_delay: float = 0.0,
) -> CollectionSummary:
    """One collection cycle with the store commit spied on.

    ``before_commit(name)`` runs in the commit's worker thread; it may block
    or raise. With ``confirmed_mark_delay`` the ledger's "confirmed" mark
    takes that long (in its worker thread); :attr:`Setup.marked_at_return`
    then tells whether it was awaited.
    """
    peer_config = setup.config.peer_by_id(SERVER_ID)
    assert peer_config is not None
    ledger = setup.ledger
    real_mark = ledger.mark_confirmed

    def slow_mark(peer: str, *names: str, at: datetime | None = None) -> bool:
        time.sleep(confirmed_mark_delay)
        return real_mark(peer, *names, at=at)

    async with PeerSession.open(setup.config, peer_config) as session:
        collector = Collector(
            session,
            peer_config,
            setup.peer_spool,
            ledger,
            retries=1,
            timezone=MADRID,
            clock_warn_seconds=120,
        )
        real_commit = collector.store.commit

        def commit(writer: InboundWriter, name: str) -> Path:
            setup.peer.events.append(("commit-start", name))
            if before_commit is not None:
                before_commit(name)
            path = real_commit(writer, name)
            setup.peer.events.append(("commit-done", name))
            return path

        real_group = collector.store.commit_group

        def commit_group(writers: list[InboundWriter]) -> list[Path]:
            # Files verified while a commit ran are committed together (commits.py).
            for writer in writers:
                setup.peer.events.append(("commit-start", writer.name))
                if before_commit is not None:
                    before_commit(writer.name)
            paths = real_group(writers)
            setup.peer.events.extend(("commit-done", writer.name) for writer in writers)
            return paths

        collector.store.commit = commit  # type: ignore[method-assign]
        collector.store.commit_group = commit_group  # type: ignore[method-assign]
        ledger.mark_confirmed = slow_mark  # type: ignore[method-assign]
        try:
            summary = await collector.run()
        finally:
            # Checked at once: nothing else runs on the loop before this.
            setup.marked_at_return = {
                name: (entry := ledger.received(SERVER_ID, name)) is not None
                and entry.confirmed_at is not None
                for name in setup.confirmed()
            }
            del ledger.mark_confirmed
    return summary


def wire_calls(events: list[Event]) -> list[Event]:
    return [event for event in events if event[0] in ("fetch", "confirm")]


async def test_confirmation_trails_by_one_and_follows_the_durable_store(setup: Setup) -> None:
    setup.peer.offer(NAMES)
    overlapped: dict[str, bool] = {}

    def hold_until_next_fetch(name: str) -> None:
        # The commit of file N waits for the fetch of N+1 to reach the peer:
        # it only gets through if the two really run at the same time.
        following = NAMES.index(name) + 1
        if following < len(NAMES):
            overlapped[name] = setup.peer.fetch_seen[NAMES[following]].wait(HOLD)

    summary = await run_cycle(setup, before_commit=hold_until_next_fetch)

    assert wire_calls(setup.peer.events) == [
        ("fetch", "A.bz2"),
        ("fetch", "B.bz2"),
        ("confirm", "A.bz2"),
        ("fetch", "C.bz2"),
        ("confirm", "B.bz2"),
        ("fetch", "D.bz2"),
        ("confirm", "C.bz2"),
        ("confirm", "D.bz2"),
    ]
    assert overlapped == {"A.bz2": True, "B.bz2": True, "C.bz2": True}
    # Never confirmed before its commit (fsync, rename, ledger row) was done.
    for name in NAMES:
        events = setup.peer.events
        assert events.index(("commit-done", name)) < events.index(("confirm", name))
    assert setup.peer.stored_when_confirmed == dict.fromkeys(NAMES, True)
    assert summary.stored == summary.confirmed == NAMES
    assert setup.peer.confirmations == [(name, 0) for name in NAMES]
    assert setup.marked_at_return == dict.fromkeys(NAMES, True)
    assert setup.leftovers() == []


async def test_confirmed_marks_written_in_the_background_are_awaited(setup: Setup) -> None:
    setup.peer.offer(NAMES[:2])
    summary = await run_cycle(setup, confirmed_mark_delay=0.3)
    assert summary.confirmed == NAMES[:2]
    assert setup.marked_at_return == dict.fromkeys(NAMES[:2], True)
    assert setup.ledger.unconfirmed(SERVER_ID) == []


async def test_disk_full_on_one_commit_fails_the_cycle_without_confirming_it(
    setup: Setup,
) -> None:
    setup.peer.offer(NAMES)

    def disk_full_on_b(name: str) -> None:
        if name == "B.bz2":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OSError) as failure:
        await run_cycle(setup, before_commit=disk_full_on_b, confirmed_mark_delay=0.2)
    assert failure.value.errno == errno.ENOSPC

    peer = setup.peer
    # The failed file: not confirmed, not stored, no temp file left behind.
    assert "B.bz2" not in peer.stored_when_confirmed
    assert setup.ledger.received(SERVER_ID, "B.bz2") is None
    assert not (peer.client_inbox / "B.bz2").exists()  # type: ignore[operator]
    assert setup.leftovers() == []
    # The one before it went through, mark included, before the cycle ended.
    assert setup.confirmed() == ["A.bz2"]
    assert setup.marked_at_return == {"A.bz2": True}
    # Nothing is ever confirmed-but-not-stored; a stored file is whole and recorded.
    assert all(peer.stored_when_confirmed.values())
    for name in NAMES:
        in_ledger = setup.ledger.received(SERVER_ID, name) is not None
        in_inbox = (peer.client_inbox / name).exists()  # type: ignore[operator]
        assert in_ledger == in_inbox == is_stored(peer, name), name

    # The next cycle finishes the job: B fetched again, a file stored but not
    # confirmed is confirmed without a second download.
    fetched_before = dict(peer.fetches)
    stored_unconfirmed = [n for n in NAMES if is_stored(peer, n) and n not in setup.confirmed()]
    summary = await run_cycle(setup)
    assert sorted(setup.confirmed()) == NAMES
    assert all(peer.stored_when_confirmed.values())
    assert summary.reconfirmed == stored_unconfirmed
    assert peer.fetches["B.bz2"] == fetched_before["B.bz2"] + 1
    for name in stored_unconfirmed:
        assert peer.fetches[name] == fetched_before[name]
    assert all(is_stored(peer, name) for name in NAMES)
    assert setup.ledger.unconfirmed(SERVER_ID) == []
    assert setup.leftovers() == []


async def test_several_connections_confirm_each_file_once_after_its_commit(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    peer_config = setup.config.peer_by_id(SERVER_ID)
    assert peer_config is not None
    two = dataclasses.replace(peer_config, connections=2)
    monkeypatch.setattr(setup, "config", dataclasses.replace(setup.config, peers=(two,)))
    setup.peer.offer(NAMES)
    summary = await run_cycle(setup)
    assert sorted(summary.stored) == sorted(summary.confirmed) == NAMES
    assert sorted(setup.peer.confirmations) == [(name, 0) for name in NAMES]
    for name in NAMES:
        events = setup.peer.events
        assert events.index(("commit-done", name)) < events.index(("confirm", name))
    assert setup.ledger.unconfirmed(SERVER_ID) == []
    assert setup.leftovers() == []
