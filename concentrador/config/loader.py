"""Loading and validating ``concentrador.toml``.

:func:`load_config` reads the file with stdlib ``tomllib`` and checks every
key (unknown keys, types, ranges, files, cron, time zone, DNs, cross-peer
duplicates), collecting all problems before raising one
:class:`~concentrador.config.errors.ConfigError`. The reference of every key
is ``docs/configuration.md``.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from concentrador.config.admin import read_admin
from concentrador.config.checks import (
    MISSING,
    Checker,
    describe_type,
    identifier,
    key_path_of,
    parse_listen,
    parse_public_url,
)
from concentrador.config.errors import ConfigError
from concentrador.config.ledger import read_ledger
from concentrador.config.model import (
    DEFAULT_IEC62325_PATH,
    MAX_BLOCK_SIZE,
    MIN_BLOCK_SIZE,
    ClientConfig,
    Config,
    ConnectionLimits,
    FileTypesConfig,
    NodeConfig,
    PeerConfig,
    ServerConfig,
    SigningConfig,
)
from concentrador.config.peers import read_peers
from concentrador.config.spool import read_spool
from concentrador.protocol import FileTypeError, TypeClassifier
from concentrador.protocol.filetypes import REAL_TYPE_IDS

CONFIG_ENV = "CONCENTRADOR_CONFIG"
DEFAULT_CONFIG_PATH = Path("config/concentrador.toml")

_TOP_KEYS = (
    "node", "server", "client", "signing", "peers", "filetypes", "admin", "ledger", "spool",
)  # fmt: skip
_NODE_KEYS = (
    "id", "spool", "timezone", "publish_days", "block_size", "clock_warn_seconds", "replica",
)  # fmt: skip
_LIMIT_KEYS = tuple(f.name for f in dataclasses.fields(ConnectionLimits))
_SERVER_KEYS = (
    "listen",
    "public_url",
    "cert",
    "key",
    "client_ca",
    "crl",
    "insecure_http",
    "iec62325_path",
    *_LIMIT_KEYS,
)
_SIGNING_KEYS = ("cert", "key")
_CLIENT_KEYS = ("cert", "key", "ca", "timeout", "retries", "retry_delay", "min_transfer_rate")


def resolve_config_path(
    explicit: str | os.PathLike[str] | None = None, environ: Mapping[str, str] = os.environ
) -> Path:
    """``--config`` if given, else ``$CONCENTRADOR_CONFIG``, else
    ``config/concentrador.toml`` (relative to the working directory)."""
    if explicit:
        return Path(explicit)
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV])
    return DEFAULT_CONFIG_PATH


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a config file; raises :class:`ConfigError`."""
    absolute = Path(os.path.abspath(Path(path).expanduser()))
    try:
        with absolute.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError([f"{absolute}: config file not found"], absolute) from None
    except OSError as exc:
        raise ConfigError([f"{absolute}: cannot read: {exc.strerror}"], absolute) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{absolute}: invalid TOML: {exc}"], absolute) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{absolute}: invalid TOML: not UTF-8"], absolute) from None
    return build_config(data, absolute)


def build_config(data: dict[str, Any], path: Path) -> Config:
    """Validate parsed TOML; relative paths resolve against ``path``'s folder."""
    checker = Checker(path.parent)
    checker.table(data, "", _TOP_KEYS)
    node = _node(checker, data.get("node", {}))
    server = _server(checker, data.get("server", {}))
    client = _client(checker, data["client"]) if "client" in data else None
    timezone = node.timezone if node is not None else None
    peers = read_peers(checker, data.get("peers", []), timezone, has_client="client" in data)
    filetypes = _filetypes(checker, data.get("filetypes", {}))
    admin = read_admin(checker, data.get("admin", {}))
    ledger = read_ledger(checker, data.get("ledger", {}))
    spool = read_spool(checker, data.get("spool", {}), ledger)
    signing = _signing(checker, data, client, peers or ())
    if checker.problems:
        raise ConfigError(checker.problems, path)
    # no problems
    assert node is not None and server is not None and peers is not None and admin is not None
    assert ledger is not None and spool is not None
    return Config(path, node, server, client, peers, filetypes, admin, signing, ledger, spool)


