"""The operator CLI's program: --config placement, check-config, certs init, dispatch."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest

from concentrador.cli import program as cli
from concentrador.cli.program import main
from concentrador.config import Config, load_config

REPO = Path(__file__).resolve().parents[2]
CREC_DN = "CN=crec-client-1,CN=CREC,OU=Concentradores,O=REE,C=es"


@pytest.fixture(scope="module")
def dev_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shipped config/ with `certs init config/certs` run in it."""
    root = tmp_path_factory.mktemp("tree")
    (root / "config").mkdir()
    shutil.copy(REPO / "config" / "concentrador.toml", root / "config")
    assert main(["certs", "init", str(root / "config" / "certs")]) == 0
    return root


@pytest.fixture
def config_path(dev_tree: Path) -> Path:
    return dev_tree / "config" / "concentrador.toml"


def test_certs_init_prints_the_dns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["certs", "init", str(tmp_path / "c"), "--node-id", "0099", "--peers", "A1,B2"]) == 0
    )
    out = capsys.readouterr().out
    assert "CN=0099-client-1,CN=0099,OU=Concentradores,O=REE,C=es" in out
    assert "CN=b2-client-1,CN=B2,OU=Concentradores,O=REE,C=es" in out
    assert "revoked" in out and "changeit" in out
    assert (tmp_path / "c" / "A1-client.p12").is_file()


def test_certs_init_refuses_to_overwrite(
    dev_tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    certs = dev_tree / "config" / "certs"
    before = (certs / "ca.pem").read_bytes()
    assert main(["certs", "init", str(certs)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"concentrador: certs init: {certs} already holds ca.pem; use --force to "
        "replace the dev PKI"
    ]
    assert (certs / "ca.pem").read_bytes() == before


def test_shipped_default_config_passes_check_config(
    config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config_path), "check-config"]) == 0
    out = capsys.readouterr().out
    certs = config_path.parent / "certs"
    assert f'cert = "{certs / "server.pem"}"' in out
    assert f'spool = "{config_path.parent.parent / "spool"}"' in out
    assert f'dn = ["{CREC_DN}"]' in out
    # The shipped peer DN matches the dev PKI's CREC client certificate.
    config = load_config(config_path)
    from cryptography import x509

    crec = x509.load_pem_x509_certificate((certs / "CREC-client.pem").read_bytes())
    peer = config.peer_by_dn(crec)
    assert peer is not None and peer.id == "CREC"
    own = x509.load_pem_x509_certificate((certs / "client.pem").read_bytes())
    assert config.peer_by_dn(own) is None


def test_config_option_before_or_after_the_command(
    config_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "missing.toml")
    assert main(["check-config", "--config", str(config_path)]) == 0
    # The subcommand's value wins over the global one.
    assert main(["--config", missing, "check-config", "--config", str(config_path)]) == 0
    capsys.readouterr()
    assert main(["--config", str(config_path), "check-config", "--config", missing]) == 2
    assert capsys.readouterr().err == f"concentrador: config: {missing}: config file not found\n"


def test_config_from_environment_then_default_path(
    config_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CONCENTRADOR_CONFIG", str(config_path))
    monkeypatch.chdir(tmp_path)
    assert main(["check-config"]) == 0
    assert f"# source: {config_path}" in capsys.readouterr().out
    monkeypatch.delenv("CONCENTRADOR_CONFIG")
    assert main(["check-config"]) == 2
    assert "config/concentrador.toml: config file not found" in capsys.readouterr().err
    monkeypatch.chdir(config_path.parent.parent)
    assert main(["check-config"]) == 0


def test_bad_config_prints_one_line_per_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[node]\nid = "0086"\nblock_size = 5\ncolour = "blue"\n[server]\ninsecure_http = true\n'
    )
    assert main(["check-config", "--config", str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "concentrador: config: node.colour: unknown key",
        "concentrador: config: node.block_size: 5 is out of range 1048576..8000000",
    ]


def test_insecure_http_config_warns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[node]\nid = "0086"\n[server]\ninsecure_http = true\n')
    assert main(["check-config", "--config", str(path)]) == 0
    assert "insecure_http = true: no TLS" in capsys.readouterr().err


def test_commands_dispatch_with_config_and_args(
    config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, Config, argparse.Namespace]] = []

    def ls(config: Config, args: argparse.Namespace) -> int:
        calls.append(("ls", config, args))
        return 7

    def serve(config: Config, args: argparse.Namespace) -> int:
        calls.append(("serve", config, args))
        return 0

    monkeypatch.setitem(cli.COMMANDS, "ls", ls)
    monkeypatch.setitem(cli.COMMANDS, "serve", serve)
    assert main(["ls", "CREC", "--types", "cur,INC", "--config", str(config_path)]) == 7
    assert main(["--config", str(config_path), "serve"]) == 0
    (name, config, args), (serve_name, serve_config, _) = calls
    assert (name, serve_name) == ("ls", "serve")
    assert config.path == config_path and serve_config == config
    assert (args.peer, args.types) == ("CREC", ["CUR", "INC"])


def test_unexpected_exception_is_one_line_unless_verbose(
    config_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def push(config: Config, args: argparse.Namespace) -> int:
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setitem(cli.COMMANDS, "push", push)
    assert main(["--config", str(config_path), "push", "CREC"]) == 1
    assert capsys.readouterr().err == "concentrador: push: RuntimeError: disk on fire\n"
    assert main(["--config", str(config_path), "push", "CREC", "-v"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert err.endswith("concentrador: push: RuntimeError: disk on fire\n")


def test_unknown_peer_is_a_usage_error(
    config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config_path), "retry", "NOPE", "file.bz2"]) == 2
    assert capsys.readouterr().err == (
        "concentrador: retry: unknown peer 'NOPE' (configured: CREC)\n"
    )


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["ls"],
        ["ls", "CREC", "--types", "XYZ"],
        ["ls", "CREC", "--types", "TOD,CUR"],
        ["certs"],
        ["retry", "CREC"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "usage:" in capsys.readouterr().err


def test_every_command_is_wired(config_path: Path) -> None:
    parser = cli.build_parser()
    operands = {"serve": [], "status": [], "retry": ["CREC", "f"], "republish": ["CREC", "f"]}
    operands["review"] = ["CREC", "f"]
    for command in cli.COMMANDS:
        argv = [command, *operands.get(command, ["CREC"]), "--config", str(config_path)]
        args = parser.parse_args(argv)
        assert args.command_name == command and args.config == str(config_path)
    assert set(cli.COMMANDS) >= {"serve", "status", "collect", "push", "ls", "time", "retry"}
