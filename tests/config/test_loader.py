"""Loading and validating concentrador.toml."""

from __future__ import annotations

import os
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from concentrador.config import ConfigError, load_config, parse_dn, resolve_config_path
from concentrador.config.render import render_config

CERT_FILES = ("server.pem", "server.key", "ca.pem", "ca.crl", "client.pem", "client.key")

NODE = """
[node]
id = "0086"
spool = "../spool"
"""
SERVER = """
[server]
listen = "127.0.0.1:8443"
cert = "certs/server.pem"
key = "certs/server.key"
client_ca = "certs/ca.pem"
crl = "certs/ca.crl"
"""
CLIENT = """
[client]
cert = "certs/client.pem"
key = "certs/client.key"
ca = "certs/ca.pem"
"""
PEER = """
[[peers]]
id = "CREC"
dn = ["CN=crec-client-1,CN=CREC,OU=Concentradores,O=REE,C=es"]
"""


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "etc"
    (folder / "certs").mkdir(parents=True)
    for name in CERT_FILES:
        (folder / "certs" / name).write_text("placeholder\n")
    return folder


def write(folder: Path, text: str) -> Path:
    path = folder / "concentrador.toml"
    path.write_text(text)
    return path


def problems(folder: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(write(folder, text))
    return info.value.problems


def test_minimal_config_gets_defaults_and_absolute_paths(config_dir: Path) -> None:
    config = load_config(write(config_dir, NODE + SERVER + PEER))
    assert config.path == config_dir / "concentrador.toml"
    assert config.node.id == "0086"
    assert config.node.spool == config_dir.parent / "spool"
    assert config.node.timezone == ZoneInfo("Europe/Madrid")
    assert (config.node.publish_days, config.node.block_size) == (30, 8_000_000)
    assert config.node.clock_warn_seconds == 120
    assert config.server.cert == config_dir / "certs" / "server.pem"
    assert (config.server.host, config.server.port) == ("127.0.0.1", 8443)
    assert config.client is None
    (peer,) = config.peers
    assert peer.collect_types == ("TOD",)
    assert peer.deliver == "publish"
    assert peer.load_window is None
    assert peer.soap_action_for("recogerFichero") == "urn:recogerFichero"
    assert peer.header_must_match is True
    assert peer.may_send_participant("0021") and peer.may_send_type("CUR")


def test_full_peer_and_lookups(config_dir: Path) -> None:
    text = (
        NODE
        + SERVER
        + CLIENT
        + """
[filetypes]
prefixes = { "F5" = "CUR", "XYZ" = "INV" }

[[peers]]
id = "CREC"
dn = ["CN=crec-client-1,CN=CREC,OU=Concentradores,O=REE,C=es",
      "/C=es/O=REE/OU=Concentradores/CN=CREC/CN=crec-client-2"]
url = "https://crec.example:8443/"
collect = "*/15 * * * *"
collect_types = ["CUR", "INC"]
deliver = "push"
participants = ["0021", "CEMI"]
allowed_types = ["CUR"]
load_window = "22:00-06:00"
decompress = true
soap_action = "{operation}"
header_must_match = false

[[peers]]
id = "CEMI"
dn = "/C=es/O=REE/OU=Concentradores/CN=CEMI/CN=cemi-client-1"
"""
    )
    config = load_config(write(config_dir, text))
    crec = config.peer_by_id("CREC")
    assert crec is not None and crec.deliver == "push" and crec.decompress
    assert crec.collect == "*/15 * * * *" and crec.collect_types == ("CUR", "INC")
    assert crec.may_send_participant("CEMI") and not crec.may_send_participant("0099")
    assert crec.may_send_type("CUR") and not crec.may_send_type("INC")
    assert str(crec.load_window) == "22:00-06:00"
    assert crec.soap_action_for("enviarFichero") == "enviarFichero"
    assert dict(config.filetypes.prefixes) == {"F5": "CUR", "XYZ": "INV"}
    assert config.peer_by_dn("cn=CREC-CLIENT-2,cn=crec,ou=concentradores,o=ree,c=es") is crec
    assert config.peer_by_dn(parse_dn("/C=es/O=REE/OU=Concentradores/CN=CEMI/CN=cemi-client-1"))
    assert config.peer_by_dn("CN=crec-client-3,CN=CREC,OU=Concentradores,O=REE,C=es") is None
    assert config.peer_by_dn("not a dn") is None
    assert config.peer_by_id("crec") is None  # ids are exact


def test_rendered_config_loads_back_to_the_same_config(config_dir: Path) -> None:
    text = NODE + SERVER + CLIENT + PEER + 'load_window = "06:00-20:00"\nparticipants = ["B", "A"]'
    config = load_config(write(config_dir, text))
    rendered = render_config(config)
    assert str(config_dir / "certs" / "server.pem") in rendered
    assert "CN=crec-client-1,CN=CREC,OU=Concentradores,O=REE,C=es" in rendered
    elsewhere = config_dir.parent / "elsewhere"
    elsewhere.mkdir()
    again = load_config(write(elsewhere, rendered))
    assert (again.node, again.server, again.client, again.peers, again.filetypes) == (
        config.node,
        config.server,
        config.client,
        config.peers,
        config.filetypes,
    )


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ('[node]\nid = "0086"\nspooll = "x"\n', "node.spooll: unknown key (did you mean 'spool'?)"),
        ("[nodes]\n", "nodes: unknown key (did you mean 'node'?)"),
        (
            '[node]\nid = "0086"\nblock_size = 1048575\n',
            "node.block_size: 1048575 is out of range 1048576..8000000",
        ),
        (
            '[node]\nid = "0086"\nblock_size = 8000001\n',
            "node.block_size: 8000001 is out of range 1048576..8000000",
        ),
        (
            '[node]\nid = "0086"\nblock_size = "8M"\n',
            "node.block_size: expected an integer, got a string",
        ),
        (
            '[node]\nid = "0086"\npublish_days = true\n',
            "node.publish_days: expected an integer, got a boolean",
        ),
        (
            '[node]\nid = "0086"\ntimezone = "Mars/Olympus"\n',
            "node.timezone: unknown time zone 'Mars/Olympus'",
        ),
        ('[node]\nid = "../x"\n', "node.id: '../x' is not a valid node id"),
        ('[node]\nspool = "s"\n', "node.id: missing (required)"),
    ],
)
def test_node_problems(config_dir: Path, extra: str, expected: str) -> None:
    found = problems(config_dir, extra + SERVER)
    assert any(p.startswith(expected) for p in found), found


