"""The operator command line: ``concentrador [--config F] COMMAND ...``.

The parser and the dispatch live here, with ``check-config``; each other
command is a function in its own module (``status``, ``client``, ``certs``,
``daemon.serve``), called through :data:`COMMANDS` once the config is loaded.

Exit codes: 0 success; 1 failure (one line on stderr, a traceback only with
``-v``); 2 bad usage or bad config (one line per problem); 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Callable

from concentrador import __version__
from concentrador.cli import certs, client, status
from concentrador.cli.errors import CommandFailed
from concentrador.config import Config, ConfigError, load_config, resolve_config_path
from concentrador.config.render import render_config
from concentrador.daemon.serve import serve
from concentrador.protocol.filetypes import REAL_TYPE_IDS, TOD

__all__ = ["COMMANDS", "CommandFailed", "ConfiguredCommand", "build_parser", "main"]

PROG = "concentrador"

ConfiguredCommand = Callable[[Config, argparse.Namespace], int]
"""A command that needs the config: ``function(config, args) -> exit code``
(``args`` is the argparse namespace: ``args.peer``, ``args.types``, ...)."""


def _serve(config: Config, _args: argparse.Namespace) -> int:
    return serve(config)


COMMANDS: dict[str, ConfiguredCommand] = {
    "serve": _serve,
    "status": status.run,
    "collect": client.collect,
    "push": client.push,
    "ls": client.ls,
    "time": client.time,
    "retry": client.retry,
    "republish": client.republish_file,
    "review": client.review,
}
"""The commands that run with the loaded config, by name (looked up at call time)."""


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

    def add(
        name: str, help_text: str, handler: Callable[[argparse.Namespace], int]
    ) -> argparse.ArgumentParser:
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
        help=f"comma-separated type ids, or {TOD} (default: the peer's collect_types)",
    )
    add("time", "ask a peer its date and time; show the clock offset", _dispatch).add_argument(
        "peer"
    )
    for action, summary in (
        ("retry", "retry a file that failed to reach a peer"),
        ("republish", "publish an expired file again, with a new window"),
        ("review", "note in a file's audit trail that you reviewed it"),
    ):
        acting = add(action, summary, _dispatch)
        acting.add_argument("peer")
        acting.add_argument("name", help="file name")
        acting.add_argument("--reason", default="", help="why (kept in the audit trail)")

    certs.add_subcommands(sub.add_parser("certs", parents=[common], help="development PKI"), common)
    return parser


_CONFIG_HELP = "config file (default: $CONCENTRADOR_CONFIG, else config/concentrador.toml)"


def parse_type_list(text: str) -> list[str]:
    """``--types CUR,inc`` -> ``["CUR", "INC"]``; TOD only alone."""
    types = [part.strip().upper() for part in text.split(",") if part.strip()]
    if not types:
        raise argparse.ArgumentTypeError("no type ids given")
    unknown = [t for t in types if t not in REAL_TYPE_IDS and t != TOD]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown type id(s): {', '.join(unknown)}")
    if TOD in types and len(types) > 1:
        raise argparse.ArgumentTypeError(f"{TOD} means all types and must be alone")
    return types


def _load(args: argparse.Namespace) -> Config:
    return load_config(resolve_config_path(args.config))


def _check_config(args: argparse.Namespace) -> int:
    config = _load(args)
    sys.stdout.write(render_config(config))
    if config.server.insecure_http:
        _error("config: warning: server.insecure_http = true: no TLS, peers are not authenticated")
    return 0


def _dispatch(args: argparse.Namespace) -> int:
    command = COMMANDS[args.command_name]
    config = _load(args)
    peer_id = getattr(args, "peer", None)
    if peer_id is not None and config.peer_by_id(peer_id) is None:
        known = ", ".join(peer.id for peer in config.peers) or "none"
        raise CommandFailed(f"unknown peer {peer_id!r} (configured: {known})", exit_code=2)
    return command(config, args)


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
