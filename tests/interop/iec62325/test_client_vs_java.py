"""Our 504 client (``concentrador ls|collect|push|time`` and ``ClientRunner``) against
our independent Java 504 server (``EmeServer``: JAX-WS RI + the JDK's XMLDSig).

Everything runs over mutual TLS with the dev PKI: we are node 0086 (its
client certificate), the Java server is peer CREC and signs its answers with
CREC's client certificate, the DN our config expects of CREC. The Java server
shares no code with ours, so this is what proves that our list/get/put/query,
our signatures and our verification of theirs interoperate. The assertions
are on both sides' disks (md5 of every file), the client's ledger (the code
cursor) and the Java server's own log.
"""

from __future__ import annotations

import asyncio
import bz2
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from concentrador.cli.client import _publish_outbox
from concentrador.client.runner import ClientRunner
from concentrador.config import load_config
from concentrador.spool.layout import Spool
from concentrador.spool.ledger import Ledger
from tests.interop.conftest import incompressible_bzip2, md5_of, po1011_text, run_cli
from tests.interop.iec62325.eme_java import EmeJava, EmeJavaServer, start_eme_java_server

pytestmark = pytest.mark.interop

MIB = 1024 * 1024
CREC_DN = "CN=crec-client-1,CN=CREC,OU=Concentradores,O=REE,C=es"
CLI_TIMEOUT = 180
BLOCK_SIZE = 1_500_000  # v2.3 would cut PUSHED into blocks; 504 puts it whole

CUR = "F1_CREC_20240601_20240602.0.bz2"
INC = "I1_CREC_20240601.0.bz2"
MAG = "A5_CREC_20240601.0.bz2"
LARGE = "F5_CREC_20240601.0.bz2"  # several MB: ~4.3 MB of base64 in one element
PUSHED = "P1_0086_20240801.0.bz2"
PUSHED_SMALL = "F1_0086_20240801_20240802.0.bz2"


def bz2_text(rows: int, seed: int) -> bytes:
    return bz2.compress(po1011_text(rows, seed))


def originals() -> dict[str, tuple[bytes, str | None]]:
    """Name -> (bytes, the Java outbox sub-folder = its Type; None = default CUR)."""
    return {
        CUR: (bz2_text(300, seed=31), None),
        INC: (bz2_text(40, seed=32), "INC"),
        MAG: (bz2_text(10, seed=33), "MAG"),
        LARGE: (incompressible_bzip2(3 * MIB + 200_000, seed=34), None),
    }


def write_config(path: Path, pki: Path, spool: Path, url: str, soap: str = "1.1") -> Path:
    """Node 0086 calling peer CREC over 504; signatures required both ways."""
    path.write_text(
        f'[node]\nid = "0086"\nspool = "{spool}"\ntimezone = "Europe/Madrid"\n'
        f"block_size = {BLOCK_SIZE}\n\n"
        f'[server]\nlisten = "127.0.0.1:0"\ncert = "{pki}/server.pem"\n'
        f'key = "{pki}/server.key"\nclient_ca = "{pki}/ca.pem"\n\n'
        '[admin]\nlisten = "127.0.0.1:0"\n\n'
        f'[client]\ncert = "{pki}/client.pem"\nkey = "{pki}/client.key"\n'
        f'ca = "{pki}/ca.pem"\ntimeout = 60\nretries = 0\nretry_delay = 0\n\n'
        f'[[peers]]\nid = "CREC"\ndn = ["{CREC_DN}"]\nurl = "{url}"\n'
        f'protocol = "iec62325-504"\nsignatures = "required"\nsoap_version = "{soap}"\n'
        'deliver = "push"\n'
    )
    return path


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(config, *args, timeout=CLI_TIMEOUT)


def inbox_of(spool: Path) -> dict[str, bytes]:
    folder = Spool(spool).peer("CREC").dir("inbox")
    if not folder.is_dir():
        return {}
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def cursor_of(spool: Path) -> int:
    with Ledger(Spool(spool).ledger_path) as ledger:
        return ledger.iec_cursor("CREC")