def test_missing_certificate_file_names_the_key_and_path(config_dir: Path) -> None:
    (config_dir / "certs" / "ca.pem").unlink()
    found = problems(config_dir, NODE + SERVER + CLIENT)
    ca = config_dir / "certs" / "ca.pem"
    assert found == [f"server.client_ca: file not found: {ca}", f"client.ca: file not found: {ca}"]


@pytest.mark.parametrize(
    ("listen", "host", "port"),
    [("0.0.0.0:8443", "0.0.0.0", 8443), ("[::1]:0", "::1", 0), ("localhost:443", "localhost", 443)],
)
def test_listen_forms(config_dir: Path, listen: str, host: str, port: int) -> None:
    config = load_config(write(config_dir, NODE + SERVER.replace("127.0.0.1:8443", listen)))
    assert (config.server.host, config.server.port) == (host, port)
    assert (
        load_config(write(config_dir, render_config(config))).server.listen == config.server.listen
    )


@pytest.mark.parametrize("listen", ["8443", "localhost", "host:99999", "a b:1", ":8443"])
def test_bad_listen(config_dir: Path, listen: str) -> None:
    found = problems(config_dir, NODE + SERVER.replace("127.0.0.1:8443", listen))
    assert len(found) == 1 and found[0].startswith("server.listen: ")


def test_insecure_http_needs_no_certificates(config_dir: Path) -> None:
    config = load_config(write(config_dir, NODE + "[server]\ninsecure_http = true\n"))
    assert config.server.insecure_http and config.server.cert is None
    found = problems(config_dir, NODE + "[server]\n")
    assert found == [
        "server.cert: missing (required)",
        "server.key: missing (required)",
        "server.client_ca: missing (required)",
    ]


def test_duplicate_peer_ids_and_shared_dns(config_dir: Path) -> None:
    text = (
        NODE
        + SERVER
        + PEER
        + """
[[peers]]
id = "crec"
dn = ["/C=ES/O=ree/OU=Concentradores/CN=CREC/CN=CREC-CLIENT-1"]
"""
    )
    assert problems(config_dir, text) == [
        "peers[1].id: duplicate peer id 'crec' (also peers[0])",
        "peers[1].dn[0]: DN 'CN=CREC-CLIENT-1,CN=CREC,OU=Concentradores,O=ree,C=ES' is already "
        "claimed by peers[0].dn[0] (peer 'CREC')",
    ]


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ('dn = ["C=es,O=REE,CN=x"]', "peers[0].dn[0]: 'C=es,O=REE,CN=x' starts with C="),
        ('dn = ["XX=1"]', "peers[0].dn[0]: unknown DN attribute type 'XX'"),
        ('dn = ["CN=a,C=es", "/C=es/CN=A"]', "peers[0].dn[1]: duplicate DN 'CN=A,C=es'"),
        ("dn = [1]", "peers[0].dn[0]: expected a string, got an integer"),
        ('url = "ftp://x/"', "peers[0].url: 'ftp://x/' is not an http(s)"),
        ('url = "https://x/"', "peers[0].url: calling a peer needs a [client] section"),
        ('collect = "*/15 * * * *"', "peers[0].collect: needs the peer's url"),
        ('deliver = "push"', 'peers[0].deliver: "push" needs the peer\'s url'),
        ('deliver = "pull"', 'peers[0].deliver: \'pull\' is not "publish" or "push"'),
        ('collect_types = ["TOD", "CUR"]', "peers[0].collect_types[0]: TOD means all types"),
        ("collect_types = []", "peers[0].collect_types: must not be empty"),
        ('allowed_types = ["TOD"]', "peers[0].allowed_types[0]: 'TOD' is not a file type"),
        ('allowed_types = ["CURX"]', "peers[0].allowed_types[0]: 'CURX' is not a file type"),
        ('participants = ["00 21"]', "peers[0].participants[0]: '00 21' is not a participant"),
        ('load_window = "6-20"', "peers[0].load_window: '6-20' is not HH:MM-HH:MM"),
        ('soap_action = "{action}"', "peers[0].soap_action: template '{action}' may only use"),
        ('soap_action = "{"', "peers[0].soap_action: bad template"),
        ('decompress = "yes"', "peers[0].decompress: expected true or false, got a string"),
        ('colect = "x"', "peers[0].colect: unknown key (did you mean 'collect'?)"),
        ('id = "C/REC"', "peers[0].id: 'C/REC' is not a valid peer id"),
    ],
)
def test_peer_problems(config_dir: Path, lines: str, expected: str) -> None:
    text = NODE + SERVER + '[[peers]]\nid = "CREC"\n' + lines + "\n"
    if lines.startswith("id ="):
        text = NODE + SERVER + "[[peers]]\n" + lines + "\n"
    found = problems(config_dir, text)
    assert any(p.startswith(expected) for p in found), found


