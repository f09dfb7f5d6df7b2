"""Operator command line (placeholder until the config/CLI work lands)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="concentrador")
    parser.add_argument("--config")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve")
    args = parser.parse_args(argv)
    if args.command == "serve":
        print("concentrador: server not implemented yet", file=sys.stderr)
        return 1
    return 2
