"""The node's own facts beside the spool status: certificates, CRL, disk; and the warnings.

:func:`collect_node_status` reads the files the config names (our server and
client certificates, the CAs, the CRL) and the spool's file system.
:func:`collect_warnings` turns both models into the loud warnings an
operator must see (a certificate near expiry, a stale CRL, a full disk, a
failing peer, a clock off): ``concentrador status`` and the web console show
the same list. Reading, never writing; a file that cannot be read is a fact
(``error``), not an exception.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509

from concentrador.config import Config
from concentrador.spool.status import SpoolStatus

__all__ = [
    "CERT_WARN_DAYS",
    "CLOCK_WARN_SECONDS",
    "DISK_WARN_FRACTION",
    "FAILED_CYCLES_WARN",
    "CertificateStatus",
    "CrlStatus",
    "DiskStatus",
    "NodeStatus",
    "StatusWarning",
    "collect_node_status",
    "collect_warnings",
]

CERT_WARN_DAYS = 30
DISK_WARN_FRACTION = 0.10
CLOCK_WARN_SECONDS = 30
FAILED_CYCLES_WARN = 3
"""A peer is warned about once this many of its cycles of one kind failed in a
row (the runner's ``cycle_failures_in_a_row`` / ``push_failures_in_a_row``):
one failure is retried by the next cycle, three mean the peer needs a look."""


@dataclass
class CertificateStatus:
    role: str  # "server", "client", "client CA", "server CA"
    path: str
    subject: str | None = None
    not_after: datetime | None = None
    days_left: float | None = None
    error: str | None = None


@dataclass
class CrlStatus:
    path: str
    next_update: datetime | None = None
    overdue: bool = False
    error: str | None = None


@dataclass
class DiskStatus:
    path: str
    free_bytes: int
    total_bytes: int

    @property
    def free_fraction(self) -> float:
        return self.free_bytes / self.total_bytes if self.total_bytes else 0.0


@dataclass
class NodeStatus:
    node_id: str
    generated_at: datetime
    certificates: list[CertificateStatus] = field(default_factory=list)
    crl: CrlStatus | None = None
    disk: DiskStatus | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if self.disk is not None:
            data["disk"]["free_fraction"] = self.disk.free_fraction
        return data


@dataclass(frozen=True)
class StatusWarning:
    subject: str  # "node", a peer id, or a certificate role
    message: str


def _certificate(role: str, path: Path, now: datetime) -> CertificateStatus:
    status = CertificateStatus(role, str(path))
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        status.error = str(exc)
        return status
    status.subject = cert.subject.rfc4514_string()
    status.not_after = cert.not_valid_after_utc
    status.days_left = (status.not_after - now).total_seconds() / 86400
    return status


def _crl(path: Path, now: datetime) -> CrlStatus:
    status = CrlStatus(str(path))
    try:
        data = path.read_bytes()
        crl = (
            x509.load_pem_x509_crl(data) if b"-----BEGIN" in data else x509.load_der_x509_crl(data)
        )
    except (OSError, ValueError) as exc:
        status.error = str(exc)
        return status
    status.next_update = crl.next_update_utc
    status.overdue = status.next_update is not None and status.next_update < now
    return status


def collect_node_status(config: Config, *, now: datetime | None = None) -> NodeStatus:
    """Certificates (subject, expiry), the CRL's next update and the spool's free disk."""
    now = now or datetime.now(UTC)
    status = NodeStatus(config.node.id, now)
    wanted: list[tuple[str, Path | None]] = [
        ("server", config.server.cert),
        ("server CA (client certificates)", config.server.client_ca),
    ]
    if config.client is not None:
        wanted += [("client", config.client.cert), ("client CA (peers)", config.client.ca)]
    status.certificates = [_certificate(role, path, now) for role, path in wanted if path]
    if config.server.crl is not None:
        status.crl = _crl(config.server.crl, now)
    spool = Path(config.node.spool)
    try:
        st = os.statvfs(spool if spool.exists() else spool.parent)
        status.disk = DiskStatus(str(spool), st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize)
    except OSError:
        status.disk = None
    return status


def collect_warnings(
    spool: SpoolStatus,
    node: NodeStatus,
    *,
    clock_warn_seconds: float = CLOCK_WARN_SECONDS,
    failed_cycles_warn: int = FAILED_CYCLES_WARN,
) -> list[StatusWarning]:
    """What an operator must act on, most urgent kinds first."""
    found: list[StatusWarning] = []
    for cert in node.certificates:
        if cert.error is not None:
            found.append(StatusWarning(cert.role, f"cannot read {cert.path}: {cert.error}"))
        elif cert.days_left is not None and cert.days_left < CERT_WARN_DAYS:
            when = "expired" if cert.days_left < 0 else f"expires in {cert.days_left:.0f} days"
            found.append(StatusWarning(cert.role, f"certificate {cert.subject} {when}"))
    if node.crl is not None and (node.crl.overdue or node.crl.error):
        what = node.crl.error or f"past its next update ({node.crl.next_update})"
        found.append(StatusWarning("CRL", f"{node.crl.path}: {what}"))
    if node.disk is not None and node.disk.free_fraction < DISK_WARN_FRACTION:
        free = f"{node.disk.free_fraction:.0%}"
        found.append(StatusWarning("node", f"disk of {node.disk.path} is {free} free"))
    for peer in spool.peers:
        for kind, what in (("cycle", "collection"), ("push", "push")):
            failures = peer.facts.get(f"{kind}_failures_in_a_row") or ""
            in_a_row = int(failures) if failures.isdigit() else 0
            if in_a_row >= failed_cycles_warn:
                latest = peer.facts.get(f"last_{kind}_result") or "failed"
                cycles = "cycle" if in_a_row == 1 else "cycles"
                message = f"last {in_a_row} {what} {cycles} failed (latest: {latest})"
                found.append(StatusWarning(peer.id, message))
        offset = peer.facts.get("clock_offset_seconds")
        try:
            off = float(offset) if offset else 0.0
        except ValueError:
            off = 0.0
        if abs(off) > clock_warn_seconds:
            found.append(StatusWarning(peer.id, f"clock offset {off:+.0f} s"))
    return found
