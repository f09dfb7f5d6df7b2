"""The IEC 62325-504 (CPCSCC v3.0) keys: peer profile, signatures, SOAP version,
the endpoint path and ``[signing]``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from concentrador.config import ConfigError, SigningConfig, load_config
from concentrador.config.render import render_config
from tests.config.test_loader import CLIENT, NODE, PEER, SERVER, config_dir, problems, write

__all__ = ["config_dir"]  # the fixture, imported for pytest

PEER_504 = PEER + 'protocol = "iec62325-504"\n'


def test_defaults_are_the_v23_profile(config_dir: Path) -> None:
    config = load_config(write(config_dir, NODE + SERVER + CLIENT + PEER))
    (peer,) = config.peers
    assert (peer.protocol, peer.signatures, peer.soap_version) == ("cpcscc-2.3", "required", "1.1")
    assert not peer.iec62325
    assert config.server.iec62325_path == "/ServiceEME"
    certs = config_dir / "certs"
    assert config.signing == SigningConfig(certs / "client.pem", certs / "client.key")


def test_504_peer_with_every_key(config_dir: Path) -> None:
    text = (
        NODE
        + SERVER
        + 'iec62325_path = "/eme/v3"\n'
        + CLIENT
        + PEER_504
        + 'signatures = "optional"\nsoap_version = "1.2"\n'
    )
    config = load_config(write(config_dir, text))
    (peer,) = config.peers
    assert peer.iec62325
    assert (peer.protocol, peer.signatures, peer.soap_version) == (
        "iec62325-504",
        "optional",
        "1.2",
    )
    assert config.server.iec62325_path == "/eme/v3"


def test_signing_table_overrides_client_and_resolves_paths(config_dir: Path) -> None:
    (config_dir / "sign").mkdir()
    for name in ("s.pem", "s.key"):
        (config_dir / "sign" / name).write_text("placeholder\n")
    text = (
        NODE + SERVER + CLIENT + '[signing]\ncert = "sign/s.pem"\nkey = "sign/s.key"\n' + PEER_504
    )
    config = load_config(write(config_dir, text))
    assert config.signing == SigningConfig(config_dir / "sign/s.pem", config_dir / "sign/s.key")


def test_no_signing_key_for_a_signing_504_peer_is_an_error(config_dir: Path) -> None:
    assert problems(config_dir, NODE + SERVER + PEER_504) == [
        'peers[0].signatures: "required" needs a key to sign with: add [signing] cert and key '
        '(or a [client] section), or set signatures = "off"'
    ]
    # Without signatures no key is needed; and v2.3 peers never need one.
    config = load_config(write(config_dir, NODE + SERVER + PEER_504 + 'signatures = "off"\n'))
    assert config.signing is None
    assert load_config(write(config_dir, NODE + SERVER + PEER)).signing is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            PEER + 'protocol = "iec62325"\n',
            'peers[0].protocol: \'iec62325\' is not one of "cpcscc-2.3", "iec62325-504"',
        ),
        (
            PEER_504 + 'signatures = "yes"\n',
            'peers[0].signatures: \'yes\' is not one of "required", "optional", "off"',
        ),
        (
            PEER_504 + "signatures = true\n",
            "peers[0].signatures: expected a string, got a boolean",
        ),
        (
            PEER_504 + 'soap_version = "1.3"\n',
            'peers[0].soap_version: \'1.3\' is not one of "1.1", "1.2"',
        ),
        (
            PEER_504 + "soap_version = 1.2\n",
            "peers[0].soap_version: expected a string, got a number",
        ),
        (
            PEER_504 + 'soap_action = "urn:{operation}"\n',
            'peers[0].soap_action: only applies to protocol = "cpcscc-2.3" peers '
            '(this one is "iec62325-504")',
        ),
        (
            PEER + 'signatures = "off"\n',
            'peers[0].signatures: only applies to protocol = "iec62325-504" peers '
            '(this one is "cpcscc-2.3")',
        ),
        (
            PEER + 'soap_version = "1.1"\n',
            'peers[0].soap_version: only applies to protocol = "iec62325-504" peers '
            '(this one is "cpcscc-2.3")',
        ),
        (
            PEER + 'protocl = "iec62325-504"\n',
            "peers[0].protocl: unknown key (did you mean 'protocol'?)",
        ),
    ],
)
def test_peer_key_problems(config_dir: Path, text: str, expected: str) -> None:
    assert problems(config_dir, NODE + SERVER + CLIENT + text) == [expected]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"ServiceEME"', "'ServiceEME' must be a path like /ServiceEME"),
        ('"/"', "'/' must be a path like /ServiceEME"),
        ('""', "'' must be a path like /ServiceEME"),
        ('"/Service EME"', "'/Service EME' must be ASCII without spaces, control characters"),
        ('"/ServiceEME?wsdl"', "'/ServiceEME?wsdl' must be ASCII without spaces"),
        ('"/Servicé"', "'/Servicé' must be ASCII"),
        ("5", "expected a string, got an integer"),
    ],
)
def test_endpoint_path_problems(config_dir: Path, value: str, expected: str) -> None:
    text = NODE + SERVER + f"iec62325_path = {value}\n"
    (found,) = problems(config_dir, text)
    assert found.startswith(f"server.iec62325_path: {expected}"), found


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ('[signing]\ncert = "certs/client.pem"\n', ["signing.key: missing (required)"]),
        (
            '[signing]\ncert = "certs/nope.pem"\nkey = "certs/client.key"\n',
            ["signing.cert: file not found: {certs}/nope.pem"],
        ),
        (
            '[signing]\ncert = "certs/client.pem"\nkey = "certs/client.key"\nca = "x"\n',
            ["signing.ca: unknown key"],
        ),
        ("signing = 3\n", ["signing: expected a table, got an integer"]),
    ],
)
def test_signing_problems(config_dir: Path, table: str, expected: list[str]) -> None:
    # A bad [signing] is reported once, never also as "no key" for the 504 peer.
    found = problems(config_dir, table + NODE + SERVER + PEER_504)
    wanted = [line.format(certs=config_dir / "certs") for line in expected]
    assert [p[: len(w)] for p, w in zip(found, wanted, strict=True)] == wanted


def test_rendered_504_config_loads_back_the_same(config_dir: Path) -> None:
    text = (
        NODE
        + SERVER
        + 'iec62325_path = "/v3"\n'
        + CLIENT
        + PEER_504
        + 'signatures = "off"\nsoap_version = "1.2"\n'
        + '[[peers]]\nid = "OLD"\nsoap_action = "{operation}"\n'
    )
    config = load_config(write(config_dir, text))
    rendered = render_config(config)
    assert "[signing]" in rendered
    elsewhere = config_dir.parent / "elsewhere"
    elsewhere.mkdir()
    again = load_config(write(elsewhere, rendered))
    assert (again.server, again.peers, again.signing) == (
        config.server,
        config.peers,
        config.signing,
    )


def test_shipped_example_504_peer_loads_when_uncommented(tmp_path: Path) -> None:
    """The commented [signing] and 504 peer of the example are a valid config."""
    example = (Path(__file__).parents[2] / "config" / "concentrador.example.toml").read_text()
    uncommented = re.sub(
        r"^# (\[signing\]|\[\[peers\]\]|[a-z_0-9]+ = .*)$", r"\1", example, flags=re.MULTILINE
    )
    folder = tmp_path / "etc"
    (folder / "certs").mkdir(parents=True)
    for name in ("server.pem", "server.key", "ca.pem", "ca.crl", "client.pem", "client.key"):
        (folder / "certs" / name).write_text("placeholder\n")
    for name in ("signing.pem", "signing.key"):
        (folder / "certs" / name).write_text("placeholder\n")
    try:
        config = load_config(write(folder, uncommented))
    except ConfigError as exc:  # pragma: no cover - the message is the diagnosis
        pytest.fail(str(exc))
    assert config.signing == SigningConfig(
        folder / "certs" / "signing.pem", folder / "certs" / "signing.key"
    )
    ree3 = config.peer_by_id("REE3")
    assert ree3 is not None and ree3.iec62325
    assert (ree3.signatures, ree3.soap_version) == ("required", "1.1")
    # As shipped (commented), the example has no 504 peer.
    assert all(not peer.iec62325 for peer in load_config(write(folder, example)).peers)
