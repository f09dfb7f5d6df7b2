"""``concentrador status``: what is in the spool, per peer, without the daemon.

Everything shown is read from the spool folders and the ledger, so it works
whether or not the daemon runs (SQLite lets both open the ledger). Per peer:
file counts in each state folder, outbox files that cannot be published and
why (ledger), failed files with the first line of their ``.reason``, and the
status facts the client cycles record in the ledger's kv table.

``--json`` prints the same data as one JSON document for monitoring.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from concentrador.config import Config, ConfigError, load_config, resolve_config_path
from concentrador.spool.layout import Spool, SpoolState, is_temp_name
from concentrador.spool.ledger import Ledger

__all__ = [
    "COUNTED_STATES",
    "FACTS",
    "FailedFile",
    "PeerStatus",
    "SpoolStatus",
    "collect_status",
    "format_text",
    "main",
    "run",
]

COUNTED_STATES: tuple[SpoolState, ...] = (
    SpoolState.OUTBOX,
    SpoolState.PUBLISHED,
    SpoolState.SENDING,
    SpoolState.DELIVERED,
    SpoolState.EXPIRED,
    SpoolState.FAILED,
    SpoolState.INBOX,
    SpoolState.MANUAL,
    SpoolState.PARTIAL,
)

FACTS: tuple[tuple[str, str], ...] = (
    ("last_cycle_result", "last cycle result"),
    ("last_cycle_at", "last cycle at"),
    ("next_run_at", "next scheduled run"),
    ("clock_offset_seconds", "clock offset (s)"),
)
"""Ledger kv keys shown for every peer (``never`` when absent), and their labels.

