"""The operator command line: ``concentrador [--config F] COMMAND ...``.

``check-config`` and ``certs init`` live here. Every other command is
dispatched through :data:`COMMANDS`, a lazy import table, to the module that
implements it, so that this file does not grow with the daemon and a command
whose module is not written yet says so instead of pretending.

Exit codes: 0 success; 1 failure (one line on stderr, a traceback only with
``-v``); 2 bad usage or bad config (one line per problem); 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from concentrador import __version__
from concentrador.config import Config, ConfigError, load_config, resolve_config_path
from concentrador.config.render import render_config
from concentrador.config.typeids import ALL_TYPES, REAL_TYPE_IDS
from concentrador.pki.devpki import DEFAULT_NODE_ID, DEFAULT_PEERS, P12_PASSWORD, init_dev_pki

PROG = "concentrador"


@dataclass(frozen=True)
class Command:
    """Where a command is implemented: ``module:function``.

    ``with_args`` functions are called ``function(config, args) -> int``
    (``args`` is the argparse namespace: ``args.peer``, ``args.types``,
    ``args.name``, ``args.verbose``); the others ``function(config) -> int``.
    """

    module: str
    function: str
    with_args: bool = True


COMMANDS: dict[str, Command] = {
    "serve": Command("concentrador.daemon.serve", "serve", with_args=False),
    "status": Command("concentrador.cli.status", "run"),
    "collect": Command("concentrador.cli.client", "collect"),
    "push": Command("concentrador.cli.client", "push"),
    "ls": Command("concentrador.cli.client", "ls"),
    "time": Command("concentrador.cli.client", "time"),
    "retry": Command("concentrador.cli.client", "retry"),
}
"""The lazily imported commands (see :class:`Command` for the signatures)."""


class CommandFailed(Exception):
    """A command fails with a message and an exit code, no traceback."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error (already printed)
        return exc.code if isinstance(exc.code, int) else 2
    _configure_logging(args.verbose)
    name = args.command_name
    try:
        return args.handler(args)
    except CommandFailed as exc:
        _error(f"{name}: {exc}")
        return exc.exit_code
    except ConfigError as exc:
        for problem in exc.problems:
            _error(f"config: {problem}")
        return 2
    except KeyboardInterrupt:
        _error(f"{name}: interrupted")
        return 130
    except Exception as exc:
        if args.verbose:
            traceback.print_exc()
        _error(f"{name}: {_one_line(exc)}")
        return 1


def build_parser() -> argparse.ArgumentParser:
    # --config and -v are accepted before and after the command. The
    # subcommand copies have SUPPRESS defaults so that they override the
    # global value only when given.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help=_CONFIG_HELP)
    common.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS)

    parser = argparse.ArgumentParser(prog=PROG, description="CPCSCC metering concentrator.")
    parser.add_argument("--config", metavar="PATH", default=None, help=_CONFIG_HELP)
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging; tracebacks on errors"
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str, handler: Callable[[argparse.Namespace], int]):
        command = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        command.set_defaults(handler=handler, command_name=name)
        return command

    add("serve", "run the daemon (server, schedules, spool watcher)", _dispatch)
    add("check-config", "validate the config and print it resolved", _check_config)
    status = add("status", "show spool and peer status", _dispatch)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    add("collect", "run one collection cycle from a peer now", _dispatch).add_argument("peer")
    add("push", "push pending files to a peer now", _dispatch).add_argument("peer")
    ls = add("ls", "list the files a peer publishes for us", _dispatch)
    ls.add_argument("peer")
    ls.add_argument(
        "--types",
        type=parse_type_list,
        default=None,
        metavar="CUR,INC",
        help=f"comma-separated type ids, or {ALL_TYPES} (default: the peer's collect_types)",
    )
    add("time", "ask a peer its date and time; show the clock offset", _dispatch).add_argument(
        "peer"
    )
    retry = add("retry", "retry a file that failed to reach a peer", _dispatch)
    retry.add_argument("peer")
    retry.add_argument("name", help="file name")

    certs = sub.add_parser("certs", parents=[common], help="development PKI")
    certs_sub = certs.add_subparsers(dest="certs_command", required=True, metavar="COMMAND")
    init = certs_sub.add_parser(
        "init", parents=[common], help="create a development CA and certificates in DIR"
    )
    init.set_defaults(handler=_certs_init, command_name="certs init")
    init.add_argument("directory", metavar="DIR")
    init.add_argument("--force", action="store_true", help="replace existing files")
    init.add_argument("--node-id", default=DEFAULT_NODE_ID, help="our concentrator code")
    init.add_argument(
        "--peers",
        default=",".join(DEFAULT_PEERS),
        help="comma-separated dev peer codes (default %(default)s; '' for none)",
    )
    return parser


_CONFIG_HELP = "config file (default: $CONCENTRADOR_CONFIG, else config/concentrador.toml)"


def parse_type_list(text: str) -> list[str]:
    """``--types CUR,inc`` -> ``["CUR", "INC"]``; TOD only alone."""
    types = [part.strip().upper() for part in text.split(",") if part.strip()]
    if not types:
        raise argparse.ArgumentTypeError("no type ids given")
    unknown = [t for t in types if t not in REAL_TYPE_IDS and t != ALL_TYPES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown type id(s): {', '.join(unknown)}")
    if ALL_TYPES in types and len(types) > 1:
        raise argparse.ArgumentTypeError(f"{ALL_TYPES} means all types and must be alone")
    return types


def _load(args: argparse.Namespace) -> Config:
    return load_config(resolve_config_path(args.config))


def _check_config(args: argparse.Namespace) -> int:
    config = _load(args)
    sys.stdout.write(render_config(config))
    if config.server.insecure_http:
        _error("config: warning: server.insecure_http = true: no TLS, peers are not authenticated")
    return 0


def _certs_init(args: argparse.Namespace) -> int:
    from concentrador.pki.devpki import PkiError

    peers = [peer.strip() for peer in args.peers.split(",") if peer.strip()]
    try:
        pki = init_dev_pki(args.directory, node_id=args.node_id, peers=peers, force=args.force)
    except PkiError as exc:
        raise CommandFailed(str(exc)) from None
    print(f"development PKI written to {pki.directory}")
    width = max(len(issued.certificate_path.name) for issued in pki.files)
    for issued in pki.files:
        note = "  (revoked in ca.crl)" if issued.role == "revoked" else ""
        print(f"  {issued.certificate_path.name:<{width}}  {issued.subject}{note}")
    print(f'PKCS12 bundles (*.p12) use the password "{P12_PASSWORD.decode()}".')
    return 0


def _dispatch(args: argparse.Namespace) -> int:
    command = COMMANDS[args.command_name]
    config = _load(args)
    peer_id = getattr(args, "peer", None)
    if peer_id is not None and config.peer_by_id(peer_id) is None:
        known = ", ".join(peer.id for peer in config.peers) or "none"
        raise CommandFailed(f"unknown peer {peer_id!r} (configured: {known})", exit_code=2)
    function = _resolve(command)
    if function is None:
        raise CommandFailed("not implemented yet")
    result = function(config, args) if command.with_args else function(config)
    return int(result or 0)


def _resolve(command: Command) -> Callable[..., int] | None:
    """The command's function, or None when its module is not written yet.

    Only the absence of *that* module (or a parent package) counts; an
    import error inside an existing module is a real bug and propagates.
    """
    try:
        module: ModuleType = importlib.import_module(command.module)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (command.module == missing or command.module.startswith(missing + ".")):
            return None
        raise
    return getattr(module, command.function, None)


def _configure_logging(verbosity: int) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbosity else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _error(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)