def _node(checker: Checker, raw: object) -> NodeConfig | None:
    table = checker.table(raw, "node", _NODE_KEYS)
    if table is None:
        return None
    node_id = identifier(checker, "node.id", checker.string(table, "id", "node"), "node id")
    spool = checker.path(table, "spool", "node", "spool", must_be_file=False)
    if spool is not None and spool.exists() and not spool.is_dir():
        checker.problem("node.spool", f"not a directory: {spool}")
    timezone = _timezone(checker, checker.string(table, "timezone", "node", "Europe/Madrid"))
    publish_days = checker.integer(table, "publish_days", "node", 30, minimum=1, maximum=3650)
    block_size = checker.integer(
        table, "block_size", "node", MAX_BLOCK_SIZE, minimum=MIN_BLOCK_SIZE, maximum=MAX_BLOCK_SIZE
    )
    clock_warn = checker.integer(table, "clock_warn_seconds", "node", 120, minimum=1)
    replica = identifier(
        checker, "node.replica", checker.string(table, "replica", "node", None), "replica name"
    )
    if "replica" in table and replica is None:
        return None
    if (
        node_id is None
        or spool is None
        or timezone is None
        or publish_days is None
        or block_size is None
        or clock_warn is None
    ):
        return None
    return NodeConfig(node_id, spool, timezone, publish_days, block_size, clock_warn, replica)


def _timezone(checker: Checker, name: str | None) -> ZoneInfo | None:
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        checker.problem("node.timezone", f"unknown time zone {name!r}")
        return None


def _server(checker: Checker, raw: object) -> ServerConfig | None:
    table = checker.table(raw, "server", _SERVER_KEYS)
    if table is None:
        return None
    listen = checker.string(table, "listen", "server", "127.0.0.1:8443")
    host_port = None
    if listen is not None:
        try:
            host_port = parse_listen(listen)
        except ValueError as exc:
            checker.problem("server.listen", str(exc))
    public_url = checker.string(table, "public_url", "server", None)
    if public_url is not None:
        try:
            parse_public_url(public_url)
        except ValueError as exc:
            checker.problem("server.public_url", str(exc))
    insecure = checker.boolean(table, "insecure_http", "server", False)
    # Plain HTTP needs no certificates; if they are given anyway, check them.
    default = None if insecure else MISSING
    cert = checker.path(table, "cert", "server", default)
    key = checker.path(table, "key", "server", default)
    client_ca = checker.path(table, "client_ca", "server", default)
    crl = checker.path(table, "crl", "server", None)
    limits = _limits(checker, table)
    iec_path = _endpoint_path(checker, table)
    if host_port is None or insecure is None or limits is None or iec_path is None:
        return None
    if not insecure and None in (cert, key, client_ca):
        return None
    return ServerConfig(
        host_port[0], host_port[1], cert, key, client_ca, crl, insecure, limits, public_url,
        iec_path,
    )  # fmt: skip


def _endpoint_path(checker: Checker, table: dict[str, Any]) -> str | None:
    """``iec62325_path``: an absolute URL path, compared as is with the request's."""
    text = checker.string(table, "iec62325_path", "server", DEFAULT_IEC62325_PATH)
    if text is None:
        return None
    if not text.startswith("/") or text == "/":
        # "/" alone would take every request at the root from the v2.3 profile.
        checker.problem("server.iec62325_path", f"{text!r} must be a path like /ServiceEME")
        return None
    if not text.isascii() or any(ch.isspace() or not ch.isprintable() or ch in "?#" for ch in text):
        checker.problem(
            "server.iec62325_path",
            f"{text!r} must be ASCII without spaces, control characters, '?' or '#'",
        )
        return None
    return text


