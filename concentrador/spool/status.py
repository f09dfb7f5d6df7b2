"""One status model, read by ``concentrador status`` and the web console alike.

:func:`collect_status` reads the spool folders and the ledger (so it works
whether or not the daemon runs: SQLite lets both open the ledger). Per peer:
file counts in each state folder, outbox files that cannot be published and
why (ledger), failed files with the first line of their ``.reason``, the
push backlog, and the status facts the client cycles record in the ledger's
kv table (last cycle, next run, clock offset). The node's own facts
(certificates, CRL, disk) are :func:`concentrador.spool.node_status.collect_node_status`.
Formatting (text, JSON, HTML) is the caller's.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from concentrador.config import Config
from concentrador.spool.actions import REASON_SUFFIX
from concentrador.spool.layout import Spool, SpoolState, is_temp_name
from concentrador.spool.ledger import Ledger

__all__ = [
    "COUNTED_STATES",
    "FACTS",
    "NEVER",
    "FailedFile",
    "PeerStatus",
    "PushWaiting",
    "SpoolStatus",
    "UnclassifiedFile",
    "collect_status",
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
class PushWaiting:
    original: str
    attempts: int
    last_error: str | None
    next_attempt_at: str | None


@dataclass
class PeerStatus:
    id: str
    configured: bool
    deliver: str | None
    counts: dict[str, int]
    unclassified: list[UnclassifiedFile] = field(default_factory=list)
    failed: list[FailedFile] = field(default_factory=list)
    facts: dict[str, str | None] = field(default_factory=dict)
    push_backlog: list[PushWaiting] = field(default_factory=list)
    """Files whose push failed and waits for its retry time (ledger push state)."""


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
    # ``iec_stuck`` (the code a 504 collection stopped at, and why) is shown
    # while it holds; the collector empties it once the cycle goes past.
    status.facts.update(sorted((k, v) for k, v in kv.items() if k != "iec_stuck" or v))
    if ledger is not None:
        status.unclassified = [
            UnclassifiedFile(u.path, u.reason, _iso(u.since)) for u in ledger.unclassified(peer_id)
        ]
        status.push_backlog = [
            PushWaiting(
                p.original,
                p.attempts,
                p.last_error,
                _iso(p.next_attempt_at) if p.next_attempt_at else None,
            )
            for p in ledger.push_states(peer_id)
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
    # PostgreSQL ([ledger] url) is always there to read; a SQLite file only once created.
    exists = config.ledger.url is not None or spool.ledger_path.is_file()
    ledger = Ledger(spool.ledger_path, url=config.ledger.url, pool_size=1) if exists else None
    try:
        peers = [_peer_status(spool, peer_id, config, ledger) for peer_id in peer_ids]
    finally:
        if ledger is not None:
            ledger.close()
    return SpoolStatus(
        spool=str(spool.root),
        ledger=ledger.location if ledger is not None else None,
        generated_at=_iso(now or datetime.now(UTC)),
        peers=peers,
    )