def test_bad_cron_expression(config_dir: Path) -> None:
    text = NODE + SERVER + CLIENT + PEER + 'url = "https://x/"\ncollect = "61 * * * *"\n'
    (found,) = problems(config_dir, text)
    assert found.startswith("peers[0].collect: bad cron expression '61 * * * *': ")


def test_filetype_prefix_problems(config_dir: Path) -> None:
    text = NODE + SERVER + '[filetypes]\nprefixes = { "F1" = "TOD", "A_B" = "CUR", "ok" = 3 }\n'
    assert problems(config_dir, text) == [
        "filetypes.prefixes.F1: TOD means 'all types' and cannot be the type of a file",
        "filetypes.prefixes.A_B: prefix 'A_B' contains '_'; a prefix is matched against"
        " the part of a name before its first '_'",
        "filetypes.prefixes.ok: a file type must be a string, not int",
    ]


def _type_list() -> str:
    from concentrador.protocol.filetypes import REAL_TYPE_IDS

    assert len(REAL_TYPE_IDS) == 20 and "TOD" not in REAL_TYPE_IDS
    return " ".join(REAL_TYPE_IDS)


def test_all_problems_reported_in_one_pass(config_dir: Path) -> None:
    text = (
        '[node]\nid = "x y"\nblock_size = 1\n[server]\nlisten = "nope"\n' + PEER + 'deliver = "x"\n'
    )
    found = problems(config_dir, text)
    assert [p.split(":")[0] for p in found] == [
        "node.id",
        "node.block_size",
        "server.listen",
        "server.cert",
        "server.key",
        "server.client_ca",
        "peers[0].deliver",
    ]
    assert all("\n" not in p for p in found)


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "missing.toml")
    assert info.value.problems == [f"{tmp_path / 'missing.toml'}: config file not found"]
    bad = tmp_path / "bad.toml"
    bad.write_text("[node\n")
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    (problem,) = info.value.problems
    assert problem.startswith(f"{bad}: invalid TOML: ") and "line 1" in problem


def test_config_path_resolution_order() -> None:
    assert resolve_config_path("a.toml", {"CONCENTRADOR_CONFIG": "b.toml"}) == Path("a.toml")
    assert resolve_config_path(None, {"CONCENTRADOR_CONFIG": "b.toml"}) == Path("b.toml")
    assert resolve_config_path(None, {}) == Path("config/concentrador.toml")
    assert resolve_config_path(None, {"CONCENTRADOR_CONFIG": ""}) == Path(
        "config/concentrador.toml"
    )


def test_shipped_example_documents_every_key() -> None:
    """Every key the loader knows appears in the example file."""
    from concentrador.config import admin, loader, peers

    example = (Path(__file__).parents[2] / "config" / "concentrador.example.toml").read_text()
    keys = (
        *loader._NODE_KEYS,
        *loader._SERVER_KEYS,
        *loader._CLIENT_KEYS,
        *peers.PEER_KEYS,
        *admin.ADMIN_KEYS,
        *loader._SIGNING_KEYS,
        "prefixes",
    )
    # Keys of optional tables that must not be active in a fresh install
    # ([signing], the 504 peer's own keys) are documented commented out.
    missing = [
        key
        for key in keys
        if not any(line.lstrip("# ").startswith(f"{key} =") for line in example.splitlines())
    ]
    assert missing == []
    assert os.path.basename(__file__) == "test_loader.py"