def _signing(
    checker: Checker,
    data: dict[str, Any],
    client: ClientConfig | None,
    peers: tuple[PeerConfig, ...],
) -> SigningConfig | None:
    """``[signing]`` (cert and key together), else ``[client]``'s; a problem when an
    IEC 62325-504 peer needs signatures and there is neither."""
    signing: SigningConfig | None = None
    if "signing" in data:
        table = checker.table(data["signing"], "signing", _SIGNING_KEYS)
        if table is None:
            return None
        cert = checker.path(table, "cert", "signing")
        key = checker.path(table, "key", "signing")
        if cert is None or key is None:
            return None
        signing = SigningConfig(cert, key)
    elif client is not None:
        signing = SigningConfig(client.cert, client.key)
    elif "client" in data:
        return None  # [client] has a problem of its own, already reported
    if signing is None:
        for index, peer in enumerate(peers):
            if peer.iec62325 and peer.signatures != "off":
                checker.problem(
                    f"peers[{index}].signatures",
                    f'"{peer.signatures}" needs a key to sign with: add [signing] cert and key '
                    '(or a [client] section), or set signatures = "off"',
                )
    return signing


def _limits(checker: Checker, table: dict[str, Any]) -> ConnectionLimits | None:
    """The deadlines and connection caps of ``[server]``; defaults from the model."""
    values: dict[str, float | int | None] = {}
    for spec in dataclasses.fields(ConnectionLimits):
        if spec.type in (int, "int"):
            values[spec.name] = checker.integer(
                table, spec.name, "server", spec.default, minimum=1, maximum=1_000_000_000
            )
        else:
            values[spec.name] = checker.number(
                table, spec.name, "server", spec.default, minimum=0.1, maximum=86_400
            )
    if any(value is None for value in values.values()):
        return None
    return ConnectionLimits(**values)  # type: ignore[arg-type]


def _client(checker: Checker, raw: object) -> ClientConfig | None:
    table = checker.table(raw, "client", _CLIENT_KEYS)
    if table is None:
        return None
    cert = checker.path(table, "cert", "client")
    key = checker.path(table, "key", "client")
    ca = checker.path(table, "ca", "client")
    timeout = checker.number(table, "timeout", "client", 60, minimum=1, maximum=3600)
    retries = checker.integer(table, "retries", "client", 5, minimum=0, maximum=1000)
    retry_delay = checker.number(table, "retry_delay", "client", 600, minimum=0)
    min_rate = checker.integer(table, "min_transfer_rate", "client", 32_768, minimum=1)
    if (
        cert is None
        or key is None
        or ca is None
        or timeout is None
        or retries is None
        or retry_delay is None
        or min_rate is None
    ):
        return None
    return ClientConfig(cert, key, ca, timeout, retries, retry_delay, min_rate)


def _filetypes(checker: Checker, raw: object) -> FileTypesConfig:
    table = checker.table(raw, "filetypes", ("prefixes",))
    if table is None or "prefixes" not in table:
        return FileTypesConfig()
    prefixes = table["prefixes"]
    if not isinstance(prefixes, dict):
        checker.problem("filetypes.prefixes", f"expected a table, got {describe_type(prefixes)}")
        return FileTypesConfig()
    result: dict[str, str] = {}
    for prefix, type_id in prefixes.items():
        key_path = key_path_of("filetypes.prefixes", prefix)
        try:
            # The classifier owns the prefix syntax (incl. "*" patterns) and
            # the type-id rules; validating through it keeps one definition.
            TypeClassifier({prefix: type_id})
        except FileTypeError as exc:
            checker.problem(key_path, str(exc))
        else:
            result[prefix] = type_id
    return FileTypesConfig(MappingProxyType(result))


def _types_hint() -> str:
    return "one of " + " ".join(REAL_TYPE_IDS)
