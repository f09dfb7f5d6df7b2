"""``concentrador status``: what is in the spool, per peer, without the daemon.

The model and its collection are :mod:`concentrador.spool.status`, which the
web console reads too, so the two never disagree; this module only formats
it. ``--json`` prints the same data as one JSON document for monitoring.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from typing import TextIO

from concentrador.config import Config
from concentrador.spool.node_status import collect_node_status, collect_warnings
from concentrador.spool.status import (
    COUNTED_STATES,
    FACTS,
    NEVER,
    FailedFile,
    PeerStatus,
    SpoolStatus,
    collect_status,
)

# The model's names stay importable from here (``concentrador.spool.status``).
__all__ = [
    "COUNTED_STATES",
    "FACTS",
    "FailedFile",
    "PeerStatus",
    "SpoolStatus",
    "collect_status",
    "format_text",
    "run",
]


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
        if peer.push_backlog:
            out.append(f"  push retries pending ({len(peer.push_backlog)}):")
            rows = [
                [f"    {w.original}", f"attempt {w.attempts}", f"next {w.next_attempt_at or '?'}"]
                for w in peer.push_backlog
            ]
            out.extend(_table(rows, numeric_from=99))
    return "\n".join(out) + "\n"


def run(config: Config, args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """``concentrador status [--json]``."""
    stream = sys.stdout if out is None else out
    status = collect_status(config)
    node = collect_node_status(config)
    warnings = collect_warnings(status, node)
    if getattr(args, "json", False):
        document = status.to_json()
        document["node"] = node.to_json()
        document["warnings"] = [asdict(w) for w in warnings]
        json.dump(document, stream, indent=2, ensure_ascii=False, default=str)
        stream.write("\n")
    else:
        stream.write(format_text(status))
        if warnings:
            stream.write(f"\nWARNINGS ({len(warnings)}):\n")
            stream.writelines(f"  {w.subject}: {w.message}\n" for w in warnings)
    return 0
