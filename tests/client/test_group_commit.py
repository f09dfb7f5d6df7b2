"""Group commit in the collection cycle: files verified while a commit runs are
committed together (one folder fsync, one ledger transaction), and none of
them is confirmed before that whole group is durable; a failure in the group
fails the cycle without confirming any of its files; a cycle that ends after
the group's commit, before its confirmations, is finished by the next one
without fetching again."""

from __future__ import annotations

import dataclasses
import errno
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from concentrador.client import collect
from concentrador.client.commits import GroupCommits
from concentrador.client.download import PendingDownload
from concentrador.spool import durable
from concentrador.spool.inbound.store import InboundWriter
from concentrador.spool.layout import SpoolState
from concentrador.spool.ledger import Ledger
from tests.client.conftest import SERVER_ID
from tests.client.test_collect_pipeline import (  # noqa: F401 (setup: the fixture)
    HOLD,
    NAMES,
    Setup,
    is_stored,
    run_cycle,
    setup,
)

FIRST, REST = NAMES[0], NAMES[1:]


@dataclasses.dataclass
class Spy:
    """What the cycle handed to the committer, and what the commit did."""

    submitted: dict[str, threading.Event]
    inbox_fsyncs: list[str]
    single: list[str]
    groups: list[list[str]]


@pytest.fixture
def spy(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> Iterator[Spy]:  # noqa: F811
    peer_config = setup.config.peer_by_id(SERVER_ID)
    assert peer_config is not None
    four = dataclasses.replace(peer_config, connections=4)
    monkeypatch.setattr(setup, "config", dataclasses.replace(setup.config, peers=(four,)))
    found = Spy({name: threading.Event() for name in NAMES}, [], [], [])

    real_submit = GroupCommits.submit

    def submit(self: GroupCommits, download: PendingDownload, name: str) -> Any:
        future = real_submit(self, download, name)
        found.submitted[name].set()
        return future

    real_fsync_dir = durable.fsync_dir

    def fsync_dir(path: Path | str) -> None:
        if Path(path).name == SpoolState.INBOX.value:
            found.inbox_fsyncs.append(str(path))
        real_fsync_dir(path)

    real_record = Ledger.record_received
    real_group = Ledger.record_received_group

    def record(self: Ledger, peer: str, name: str, *args: Any, **kwargs: Any) -> None:
        found.single.append(name)
        real_record(self, peer, name, *args, **kwargs)

    def record_group(self: Ledger, peer: str, files: Any) -> None:
        found.groups.append([file.name for file in files])
        real_group(self, peer, files)

    monkeypatch.setattr(GroupCommits, "submit", submit)
    monkeypatch.setattr(durable, "fsync_dir", fsync_dir)
    monkeypatch.setattr(Ledger, "record_received", record)
    monkeypatch.setattr(Ledger, "record_received_group", record_group)
    yield found


def hold_first_until_the_rest_wait(spy: Spy) -> Any:
    """A slow first commit: the other files are verified while it runs."""

    def before_commit(name: str) -> None:
        if name == FIRST:
            assert all(spy.submitted[n].wait(HOLD) for n in REST)

    return before_commit


async def test_files_waiting_are_committed_as_one_group(setup: Setup, spy: Spy) -> None:  # noqa: F811
    setup.peer.offer(NAMES)
    summary = await run_cycle(setup, before_commit=hold_first_until_the_rest_wait(spy))

    # The first alone (as before), the three that waited for it together:
    # one inbox fsync and one ledger transaction each.
    assert spy.single == [FIRST]
    assert [sorted(group) for group in spy.groups] == [REST]
    assert len(spy.inbox_fsyncs) == 2
    # Each confirmed once, and only after the commit of its whole group.
    events = setup.peer.events
    group_done = max(events.index(("commit-done", name)) for name in REST)
    for name in REST:
        assert events.index(("confirm", name)) > group_done
    assert events.index(("confirm", FIRST)) > events.index(("commit-done", FIRST))
    assert setup.peer.stored_when_confirmed == dict.fromkeys(NAMES, True)
    assert sorted(summary.confirmed) == NAMES
    assert setup.ledger.unconfirmed(SERVER_ID) == []
    assert setup.leftovers() == []


async def test_disk_full_in_a_group_confirms_none_of_it(
    setup: Setup,  # noqa: F811
    spy: Spy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    setup.peer.offer(NAMES)
    doomed = REST[1]
    real_sync = InboundWriter._sync_and_close

    def sync_and_close(self: InboundWriter) -> None:
        if self.name == doomed:
            fail(self)
        real_sync(self)

    def fail(writer: InboundWriter) -> NoReturn:
        writer._fail("flush", OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))

    monkeypatch.setattr(InboundWriter, "_sync_and_close", sync_and_close)
    with pytest.raises(OSError) as failure:
        await run_cycle(setup, before_commit=hold_first_until_the_rest_wait(spy))
    assert failure.value.errno == errno.ENOSPC

    peer = setup.peer
    # Only the files renamed before the failing one are recorded (durable, unconfirmed).
    assert len(spy.groups) <= 1 and all(doomed not in group for group in spy.groups)
    assert not set(REST) & set(setup.confirmed())
    assert not is_stored(peer, doomed)
    assert all(peer.stored_when_confirmed.values())
    for name in NAMES:
        in_ledger = setup.ledger.received(SERVER_ID, name) is not None
        in_inbox = (peer.client_inbox / name).exists()  # type: ignore[operator]
        assert in_ledger == in_inbox == is_stored(peer, name), name
    assert setup.leftovers() == []

    # The next cycle: the stored ones confirmed without a refetch, the rest fetched.
    monkeypatch.setattr(InboundWriter, "_sync_and_close", real_sync)
    fetched_before = dict(peer.fetches)
    stored = {name: is_stored(peer, name) for name in NAMES}
    summary = await run_cycle(setup)
    assert sorted(setup.confirmed()) == NAMES
    assert set(summary.reconfirmed) <= {name for name in NAMES if stored[name]}
    for name in NAMES:
        fetched = peer.fetches.get(name, 0) - fetched_before.get(name, 0)
        assert fetched == (0 if stored[name] else 1), name
    assert peer.fetches[doomed] == fetched_before[doomed] + 1
    assert all(is_stored(peer, name) for name in NAMES)
    assert setup.ledger.unconfirmed(SERVER_ID) == []
    assert setup.leftovers() == []


async def test_ended_between_group_commit_and_confirmations(
    setup: Setup,  # noqa: F811
    spy: Spy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The "killed after storing, before confirming" case, for a group."""
    setup.peer.offer(NAMES)
    real_init = collect.Collector.__init__

    def init(self: collect.Collector, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        self.on_stored = killed

    def killed(name: str) -> None:
        if name in REST:
            raise RuntimeError(f"killed after storing {name}")

    monkeypatch.setattr(collect.Collector, "__init__", init)
    with pytest.raises(RuntimeError, match="killed"):
        await run_cycle(setup, before_commit=hold_first_until_the_rest_wait(spy))
    assert [sorted(group) for group in spy.groups] == [REST]
    assert not set(REST) & set(setup.confirmed())
    assert all(is_stored(setup.peer, name) for name in NAMES)  # the group was durable

    monkeypatch.setattr(collect.Collector, "__init__", real_init)
    fetched_before = dict(setup.peer.fetches)
    summary = await run_cycle(setup)
    assert set(REST) <= set(summary.reconfirmed)
    assert summary.fetched == 0 and setup.peer.fetches == fetched_before
    assert sorted(setup.confirmed()) == NAMES
    assert setup.ledger.unconfirmed(SERVER_ID) == []
    assert setup.leftovers() == []
