"""The README's two-node demo, end to end: two real ``concentrador serve``
processes over real mutual TLS on loopback, set up by ``demo/setup.sh``.

1. A file dropped into A's outbox for B is collected by B, verified, stored
   in B's inbox and confirmed: it moves to A's ``delivered/`` and leaves A's
   listing.
2. A 20 MB random file (incompressible, so > 8 MB compressed: 3 blocks) is
   pushed by B's daemon to A block by block and rebuilt in A's inbox.

Collection schedules are crontabs with minute granularity
(``concentrador.daemon.schedules``), so the default test triggers B's
collection with the one-shot ``concentrador collect 0086`` (deterministic,
seconds) and proves separately that B's daemon scheduled the cron job (the
next run it recorded for ``status``). Waiting for a real cron firing takes up
to a minute: that is ``test_collection_fires_on_the_schedule``, run with
``CONCENTRADOR_E2E_CRON=1``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.demo_nodes import (
    Demo,
    make_demo,
    run_setup,
    sha256_of,
    write_random_file,
)

MADRID = ZoneInfo("Europe/Madrid")
# A crontab that cannot fire while the test runs (Jan 1st, 00:00), so the
# one-shot collection below never races a scheduled one.
NEVER_DURING_THE_TEST = "0 0 1 1 *"
SMALL_NAME = "F1_0086_20240101_20240102.0"
SMALL_CONTENT = b"CUPS;20240101;1;2;3\nCUPS;20240101;2;4;6\n"
BIG_NAME = "P1_CREC_20240101_20240131.0"
BIG_SIZE = 20_000_000
BLOCK_SIZE = 8_000_000  # node.block_size in demo/node-*.toml.in


@pytest.fixture
def demo_factory(tmp_path: Path) -> Iterator:
    """``demo_factory(collect=CRON)`` → a set-up :class:`Demo`; every daemon it
    started is killed at teardown, whatever happened in the test."""
    demos: list[Demo] = []

    def create(collect: str) -> Demo:
        demo = make_demo(tmp_path / f"run{len(demos)}", collect=collect)
        demos.append(demo)
        return demo

    yield create
    for demo in demos:
        for node in demo.nodes:
            node.kill()


def stop_cleanly(demo: Demo) -> None:
    """SIGTERM both daemons: exit 0, no error logged, nothing left in ``.work/``."""
    for node in demo.nodes:
        assert node.terminate() == 0, demo.diagnostics()
    for node in demo.nodes:
        log = node.log_text()
        assert "stopped" in log.splitlines()[-1], demo.diagnostics()
        bad = [line for line in log.splitlines() if " ERROR " in line or "Traceback" in line]
        assert bad == [], f"node {node.node_id} logged errors: {bad}"
        work = node.directory / "spool" / node.peer_id / ".work"
        assert sorted(p.name for p in work.iterdir()) == ["peer.lock"]


@pytest.mark.slow
def test_two_node_demo_collect_and_push(demo_factory) -> None:
    demo: Demo = demo_factory(NEVER_DURING_THE_TEST)
    a, b = demo.a, demo.b
    demo.start()
    # Both drops first: B's daemon compresses and pushes the large file while
    # the small one goes through A's publication and B's collection.
    original = write_random_file(b.folder("outbox") / BIG_NAME, BIG_SIZE)
    (a.folder("outbox") / SMALL_NAME).write_bytes(SMALL_CONTENT)

    # B's daemon scheduled its collection from the config: it recorded the
    # cron's next run for `status` (a fresh ledger has none otherwise).
    next_new_year = f"{datetime.now(MADRID).year + 1}-01-01T00:00:00+01:00"
    demo.wait_for(
        "B's collect job to be scheduled",
        lambda: b.status()["facts"]["next_run_at"] == next_new_year,
        timeout=15,
    )
    # Both TLS servers answer the other node's client certificate.
    clock = a.cli("time", "CREC")
    assert clock.returncode == 0 and clock.stdout.startswith("CREC: "), clock.stderr

    # -- 1. A publishes a file for B; B collects, stores and confirms it. ---------
    published = SMALL_NAME + ".bz2"
    demo.wait_for("A to publish the file", lambda: a.names("published") == [published], 20)
    listing = b.cli("ls", "0086")
    assert listing.returncode == 0, listing.stderr
    assert published in listing.stdout and "1 file(s)" in listing.stdout

    collected = b.cli("collect", "0086")
    assert collected.returncode == 0, collected.stderr + demo.diagnostics()
    assert "1 listed, 1 stored, 1 confirmed" in collected.stdout

    assert b.names("inbox") == [published]
    stored = b.folder("inbox") / published
    assert sha256_of([stored], decompress=True) == sha256_of_bytes(SMALL_CONTENT)
    # Confirmed: A moved it published/ -> delivered/ (the very bytes B stored)
    # and no longer lists it.
    assert a.names("published") == []
    assert a.names("delivered") == [published]
    assert (a.folder("delivered") / published).read_bytes() == stored.read_bytes()
    relisted = b.cli("ls", "0086")
    assert relisted.returncode == 0 and published not in relisted.stdout
    assert "0 file(s)" in relisted.stdout

    # -- 2. B pushes a large file to A in 3 blocks; A rebuilds it. ----------------
    big = BIG_NAME + ".bz2"
    blocks = [f"{big}.{k}_3" for k in (1, 2, 3)]
    demo.wait_for("A to rebuild the pushed file", lambda: a.names("inbox") == [big], 60)
    demo.wait_for("B to file the blocks as delivered", lambda: b.names("delivered") == blocks, 10)

    sent = [b.folder("delivered") / name for name in blocks]
    assert [p.stat().st_size for p in sent[:2]] == [BLOCK_SIZE, BLOCK_SIZE]
    assert sum(p.stat().st_size for p in sent) > 2 * BLOCK_SIZE  # really 3 blocks' worth
    rebuilt = a.folder("inbox") / big
    # A's inbox holds exactly B's compressed bytes, and they decompress to the original.
    assert sha256_of([rebuilt]) == sha256_of(sent)
    assert sha256_of([rebuilt], decompress=True) == original
    assert b.names("archive") == [BIG_NAME]  # B kept the operator's plain original
    assert a.names("partial") == []
    assert a.names("archive") == sorted([SMALL_NAME, *blocks])  # inputs kept for audit
    assert b.names("sending") == [] and b.names("failed") == []
    assert "1 delivered, 3 block(s) sent" in b.status()["facts"]["last_push_result"]

    stop_cleanly(demo)
    # Passed: drop the ~80 MB of spool; a failed run keeps everything to look at.
    shutil.rmtree(demo.directory)


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("CONCENTRADOR_E2E_CRON"),
    reason="waits up to a minute for a real cron firing; set CONCENTRADOR_E2E_CRON=1",
)
def test_collection_fires_on_the_schedule(demo_factory) -> None:
    """The demo as shipped (``collect = "* * * * *"``): no one-shot command,
    B's own schedule collects the file within the next minute."""
    demo: Demo = demo_factory("* * * * *")
    a, b = demo.a, demo.b
    demo.start()
    (a.folder("outbox") / SMALL_NAME).write_bytes(SMALL_CONTENT)
    published = SMALL_NAME + ".bz2"
    demo.wait_for("A to publish the file", lambda: a.names("published") == [published], 20)
    seconds_to_next_minute = 60 - datetime.now(MADRID).second
    started = time.monotonic()
    demo.wait_for(
        "B's scheduled collection", lambda: a.names("delivered") == [published],
        timeout=seconds_to_next_minute + 20,
    )  # fmt: skip
    assert time.monotonic() - started < seconds_to_next_minute + 20
    assert b.names("inbox") == [published]
    assert sha256_of([b.folder("inbox") / published], decompress=True) == sha256_of_bytes(
        SMALL_CONTENT
    )
    # A moves the file to delivered/ before B's cycle has returned and logged.
    line = "collection cycle: 1 listed, 1 stored, 1 confirmed"
    demo.wait_for("B to log its cycle", lambda: line in b.log_text(), 10)
    facts = b.status()["facts"]
    assert "1 confirmed" in (facts["last_cycle_result"] or "")
    stop_cleanly(demo)


