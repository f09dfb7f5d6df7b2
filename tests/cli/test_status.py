"""``concentrador status``: counts per spool state, ledger notes, failed reasons."""

from __future__ import annotations

import argparse
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from concentrador.cli.program import main as cli_main
from concentrador.cli.status import COUNTED_STATES, collect_status, format_text, run
from concentrador.config import load_config
from concentrador.spool.layout import Spool, SpoolState
from concentrador.spool.ledger import Ledger

# Files per state, distinct counts so a mix-up of columns shows.
LAYOUT = {
    SpoolState.PUBLISHED: 3,
    SpoolState.SENDING: 1,
    SpoolState.DELIVERED: 5,
    SpoolState.EXPIRED: 2,
    SpoolState.INBOX: 4,
    SpoolState.MANUAL: 6,
    SpoolState.PARTIAL: 7,
}


@pytest.fixture
def populated(config_path: Path, tmp_path: Path) -> Path:
    spool = Spool(tmp_path / "spool")
    spool.ensure(["CREC"])
    peer = spool.peer("CREC")
    for state, count in LAYOUT.items():
        for i in range(count):
            (peer.dir(state) / f"F1_0086_{i}.bz2").write_bytes(b"x")
        (peer.dir(state) / ".hidden.part").write_bytes(b"temp files are not counted")
    outbox = peer.dir(SpoolState.OUTBOX)
    (outbox / "P1_0086_1").write_text("a")
    (outbox / "CUR").mkdir()
    (outbox / "CUR" / "anything.txt").write_text("b")
    (outbox / "mystery.dat").write_text("c")
    failed = peer.dir(SpoolState.FAILED)
    (failed / "F5_bad.bz2").write_bytes(b"x")
    (failed / "F5_bad.bz2.reason").write_text(
        "2024-01-01T00:00:00Z codigo 4: type not allowed\nmore\n"
    )
    (failed / "F5_noreason.bz2").write_bytes(b"x")
    # A peer folder left over from a peer removed from the config.
    spool.peer("GONE").ensure()
    (spool.peer("GONE").dir(SpoolState.INBOX) / "old.bz2").write_bytes(b"x")
    with Ledger(spool.ledger_path) as ledger:
        ledger.note_unclassified("CREC", "outbox/mystery.dat", "no file type for 'mystery.dat'")
        ledger.set_status("CREC", "last_cycle_result", "ok: 3 files")
        ledger.set_status("CREC", "clock_offset_seconds", "-1.5")
        ledger.set_status("CREC", "custom_fact", "42")
    return config_path


def test_collect_status_counts_each_state(populated: Path) -> None:
    status = collect_status(load_config(populated))
    crec, gone = status.peers
    expected = {state.value: LAYOUT.get(state, 0) for state in COUNTED_STATES}
    expected.update(outbox=3, failed=2)
    assert crec.counts == expected
    assert crec.configured and crec.deliver == "publish"
    assert [(f.name, f.reason) for f in crec.failed] == [
        ("F5_bad.bz2", "2024-01-01T00:00:00Z codigo 4: type not allowed"),
        ("F5_noreason.bz2", "(no reason recorded)"),
    ]
    assert [(u.path, u.reason) for u in crec.unclassified] == [
        ("outbox/mystery.dat", "no file type for 'mystery.dat'")
    ]
    assert crec.facts == {
        "last_cycle_result": "ok: 3 files",
        "last_cycle_at": None,
        "next_run_at": None,
        "clock_offset_seconds": "-1.5",
        "custom_fact": "42",
    }
    assert gone.id == "GONE" and not gone.configured and gone.counts["inbox"] == 1


def test_text_output_is_aligned_and_says_never(populated: Path) -> None:
    text = format_text(collect_status(load_config(populated)))
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("PEER"))
    row = next(line for line in lines if line.startswith("CREC "))
    assert header.split()[1:] == [s.value.upper() for s in COUNTED_STATES]
    assert row.split()[1:] == ["3", "3", "1", "5", "2", "2", "4", "6", "7"]
    # Right-aligned under their headers: each column ends at the same offset.
    ends = [header.index(s.value.upper()) + len(s.value) for s in COUNTED_STATES]
    assert [row[end - 1] for end in ends] == list("331522467")
    assert any("last cycle at" in line and line.rstrip().endswith("never") for line in lines)
    assert any("outbox/mystery.dat" in line for line in lines)
    assert any("F5_bad.bz2" in line and "type not allowed" in line for line in lines)


def test_json_output_parses_and_matches(populated: Path) -> None:
    out = io.StringIO()
    assert run(load_config(populated), argparse.Namespace(json=True), out=out) == 0
    data = json.loads(out.getvalue())
    crec = data["peers"][0]
    assert crec["id"] == "CREC" and crec["counts"]["partial"] == 7
    assert crec["facts"]["next_run_at"] is None
    assert datetime.strptime(data["generated_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def test_status_without_a_spool_creates_nothing(config_path: Path, tmp_path: Path) -> None:
    status = collect_status(load_config(config_path))
    assert status.ledger is None
    assert status.peers[0].counts["outbox"] == 0
    assert not (tmp_path / "spool").exists()


def test_cli_status_command(populated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["--config", str(populated), "status"]) == 0
    out = capsys.readouterr().out
    assert any(line.startswith("CREC ") for line in out.splitlines())