@dataclass(frozen=True)
class CliLeg:
    server: EmeJavaServer
    spool: Path
    files: dict[str, bytes]
    pushed: dict[str, bytes]
    time: subprocess.CompletedProcess[str]
    ls: subprocess.CompletedProcess[str]
    collect: subprocess.CompletedProcess[str]
    inbox_after_first: dict[str, bytes]
    cursor_after_first: int
    collect_again: subprocess.CompletedProcess[str]
    gets_after_first: int
    gets_after_second: int
    push: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def leg(
    eme_java: EmeJava, dev_pki: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CliLeg]:
    """The CLI as an operator runs it, SOAP 1.1, against a Java server that requires
    signed puts (so a stored put proves the JDK verified our signature)."""
    tmp = tmp_path_factory.mktemp("client-vs-java")
    spool = tmp / "spool"
    published = originals()
    pushed = {
        PUSHED: incompressible_bzip2(2 * MIB + 100_000, seed=35),
        PUSHED_SMALL: bz2_text(200, seed=36),
    }
    with start_eme_java_server(eme_java, dev_pki, tmp / "eme", put_signature="required") as server:
        for name, (data, file_type) in published.items():
            server.publish(name, data, file_type=file_type)
        config = write_config(tmp / "concentrador.toml", dev_pki, spool, server.url)
        time_run = cli(config, "time", "CREC")
        ls_run = cli(config, "ls", "CREC")
        collect = cli(config, "collect", "CREC")
        inbox_after_first = inbox_of(spool)
        cursor_after_first = cursor_of(spool)
        gets_after_first = len(server.events("get"))
        collect_again = cli(config, "collect", "CREC")
        gets_after_second = len(server.events("get"))
        outbox = Spool(spool).peer("CREC").ensure().dir("outbox")
        for name, data in pushed.items():
            (outbox / name).write_bytes(data)
        push = cli(config, "push", "CREC")
        yield CliLeg(
            server,
            spool,
            {name: data for name, (data, _) in published.items()},
            pushed,
            time_run,
            ls_run,
            collect,
            inbox_after_first,
            cursor_after_first,
            collect_again,
            gets_after_first,
            gets_after_second,
            push,
        )


def test_time_asks_the_java_server_its_clock(leg: CliLeg) -> None:
    assert leg.time.returncode == 0, leg.time.stderr[-3000:]
    lines = leg.time.stdout.splitlines()
    assert lines[0].startswith("CREC: ")
    offset = re.search(r"^offset: ([+-]\d+) s", leg.time.stdout, re.MULTILINE)
    assert offset is not None, leg.time.stdout
    assert abs(int(offset.group(1))) <= 5  # same machine, same clock
    assert "WARNING" not in leg.time.stdout


def test_ls_lists_every_published_message_with_its_code_and_type(leg: CliLeg) -> None:
    assert leg.ls.returncode == 0, leg.ls.stderr[-3000:]
    rows = leg.ls.stdout.splitlines()
    assert rows[0].split()[:2] == ["CODE", "TYPE"]
    assert rows[-1] == "4 message(s)"
    listed = {row.split()[-1]: (int(row.split()[0]), row.split()[1]) for row in rows[1:-1]}
    assert set(listed) == set(leg.files)
    assert listed[INC][1] == "INC" and listed[MAG][1] == "MAG" and listed[CUR][1] == "CUR"
    assert sorted(code for code, _ in listed.values()) == [1, 2, 3, 4]


def test_collect_stores_every_file_once_and_intact(leg: CliLeg) -> None:
    assert leg.collect.returncode == 0, leg.collect.stderr[-3000:]
    assert "4 stored" in leg.collect.stdout, leg.collect.stdout
    stored = leg.inbox_after_first
    assert sorted(stored) == sorted(leg.files)
    assert {n: md5_of(d) for n, d in stored.items()} == {n: md5_of(d) for n, d in leg.files.items()}
    assert len(leg.files[LARGE]) > 3 * MIB
    # Each get answer carried the JDK's signature and our client verified it.
    verified = re.findall(
        r"stored (\S+) \(code \d+, \d+ bytes, signed by ([^)]*)\)", leg.collect.stderr
    )
    assert sorted(name for name, _ in verified) == sorted(leg.files)
    assert {signer for _, signer in verified} == {CREC_DN}
    # Each message was fetched exactly once (no retry, no refetch).
    assert leg.gets_after_first == 4
    # No leftovers of the streamed base64 in .work/.
    work = Spool(leg.spool).peer("CREC").work_dir
    assert not [p for p in work.iterdir() if p.name.startswith("iec-get-")]