def test_setup_rerun_keeps_the_pki_and_rewrites_the_configs(tmp_path: Path) -> None:
    demo = make_demo(tmp_path / "run", collect="*/5 * * * *")
    ca = (demo.directory / "certs" / "ca.pem").read_bytes()
    again = run_setup("--dir", str(demo.directory), "--port-a", "1234", "--port-b", "1235")
    assert again.returncode == 0, again.stderr
    assert "dev PKI kept" in again.stdout
    assert (demo.directory / "certs" / "ca.pem").read_bytes() == ca
    assert 'listen = "127.0.0.1:1234"' in demo.a.config.read_text()
    b_config = demo.b.config.read_text()
    assert 'url = "https://localhost:1234/"' in b_config
    assert 'collect = "* * * * *"' in b_config  # the default again


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--collect", 'x"; rm -rf /'], "is not a crontab expression"),
        (["--port-a", "70000"], "'70000' is not a TCP port"),
        (["--port-a", "9000", "--port-b", "9000"], "must differ"),
        (["--bogus"], "unknown argument '--bogus'"),
    ],
)
def test_setup_refuses_bad_arguments(tmp_path: Path, args: list[str], message: str) -> None:
    done = run_setup("--dir", str(tmp_path / "run"), *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert not (tmp_path / "run").exists()  # refused before writing anything


def sha256_of_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
