"""``/readyz``: can this node do its job right now? One named check each.

Ready means: the CPCSCC server is listening, the ledger takes a write, the
spool root takes a file, and every certificate the node presents or trusts
can be read and is within its validity period. Each check is cheap (no
write is left behind) and says why it failed, for the operator.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

from concentrador.console.node import ConsoleNode
from concentrador.spool.node_status import collect_node_status

__all__ = ["Check", "readiness"]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _listening(node: ConsoleNode) -> Check:
    urls = node.listeners()
    return Check("listening", bool(urls), ", ".join(urls) or "the CPCSCC server is not listening")


def _ledger(node: ConsoleNode) -> Check:
    try:
        node.ledger.check_writable()
    except Exception as exc:  # any failure means "not ready"; the detail says which
        return Check("ledger", False, f"{node.ledger.location}: not writable: {exc}")
    return Check("ledger", True, node.ledger.location)


def _spool(node: ConsoleNode) -> Check:
    root = node.spool.root
    try:
        # A temp name (leading dot) that no watcher or scanner takes as a file.
        with tempfile.NamedTemporaryFile(dir=root, prefix=".readyz-") as probe:
            probe.write(b"ok")
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        return Check("spool", False, f"{root}: not writable: {exc.strerror}")
    return Check("spool", True, str(root))


def _certificates(node: ConsoleNode) -> Check:
    status = collect_node_status(node.config, now=node.now())
    bad = [
        f"{cert.role} {cert.path}: {cert.error or 'expired'}"
        for cert in status.certificates
        if cert.error is not None or cert.days_left is None or cert.days_left <= 0
    ]
    if bad:
        return Check("certificates", False, "; ".join(bad))
    return Check("certificates", True, "all valid")


def readiness(node: ConsoleNode) -> list[Check]:
    """Every check, in order (blocking: run in a thread)."""
    return [check(node) for check in (_listening, _ledger, _spool, _certificates)]
