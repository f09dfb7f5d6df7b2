"""Push cycles: every enviarFichero code and fault takes its §4.5 path."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from concentrador.client.errors import AuthenticationRefused, PeerConnectionError
from concentrador.client.push import PushSummary, RetryRefused, requeue_failed
from concentrador.client.runner import ClientRunner
from concentrador.config.model import Config
from concentrador.protocol.faults import Fault
from concentrador.spool.layout import PeerSpool, Spool, SpoolState
from concentrador.spool.ledger import Ledger, PublishedEntry
from tests.client.conftest import SERVER_ID, bz2_payload, client_config

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def queue(config: Config, ledger: Ledger, name: str, pieces: list[bytes]) -> PeerSpool:
    """Put a file in sending/ the way the publisher does (blocks when several pieces)."""
    peer_spool = Spool(config.node.spool).peer(SERVER_ID).ensure()
    count = len(pieces)
    entries = []
    for k, piece in enumerate(pieces, 1):
        block = name if count == 1 else f"{name}.{k}_{count}"
        (peer_spool.dir(SpoolState.SENDING) / block).write_bytes(piece)
        md5 = hashlib.md5(piece).hexdigest()
        entries.append(
            PublishedEntry(SERVER_ID, block, name, "CUR", len(piece), md5, T0, "sending")
        )
    ledger.record_published(entries)
    return peer_spool


def files(peer_spool: PeerSpool, state: SpoolState) -> list[str]:
    return [p.name for p in peer_spool.files(state)]


@pytest.fixture
def setup(fake_peer: Any, pki: Any, tmp_path: Path, client_ledger: Ledger):  # type: ignore[no-untyped-def]
    config = client_config(
        pki, tmp_path / "client-spool", fake_peer.url, deliver="push", retries=2, retry_delay=600
    )
    clock = Clock()
    runner = ClientRunner(config, client_ledger, now=clock)
    return config, runner, clock


async def push(runner: ClientRunner) -> PushSummary:
    return await runner.push(SERVER_ID)


@pytest.mark.parametrize("code", [0, 6])
async def test_delivered_codes(setup: Any, fake_peer: Any, client_ledger: Ledger, code: int,
                               caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    config, runner, _ = setup
    data = bz2_payload(1)
    peer_spool = queue(config, client_ledger, "A.bz2", [data])
    fake_peer.peer.push_script = [code]
    summary = await push(runner)
    assert summary.delivered == ["A.bz2"]
    assert files(peer_spool, SpoolState.DELIVERED) == ["A.bz2"]
    assert files(peer_spool, SpoolState.SENDING) == []
    assert {e.state for e in client_ledger.entries_of(SERVER_ID, "A.bz2")} == {"delivered"}
    assert fake_peer.peer.pushed == [("A.bz2", data)]
    warned = any("load window" in r.getMessage() for r in caplog.records)
    assert warned == (code == 6)


@pytest.mark.parametrize(
    "answer",
    [1, 2, 7, Fault("Server.Generico", "disk full"), Fault("Server.Otro", "?")],
    ids=["code1", "code2", "unknown-code", "Server.Generico", "unknown-server-fault"],
)
async def test_retryable_answers_keep_the_file_and_schedule_a_retry(
    setup: Any, fake_peer: Any, client_ledger: Ledger, answer: int | Fault
) -> None:
    config, runner, clock = setup
    peer_spool = queue(config, client_ledger, "A.bz2", [bz2_payload(2)])
    fake_peer.peer.push_script = [answer]
    summary = await push(runner)
    assert summary.retrying == ["A.bz2"]
    assert files(peer_spool, SpoolState.SENDING) == ["A.bz2"]
    state = client_ledger.push_state(SERVER_ID, "A.bz2")
    assert state is not None and state.attempts == 1
    assert state.next_attempt_at == clock.now + timedelta(seconds=600)


@pytest.mark.parametrize(
    "answer",
    [3, 4, 5, Fault("Client.Autenticacion", "unknown"), Fault("Client.Raro", "no")],
    ids=["code3", "code4", "code5", "Client.Autenticacion", "unknown-client-fault"],
)
async def test_escalating_answers_move_the_file_to_failed(
    setup: Any, fake_peer: Any, client_ledger: Ledger, answer: int | Fault
) -> None:
    config, runner, _ = setup
    peer_spool = queue(config, client_ledger, "A.bz2", [bz2_payload(3)])
    fake_peer.peer.push_script = [answer]
    if isinstance(answer, Fault) and answer.code == "Client.Autenticacion":
        with pytest.raises(AuthenticationRefused):
            await push(runner)
        assert SERVER_ID in runner.blocked
    else:
        summary = await push(runner)
        assert summary.failed == ["A.bz2"]
    assert files(peer_spool, SpoolState.FAILED) == ["A.bz2", "A.bz2.reason"]
    reason = (peer_spool.dir(SpoolState.FAILED) / "A.bz2.reason").read_text()
    expected = f"codigo {answer}" if isinstance(answer, int) else answer.code
    assert expected in reason and reason.count("\n") == 1 and " at 20" in reason
    assert files(peer_spool, SpoolState.SENDING) == []
    assert client_ledger.status(SERVER_ID)["push_failed_count"] == "1"
    assert {e.state for e in client_ledger.entries_of(SERVER_ID, "A.bz2")} == {"failed"}
    assert client_ledger.push_state(SERVER_ID, "A.bz2") is None


async def test_retries_wait_for_the_delay_then_escalate(
    setup: Any, fake_peer: Any, client_ledger: Ledger
) -> None:
    config, runner, clock = setup
    peer_spool = queue(config, client_ledger, "A.bz2", [bz2_payload(4)])
    fake_peer.peer.push_script = [2, 2, 2]
    assert (await push(runner)).retrying == ["A.bz2"]
    clock.now += timedelta(seconds=599)
    assert (await push(runner)).not_due == ["A.bz2"]  # too early: nothing sent
    assert len(fake_peer.peer.pushed) == 1
    clock.now += timedelta(seconds=1)
    assert (await push(runner)).retrying == ["A.bz2"]
    # Retry state survives a restart: a new runner on a reopened ledger.
    ledger = Ledger(client_ledger.path)
    try:
        clock.now += timedelta(seconds=600)
        summary = await ClientRunner(config, ledger, now=clock).push(SERVER_ID)
    finally:
        ledger.close()
    assert summary.failed == ["A.bz2"]  # 3 failures > retries=2
    assert len(fake_peer.peer.pushed) == 3
    reason = (peer_spool.dir(SpoolState.FAILED) / "A.bz2.reason").read_text()
    assert "gave up after 3" in reason


async def test_blocks_in_order_and_delivered_only_when_all_accepted(
    setup: Any, fake_peer: Any, client_ledger: Ledger
) -> None:
    config, runner, clock = setup
    pieces = [bz2_payload(k, 5000) for k in range(3)]
    peer_spool = queue(config, client_ledger, "B.bz2", pieces)
    fake_peer.peer.push_script = [0, 2]
    summary = await push(runner)
    assert summary.retrying == ["B.bz2"]
    assert files(peer_spool, SpoolState.SENDING) == ["B.bz2.1_3", "B.bz2.2_3", "B.bz2.3_3"]
    assert files(peer_spool, SpoolState.DELIVERED) == []
    clock.now += timedelta(seconds=600)
    summary = await push(runner)
    assert summary.delivered == ["B.bz2"]
    assert [n for n, _ in fake_peer.peer.pushed] == [
        "B.bz2.1_3", "B.bz2.2_3", "B.bz2.1_3", "B.bz2.2_3", "B.bz2.3_3",
    ]  # fmt: skip
    assert files(peer_spool, SpoolState.DELIVERED) == ["B.bz2.1_3", "B.bz2.2_3", "B.bz2.3_3"]
    # DIME uploads carry a Content-Length, never chunked, never Expect.
    uploads = [h for h in fake_peer.peer.headers if h["SOAPAction"] == '"urn:enviarFichero"']
    assert all("Content-Length" in h and "Transfer-Encoding" not in h for h in uploads)
    assert not any("Expect" in h for h in uploads)


async def test_connection_error_counts_an_attempt_and_ends_the_cycle(
    pki: Any, tmp_path: Path, client_ledger: Ledger
) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = client_config(
        pki, tmp_path / "client-spool", f"http://127.0.0.1:{port}/", deliver="push", retries=1
    )
    queue(config, client_ledger, "A.bz2", [bz2_payload(5)])
    queue(config, client_ledger, "B.bz2", [bz2_payload(6)])
    runner = ClientRunner(config, client_ledger, now=Clock())
    with pytest.raises(PeerConnectionError):
        await runner.push(SERVER_ID)
    state = client_ledger.push_state(SERVER_ID, "A.bz2")
    assert state is not None and state.attempts == 1 and "connection" in (state.last_error or "")
    assert client_ledger.push_state(SERVER_ID, "B.bz2") is None  # never tried
    assert "failed" in client_ledger.status(SERVER_ID)["last_push_result"]


async def test_retry_command_moves_a_failed_file_back(
    setup: Any, fake_peer: Any, client_ledger: Ledger
) -> None:
    config, runner, _ = setup
    peer_spool = queue(config, client_ledger, "B.bz2", [bz2_payload(7), bz2_payload(8)])
    fake_peer.peer.push_script = [4]
    assert (await push(runner)).failed == ["B.bz2"]
    assert len(files(peer_spool, SpoolState.FAILED)) == 4  # 2 blocks + 2 reasons
    with pytest.raises(RetryRefused):
        requeue_failed(peer_spool, client_ledger, "nope.bz2")

    moved = requeue_failed(peer_spool, client_ledger, "B.bz2")
    assert [p.name for p in moved] == ["B.bz2.1_2", "B.bz2.2_2"]
    assert files(peer_spool, SpoolState.FAILED) == []
    assert len(files(peer_spool, SpoolState.ARCHIVE)) == 2  # the reasons, kept
    summary = await push(runner)
    assert summary.delivered == ["B.bz2"]


async def test_failed_inbound_blocks_are_not_pushed_back(setup: Any, client_ledger: Ledger) -> None:
    config, _, _ = setup
    peer_spool = Spool(config.node.spool).peer(SERVER_ID).ensure()
    failed = peer_spool.dir(SpoolState.FAILED)
    (failed / "R.bz2.1_2").write_bytes(b"x")
    (failed / "R.bz2.1_2.reason").write_text("reassembly of R.bz2 from 2 blocks failed\n")
    with pytest.raises(RetryRefused, match="not a file we pushed"):
        requeue_failed(peer_spool, client_ledger, "R.bz2")
    assert (failed / "R.bz2.1_2").exists()
