"""The one status model (spool/status.py, spool/node_status.py) that the CLI and console read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from concentrador.cli import status as cli_status
from concentrador.config.model import ClientConfig, Config, NodeConfig, PeerConfig, ServerConfig
from concentrador.pki import DevPki, init_dev_pki
from concentrador.spool import node_status, status
from concentrador.spool.layout import Spool, SpoolState
from concentrador.spool.ledger import Ledger

NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    return init_dev_pki(tmp_path_factory.mktemp("pki"), node_id="0086", peers=("CREC",))


@pytest.fixture
def config(pki: DevPki, tmp_path: Path) -> Config:
    d = pki.directory
    server = ServerConfig("127.0.0.1", 0, d / "server.pem", d / "server.key", d / "ca.pem",
                          pki.crl_path)  # fmt: skip
    client = ClientConfig(d / "CREC-client.pem", d / "CREC-client.key", d / "ca.pem")
    node = NodeConfig(id="0086", spool=tmp_path / "spool", timezone=ZoneInfo("Europe/Madrid"))
    peers = (PeerConfig(id="CREC", deliver="push"),)
    Spool(node.spool).ensure(["CREC"])
    return Config(tmp_path / "c.toml", node, server, client, peers)


def test_cli_reads_the_spool_model(config: Config) -> None:
    assert cli_status.collect_status is status.collect_status
    spool = Spool(config.node.spool)
    (spool.peer("CREC").dir(SpoolState.SENDING) / "P1.bz2").write_bytes(b"x")
    with Ledger(spool.ledger_path) as ledger:
        later = NOW + timedelta(minutes=5)
        ledger.record_push_attempt("CREC", "P1.bz2", error="codigo 5", next_attempt_at=later)
        ledger.set_status("CREC", "last_cycle_result", "failed: connection refused")
        ledger.set_status("CREC", "cycle_failures_in_a_row", "3")
        ledger.set_status("CREC", "clock_offset_seconds", "+45")
    model = status.collect_status(config)
    (crec,) = model.peers
    assert crec.counts["sending"] == 1 and crec.deliver == "push"
    assert [(w.original, w.attempts, w.last_error) for w in crec.push_backlog] == [
        ("P1.bz2", 1, "codigo 5")
    ]
    assert "push retries pending (1)" in cli_status.format_text(model)

    node = node_status.collect_node_status(config, now=NOW)
    warnings = node_status.collect_warnings(model, node)
    assert [(w.subject, w.message) for w in warnings] == [
        ("CREC", "last 3 collection cycles failed (latest: failed: connection refused)"),
        ("CREC", "clock offset +45 s"),
    ]


def test_a_peer_is_warned_about_after_n_failed_cycles_in_a_row(config: Config) -> None:
    spool = Spool(config.node.spool)
    node = node_status.collect_node_status(config, now=NOW)

    def warned(**facts: str) -> list[str]:
        with Ledger(spool.ledger_path) as ledger:
            for key, value in facts.items():
                ledger.set_status("CREC", key, value)
        model = status.collect_status(config)
        return [w.message for w in node_status.collect_warnings(model, node) if w.subject == "CREC"]

    # One or two failures are retried by the next cycle: not yet loud.
    assert warned(last_push_result="failed: codigo 5", push_failures_in_a_row="2") == []
    assert node_status.FAILED_CYCLES_WARN == 3
    assert warned(push_failures_in_a_row="3") == [
        "last 3 push cycles failed (latest: failed: codigo 5)"
    ]
    assert warned(last_cycle_result="failed: timeout", cycle_failures_in_a_row="4") == [
        "last 4 collection cycles failed (latest: failed: timeout)",
        "last 3 push cycles failed (latest: failed: codigo 5)",
    ]
    # A cycle that succeeds resets the count (client/runner.py), and the warning goes.
    assert warned(cycle_failures_in_a_row="0", push_failures_in_a_row="0") == []
    # N is a parameter of the warnings, for callers that want another threshold.
    with Ledger(spool.ledger_path) as ledger:
        ledger.set_status("CREC", "cycle_failures_in_a_row", "1")
    model = status.collect_status(config)
    found = node_status.collect_warnings(model, node, failed_cycles_warn=1)
    assert [w.message for w in found] == [
        "last 1 collection cycle failed (latest: failed: timeout)"
    ]


def test_node_facts_and_their_warnings(config: Config) -> None:
    node = node_status.collect_node_status(config, now=NOW)
    roles = {c.role: c for c in node.certificates}
    assert set(roles) == {
        "server", "server CA (client certificates)", "client", "client CA (peers)",
    }  # fmt: skip
    server = roles["server"]
    assert server.error is None and server.subject and server.not_after is not None
    assert server.days_left is not None and 800 < server.days_left < 830
    assert node.crl is not None and node.crl.next_update is not None and not node.crl.overdue
    assert node.disk is not None and node.disk.total_bytes >= node.disk.free_bytes > 0
    empty = status.collect_status(config)
    assert node_status.collect_warnings(empty, node) == []

    # Near the leaf certificates' end: loud; past the CRL's next update: loud.
    late = node_status.collect_node_status(config, now=server.not_after - timedelta(days=10))
    messages = [w.message for w in node_status.collect_warnings(empty, late)]
    assert sum("expires in 10 days" in m for m in messages) == 2  # server and client
    stale = node_status.collect_node_status(config, now=NOW + timedelta(days=4000))
    found = node_status.collect_warnings(empty, stale)
    assert any(w.subject == "CRL" and "past its next update" in w.message for w in found)
    assert sum("expired" in w.message for w in found) == 4


def test_unreadable_certificate_is_a_fact_not_a_crash(config: Config, tmp_path: Path) -> None:
    broken = tmp_path / "broken.pem"
    broken.write_text("not a certificate")
    server = config.server.__class__("127.0.0.1", 0, broken, None, None)
    odd = Config(config.path, config.node, server, None, config.peers)
    node = node_status.collect_node_status(odd, now=NOW)
    assert [c.role for c in node.certificates] == ["server"]
    assert node.certificates[0].error and node.crl is None
    warnings = node_status.collect_warnings(status.collect_status(odd), node)
    assert warnings[0].subject == "server" and "cannot read" in warnings[0].message
    assert node.to_json()["certificates"][0]["path"] == str(broken)