def test_collect_advances_the_cursor_and_records_the_clock(leg: CliLeg) -> None:
    assert leg.cursor_after_first == 4
    with Ledger(Spool(leg.spool).ledger_path) as ledger:
        for name in leg.files:
            assert ledger.received("CREC", name) is not None
        status = ledger.status("CREC")
    assert status["last_cycle_result"].startswith("ok: ")
    assert abs(float(status["clock_offset_seconds"])) <= 5


def test_second_collect_fetches_nothing(leg: CliLeg) -> None:
    assert leg.collect_again.returncode == 0, leg.collect_again.stderr[-3000:]
    assert "0 stored" in leg.collect_again.stdout
    assert "0 fetched" in leg.collect_again.stdout
    assert leg.gets_after_second == leg.gets_after_first
    assert cursor_of(leg.spool) == 4
    assert inbox_of(leg.spool).keys() == leg.files.keys()


def test_java_server_saw_our_list_after_the_cursor(leg: CliLeg) -> None:
    # One "list=AFTER COUNT" line per list call: ls and the first collect asked
    # after 0 (4 messages), the second collect after its cursor 4 (none).
    lists = leg.server.events("list")
    assert lists == ["0 4", "0 4", "4 0"], lists


def test_push_delivers_whole_files_into_the_java_inbox(leg: CliLeg) -> None:
    assert leg.push.returncode == 0, leg.push.stderr[-3000:] + leg.push.stdout
    assert "2 delivered" in leg.push.stdout, leg.push.stdout
    received = {p.name: md5_of(p.read_bytes()) for p in leg.server.inbox.iterdir()}
    assert received == {n: md5_of(d) for n, d in leg.pushed.items()}
    # 504 has no blocks: the 2 MB file went in one put under its own name.
    puts = sorted(line.split()[0] for line in leg.server.events("put"))
    assert puts == sorted(leg.pushed)
    # Our spool keeps v2.3's block files in delivered/ (NAME.k_n): all of them.
    delivered = {p.name for p in Spool(leg.spool).peer("CREC").dir("delivered").iterdir()}
    assert delivered == {PUSHED_SMALL, f"{PUSHED}.1_2", f"{PUSHED}.2_2"}
    assert not list(Spool(leg.spool).peer("CREC").dir("sending").iterdir())


def test_our_signed_puts_were_verified_by_the_jdk(leg: CliLeg) -> None:
    # The Java server was started with put_signature="required": an unsigned
    # or badly signed put would be HAND-007; it logs the signer it verified.
    # Our client signs every request (list, get and query too), so each call
    # logged a verified signer; the two puts are among them.
    signers = leg.server.events("signer")
    requests = leg.server.events("request")
    assert len(signers) == len(requests) > len(leg.pushed)
    assert all("CN=0086" in signer for signer in signers), signers
    assert requests.count("create Compressed") == len(leg.pushed), requests
    assert not leg.server.events("fault")


async def test_runner_in_process_soap12(eme_java: EmeJava, dev_pki: Path, tmp_path: Path) -> None:
    """``ClientRunner`` in this process, SOAP 1.2 (``/ServiceEME12``): collect, then
    nothing, then only the new message; and a push through the same runner."""
    spool = tmp_path / "spool"
    published = originals()
    with start_eme_java_server(
        eme_java, dev_pki, tmp_path / "eme", put_signature="required"
    ) as server:
        for name, (data, file_type) in published.items():
            server.publish(name, data, file_type=file_type)
        config = load_config(
            write_config(tmp_path / "c.toml", dev_pki, spool, server.url12, soap="1.2")
        )
        spool.mkdir()
        with Ledger(Spool(spool).ledger_path) as ledger:
            runner = ClientRunner(config, ledger)
            first = await runner.collect("CREC")
            assert sorted(first.stored) == sorted(published)
            assert first.clock_offset is not None and abs(first.clock_offset) < 5
            assert {n: md5_of(d) for n, d in inbox_of(spool).items()} == {
                n: md5_of(d) for n, (d, _) in published.items()
            }
            assert ledger.iec_cursor("CREC") == 4

            again = await runner.collect("CREC")
            assert (again.listed, again.fetched, again.stored) == (0, 0, [])

            late = bz2_text(50, seed=37)
            server.publish("F1_CREC_20240605_20240606.0.bz2", late)
            third = await runner.collect("CREC")
            assert third.stored == ["F1_CREC_20240605_20240606.0.bz2"]
            assert ledger.iec_cursor("CREC") == 5
            assert len(server.events("get")) == 5

            # Push through the runner: sending/ is filled the way `push` does it.
            outbox = Spool(spool).peer("CREC").ensure().dir("outbox")
            data = incompressible_bzip2(300_000, seed=38)
            (outbox / PUSHED).write_bytes(data)
            # The outbox pipeline of `concentrador push` (compress, split, sending/).
            peer = config.peer_by_id("CREC")
            assert peer is not None
            await asyncio.to_thread(_publish_outbox, config, peer, ledger)
            summary = await runner.push("CREC")
            assert summary.delivered and not summary.failed, summary.line()
        assert (server.inbox / PUSHED).read_bytes() == data
        assert all("CN=0086" in s for s in server.events("signer"))


