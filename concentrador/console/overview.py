"""The status page's model: the same status model as ``concentrador status``, plus the node's run.

:func:`build_overview` (blocking: run it in a thread) reads the spool status
of every peer (:mod:`concentrador.spool.status`), the node's certificates,
CRL and disk and the warnings (:mod:`concentrador.spool.node_status`), so
the page and the command never disagree; it adds only what a running
daemon knows: uptime and listeners. ``/metrics`` reads its gauges from this
same overview (``collector.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from concentrador import __version__
from concentrador.console.node import PROFILE, ConsoleNode
from concentrador.spool.node_status import (
    NodeStatus,
    StatusWarning,
    collect_node_status,
    collect_warnings,
)
from concentrador.spool.status import PeerStatus, collect_status

__all__ = ["Overview", "PeerOverview", "build_overview", "parse_time"]


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def parse_time(text: str | None) -> datetime | None:
    """An ISO-8601 status fact as an aware datetime; None when absent or unreadable."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


@dataclass
class PeerOverview:
    status: PeerStatus
    profile: str = PROFILE

    @property
    def id(self) -> str:
        return self.status.id

    def fact(self, key: str) -> str | None:
        return self.status.facts.get(key) or None

    @property
    def clock_offset(self) -> float | None:
        return _number(self.fact("clock_offset_seconds"))

    @property
    def backlog(self) -> int:
        """Files still to go to the peer: in ``sending/`` (push) or ``outbox/``."""
        counts = self.status.counts
        return counts.get("sending", 0) + counts.get("outbox", 0)


@dataclass
class Overview:
    generated_at: datetime
    version: str
    started_at: datetime
    uptime: timedelta
    listeners: list[str]
    admin_listeners: list[str]
    node: NodeStatus
    peers: list[PeerOverview]
    warnings: list[StatusWarning]


def build_overview(node: ConsoleNode) -> Overview:
    config = node.config
    now = node.now()
    spool = collect_status(config, now=now)
    facts = collect_node_status(config, now=now)
    return Overview(
        generated_at=now,
        version=__version__,
        started_at=node.started_at,
        uptime=now - node.started_at,
        listeners=node.listeners(),
        admin_listeners=list(node.admin_listeners),
        node=facts,
        peers=[PeerOverview(peer) for peer in spool.peers],
        warnings=collect_warnings(spool, facts),
    )
