"""Helpers of the claims tests: a claim held by another process, and the cycle log check."""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from concentrador.spool.ledger import CycleEntry

_HOLDER = """
import sys
from pathlib import Path
from concentrador.spool.claims import open_claims
from concentrador.spool.layout import Spool
root, url, peer, kind = sys.argv[1:5]
claims = open_claims(Spool(Path(root)), url or None, replica="holder")
with claims.hold(peer, kind):
    print("held", flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""


@contextmanager
def holder_process(
    root: Path, peer: str, kind: str, url: str | None = None
) -> Iterator[subprocess.Popen[str]]:
    """Another process that holds (peer, kind) until the block ends (or it is killed)."""
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(root), url or "", peer, kind],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline().strip()
        assert line == "held", f"the holder process did not take the claim: {line!r}"
        yield child
    finally:
        if child.poll() is None:
            child.communicate("\n", timeout=30)


def assert_no_overlap(entries: Iterable[CycleEntry]) -> None:
    """No two rows of one (peer, kind) overlap in time, and every row has ended."""
    by_key: dict[tuple[str, str], list[CycleEntry]] = {}
    for entry in entries:
        assert entry.ended_at is not None, f"cycle still open (holder died?): {entry}"
        by_key.setdefault((entry.peer, entry.kind), []).append(entry)
    for rows in by_key.values():
        rows.sort(key=lambda e: (e.started_at, e.id))
        for before, after in itertools.pairwise(rows):
            assert before.ended_at is not None
            assert before.ended_at <= after.started_at, f"overlapping cycles: {before} / {after}"