The client cycles write them with ``Ledger.set_status(peer, key, value)``;
any other key they record is shown after these.
"""

REASON_SUFFIX = ".reason"
NEVER = "never"
# A .reason file is one line; a hostile or broken one must not flood the output.
_MAX_REASON_BYTES = 2048


@dataclass
class FailedFile:
    name: str
    reason: str


@dataclass
class UnclassifiedFile:
    path: str
    reason: str
    since: str


@dataclass
class PeerStatus:
    id: str
    configured: bool
    deliver: str | None
    counts: dict[str, int]
    unclassified: list[UnclassifiedFile] = field(default_factory=list)
    failed: list[FailedFile] = field(default_factory=list)
    facts: dict[str, str | None] = field(default_factory=dict)


@dataclass
class SpoolStatus:
    spool: str
    ledger: str | None
    generated_at: str
    peers: list[PeerStatus]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _count_flat(folder: Path) -> int:
    try:
        with os.scandir(folder) as entries:
            return sum(
                1 for e in entries if e.is_file(follow_symlinks=False) and not is_temp_name(e.name)
            )
    except (FileNotFoundError, NotADirectoryError):
        return 0


def _count_outbox(outbox: Path) -> int:
    """Files in ``outbox/`` and in its ``<TYPE>/`` subfolders (one level, as published)."""
    total = 0
    try:
        with os.scandir(outbox) as entries:
            for entry in entries:
                if is_temp_name(entry.name):
                    continue
                if entry.is_file(follow_symlinks=False):
                    total += 1
                elif entry.is_dir(follow_symlinks=False):
                    total += _count_flat(Path(entry.path))
    except (FileNotFoundError, NotADirectoryError):
        return 0
    return total


def _reason_line(path: Path) -> str:
    try:
        with open(path, "rb") as handle:
            head = handle.read(_MAX_REASON_BYTES)
    except OSError as exc:
        return f"(no reason recorded: {exc.strerror})"
    lines = head.decode("utf-8", "replace").splitlines()
    first = lines[0].strip() if lines else ""
    return first or "(empty reason file)"


def _failed_files(folder: Path) -> list[FailedFile]:
    try:
        with os.scandir(folder) as entries:
            names = {
                e.name
                for e in entries
                if e.is_file(follow_symlinks=False) and not is_temp_name(e.name)
            }
    except (FileNotFoundError, NotADirectoryError):
        return []
    failed = []
    for name in sorted(n for n in names if not n.endswith(REASON_SUFFIX)):
        reason_name = name + REASON_SUFFIX
        if reason_name in names:
            reason = _reason_line(folder / reason_name)
        else:
            reason = "(no reason recorded)"
        failed.append(FailedFile(name, reason))
    return failed


def _peer_status(spool: Spool, peer_id: str, config: Config, ledger: Ledger | None) -> PeerStatus:
    peer_spool = spool.peer(peer_id)
    counts = {}
    failed = _failed_files(peer_spool.dir(SpoolState.FAILED))
    for state in COUNTED_STATES:
        if state is SpoolState.OUTBOX:
            counts[state.value] = _count_outbox(peer_spool.dir(state))
        elif state is SpoolState.FAILED:
            counts[state.value] = len(failed)  # the .reason files are not files of their own
        else:
            counts[state.value] = _count_flat(peer_spool.dir(state))
    peer = config.peer_by_id(peer_id)
    status = PeerStatus(
        id=peer_id,
        configured=peer is not None,
        deliver=peer.deliver if peer is not None else None,
        counts=counts,
        failed=failed,
    )
    kv = ledger.status(peer_id) if ledger is not None else {}
    status.facts = {key: kv.pop(key, None) for key, _ in FACTS}
    status.facts.update(sorted(kv.items()))
    if ledger is not None:
        status.unclassified = [
            UnclassifiedFile(u.path, u.reason, _iso(u.since)) for u in ledger.unclassified(peer_id)
        ]
    return status


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def collect_status(config: Config, *, now: datetime | None = None) -> SpoolStatus:
    """Read the spool and the ledger; creates nothing that does not exist."""
    spool = Spool(config.node.spool)
    peer_ids = [p.id for p in config.peers]
    # Folders of peers removed from the config still hold files: show them.
    peer_ids += [p for p in spool.peers() if p not in peer_ids]
    ledger = Ledger(spool.ledger_path) if spool.ledger_path.is_file() else None
    try:
        peers = [_peer_status(spool, peer_id, config, ledger) for peer_id in peer_ids]
    finally:
        if ledger is not None:
            ledger.close()
    return SpoolStatus(
        spool=str(spool.root),
        ledger=str(spool.ledger_path) if ledger is not None else None,
        generated_at=_iso(now or datetime.now(UTC)),
        peers=peers,
    )


def _table(rows: Sequence[Sequence[str]], numeric_from: int = 1) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(widths[i]) if i >= numeric_from else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def format_text(status: SpoolStatus) -> str:
    """Plain aligned text: a count table, then one block per peer."""
    out = [f"spool   {status.spool}", f"ledger  {status.ledger or '(none yet)'}", ""]
    if not status.peers:
        out.append("no peers configured")
        return "\n".join(out) + "\n"
    header = ["PEER", *(s.value.upper() for s in COUNTED_STATES)]
    rows = [header]
    for peer in status.peers:
        name = peer.id if peer.configured else f"{peer.id} (not configured)"
        rows.append([name, *(str(peer.counts[s.value]) for s in COUNTED_STATES)])
    out.extend(_table(rows))
    labels = dict(FACTS)
    for peer in status.peers:
        out.append("")
        deliver = f"  deliver={peer.deliver}" if peer.deliver else "  (not in the config)"
        out.append(f"{peer.id}{deliver}")
        facts = [
            [f"  {labels.get(k, k)}", v if v is not None else NEVER] for k, v in peer.facts.items()
        ]
        out.extend(_table(facts, numeric_from=99))
        if peer.unclassified:
            out.append(f"  not published ({len(peer.unclassified)}):")
            out.extend(
                _table(
                    [[f"    {u.path}", u.reason, f"since {u.since}"] for u in peer.unclassified],
                    numeric_from=99,
                )
            )
        if peer.failed:
            out.append(f"  failed ({len(peer.failed)}):")
            out.extend(_table([[f"    {f.name}", f.reason] for f in peer.failed], numeric_from=99))
    return "\n".join(out) + "\n"


def run(config: Config, args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """``concentrador status [--json]``."""
    stream = sys.stdout if out is None else out
    status = collect_status(config)
    if getattr(args, "json", False):
        json.dump(status.to_json(), stream, indent=2, ensure_ascii=False)
        stream.write("\n")
    else:
        stream.write(format_text(status))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m concentrador.cli.status [--config F] [--json]`` (same output as the CLI)."""
    parser = argparse.ArgumentParser(prog="concentrador status")
    parser.add_argument("--config")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    try:
        config = load_config(resolve_config_path(args.config))
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"concentrador: config: {problem}", file=sys.stderr)
        return 2
    return run(config, args)


if __name__ == "__main__":
    sys.exit(main())
