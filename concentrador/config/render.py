"""Rendering a validated config back to TOML, for ``check-config``.

The output is the *resolved* config: absolute paths, every default filled
in, DNs in normalised RFC 4514 spelling. It is itself a valid config file
(loading it gives the same :class:`Config`), so an operator can diff what
the daemon will actually use against what they wrote.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from concentrador.config.model import Config, PeerConfig, SpoolConfig


def toml_value(value: object) -> str:
    """One TOML value (strings, numbers, booleans, paths, arrays of them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Path):
        return toml_value(str(value))
    if isinstance(value, str):
        # JSON string escapes are a subset of TOML's basic-string escapes,
        # except that TOML also wants DEL escaped.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007F")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot render {type(value).__name__} as TOML")


def _key(name: str) -> str:
    bare = name and all(c.isascii() and (c.isalnum() or c in "_-") for c in name)
    return name if bare else toml_value(name)


def _lines(pairs: Iterable[tuple[str, object]]) -> list[str]:
    return [f"{_key(key)} = {toml_value(value)}" for key, value in pairs if value is not None]


def render_config(config: Config) -> str:
    """The resolved config as TOML text."""
    node, server = config.node, config.server
    out = [
        "# concentrador: resolved configuration",
        f"# source: {config.path}",
        "",
        "[node]",
        *_lines(
            [
                ("id", node.id),
                ("spool", node.spool),
                ("timezone", node.timezone.key),
                ("publish_days", node.publish_days),
                ("block_size", node.block_size),
                ("clock_warn_seconds", node.clock_warn_seconds),
                ("replica", node.replica),
            ]
        ),
        "",
        "[server]",
        *_lines(
            [
                ("listen", server.listen),
                ("public_url", server.public_url),
                ("cert", server.cert),
                ("key", server.key),
                ("client_ca", server.client_ca),
                ("crl", server.crl),
                ("insecure_http", server.insecure_http),
                ("iec62325_path", server.iec62325_path),
            ]
        ),
    ]
    if config.client is not None:
        client = config.client
        out += [
            "",
            "[client]",
            *_lines(
                [
                    ("cert", client.cert),
                    ("key", client.key),
                    ("ca", client.ca),
                    ("timeout", client.timeout),
                    ("retries", client.retries),
                    ("retry_delay", client.retry_delay),
                ]
            ),
        ]
    if config.signing is not None:
        signing = config.signing
        out += ["", "[signing]", *_lines([("cert", signing.cert), ("key", signing.key)])]
    if config.filetypes.prefixes:
        out += ["", "[filetypes.prefixes]", *_lines(sorted(config.filetypes.prefixes.items()))]
    out += ["", *_admin_lines(config)]
    if config.ledger.url is not None:
        out += ["", *_ledger_lines(config)]
    if config.spool != SpoolConfig():
        pairs = [("shared", config.spool.shared), ("poll_interval", config.spool.poll_interval)]
        out += ["", "[spool]", *_lines(pairs)]
    for peer in config.peers:
        out += ["", *_peer_lines(peer)]
    return "\n".join(out) + "\n"


def _admin_lines(config: Config) -> list[str]:
    admin = config.admin
    pairs = [("listen", admin.listen), ("cert", admin.cert), ("key", admin.key)]
    lines = ["[admin]", *_lines([*pairs, ("client_ca", admin.client_ca)])]
    if admin.token is not None:
        lines.append("# token = (set in the config file; a secret, not printed)")
    return lines


def _ledger_lines(config: Config) -> list[str]:
    url = urlsplit(config.ledger.url or "")
    shown = url._replace(netloc=url.netloc.rpartition("@")[2]) if url.password else url
    if url.password:  # keep the user, drop the secret
        shown = shown._replace(netloc=f"{url.username}@{shown.netloc}")
    lines = ["[ledger]", *_lines([("url", shown.geturl()), ("pool_size", config.ledger.pool_size)])]
    if url.password:
        lines.append("# (the url's password is set in the config file; a secret, not printed)")
    return lines


def _peer_lines(peer: PeerConfig) -> list[str]:
    # Each profile's own keys only: the others are refused on a peer of the other profile.
    profile: list[tuple[str, object]]
    if peer.iec62325:
        profile = [("signatures", peer.signatures), ("soap_version", peer.soap_version)]
    else:
        profile = [("soap_action", peer.soap_action)]
    return [
        "[[peers]]",
        *_lines(
            [
                ("id", peer.id),
                ("dn", [dn.text for dn in peer.dn]),
                ("url", peer.url),
                ("collect", peer.collect),
                ("collect_types", list(peer.collect_types)),
                ("deliver", peer.deliver),
                ("participants", sorted(peer.participants)),
                ("allowed_types", sorted(peer.allowed_types)),
                ("load_window", str(peer.load_window) if peer.load_window else ""),
                ("protocol", peer.protocol),
                ("decompress", peer.decompress),
                *profile,
                ("header_must_match", peer.header_must_match),
                ("connections", peer.connections),
            ]
        ),
    ]
