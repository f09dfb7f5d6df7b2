"""``concentrador certs init DIR``: a development PKI (CA, CRL, server and
REE-shaped client certificates) for trying the daemon and the tests."""

from __future__ import annotations

import argparse

from concentrador.cli.errors import CommandFailed
from concentrador.pki.devpki import (
    DEFAULT_NODE_ID,
    DEFAULT_PEERS,
    P12_PASSWORD,
    PkiError,
    init_dev_pki,
)

__all__ = ["add_subcommands", "init"]


def add_subcommands(certs: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    """``certs init`` under the program's ``certs`` parser (``common``: --config, -v)."""
    certs_commands = certs.add_subparsers(dest="certs_command", required=True, metavar="COMMAND")
    init_parser = certs_commands.add_parser(
        "init", parents=[common], help="create a development CA and certificates in DIR"
    )
    init_parser.set_defaults(handler=init, command_name="certs init")
    init_parser.add_argument("directory", metavar="DIR")
    init_parser.add_argument("--force", action="store_true", help="replace existing files")
    init_parser.add_argument("--node-id", default=DEFAULT_NODE_ID, help="our concentrator code")
    init_parser.add_argument(
        "--peers",
        default=",".join(DEFAULT_PEERS),
        help="comma-separated dev peer codes (default %(default)s; '' for none)",
    )


def init(args: argparse.Namespace) -> int:
    """Write the dev PKI to ``args.directory``; list what was written, with the DNs."""
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