def test_signer_that_is_not_the_peer_is_refused_and_nothing_stored(
    eme_java: EmeJava, dev_pki: Path, tmp_path: Path
) -> None:
    """The Java server signs with OTRO's key (a valid certificate of our CA, but
    not the DN configured for CREC): our collect refuses, stores nothing, and
    the cursor stays at 0, so the messages are fetched once the signer is right."""
    spool = tmp_path / "spool"
    directory = tmp_path / "eme"
    with start_eme_java_server(eme_java, dev_pki, directory, signer="OTRO-client") as server:
        server.publish(CUR, bz2_text(100, seed=39))
        server.publish(LARGE, incompressible_bzip2(MIB, seed=40))
        config = write_config(tmp_path / "c.toml", dev_pki, spool, server.url)
        refused = cli(config, "collect", "CREC")
        port = server.port
        server.stop()
    assert refused.returncode != 0, refused.stdout
    last = refused.stderr.strip().splitlines()[-1]
    assert "answer signer refused" in last and "CN=OTRO" in last, refused.stderr[-3000:]
    assert "not a dn of peer CREC" in last
    assert inbox_of(spool) == {}
    assert cursor_of(spool) == 0
    work = Spool(spool).peer("CREC").work_dir
    assert not [p for p in work.iterdir() if p.name.startswith("iec-get-")]

    # The same server, now signing as CREC: everything arrives.
    with start_eme_java_server(eme_java, dev_pki, directory, port=port) as server:
        ok = cli(config, "collect", "CREC")
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert sorted(inbox_of(spool)) == sorted([CUR, LARGE])
    assert cursor_of(spool) == 2


def test_unsigned_get_answers_are_refused_when_signatures_are_required(
    eme_java: EmeJava, dev_pki: Path, tmp_path: Path
) -> None:
    """A Java server that signs nothing: list answers need no signature, but a
    get answer must be signed, so the cycle stops at the first message."""
    spool = tmp_path / "spool"
    with start_eme_java_server(eme_java, dev_pki, tmp_path / "eme", signer=None) as server:
        server.publish(CUR, bz2_text(100, seed=44))
        config = write_config(tmp_path / "c.toml", dev_pki, spool, server.url)
        run = cli(config, "collect", "CREC")
        gets = server.events("get")
    # The unsigned list was read (REE's own client never checks list answers);
    # the get was tried once (retries = 0) and its answer refused: the cycle
    # stopped there, a failure (non-zero exit, one line saying where and why).
    assert run.returncode != 0, run.stdout
    last = run.stderr.strip().splitlines()[-1]
    assert f"collection stopped at code 1 ({CUR}): " in last, run.stderr[-3000:]
    assert "skipped" not in last
    assert gets == [f"1 {CUR}"]
    assert inbox_of(spool) == {}
    assert cursor_of(spool) == 0
    work = Spool(spool).peer("CREC").work_dir
    assert not [p for p in work.iterdir() if p.name.startswith("iec-get-")]
    with Ledger(Spool(spool).ledger_path) as ledger:
        stuck = ledger.status("CREC").get("iec_stuck", "")
    assert stuck.startswith(f"code 1 ({CUR}): "), stuck
    assert "the answer is not signed and signatures = required" in stuck
