"""What an operator may do to a file, from the CLI or the web console alike.

* :func:`retry_push`: a file whose push failed goes back from ``failed/`` to
  ``sending/``, its retry count reset (the next push cycle sends it);
* :func:`republish`: an expired file goes back from ``expired/`` to
  ``published/`` with a fresh publication window (listed again);
* :func:`mark_reviewed`: a person looked at the file (nothing moves).

Each writes its event to the file's audit trail with ``actor`` (who:
``"cli"``, ``"admin@127.0.0.1"``) and ``reason`` (why), in the transaction
of its ledger change; each raises :class:`ActionRefused` (one line, for the
operator) when it does not apply. Files move before the ledger changes, under
the peer lock, each move durable: a crash in between leaves the file where
the ledger does not serve it, and repeating the action finishes it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from concentrador.protocol import parse_block_name
from concentrador.spool.aside import move_aside
from concentrador.spool.durable import durable_move
from concentrador.spool.layout import PeerSpool, Spool, SpoolState
from concentrador.spool.ledger import EventKind, Ledger
from concentrador.spool.locks import peer_lock

__all__ = [
    "PUSH_REASON_PREFIX",
    "REASON_SUFFIX",
    "ActionRefused",
    "mark_reviewed",
    "republish",
    "requeue_failed",
    "retry_push",
]

log = logging.getLogger(__name__)

REASON_SUFFIX = ".reason"
PUSH_REASON_PREFIX = "push of "
"""How the pusher's ``NAME.reason`` lines start (``client/push.py`` writes them)."""


class ActionRefused(Exception):
    """The action does not apply to this file; ``str()`` is one line for the operator."""


def _original(name: str) -> str:
    block = parse_block_name(name)
    return block.original if block is not None else name


def _check_who(actor: str, reason: str) -> None:
    if not actor.strip():
        raise ValueError("an operator action needs an actor (who does it)")
    if not isinstance(reason, str):
        raise TypeError("reason must be text")


# -- retry a failed push -------------------------------------------------------------
def retry_push(
    spool: Spool, ledger: Ledger, peer: str, name: str, *, actor: str, reason: str
) -> list[Path]:
    """Move the failed pushed file ``name`` (all its blocks) back to ``sending/``."""
    _check_who(actor, reason)
    return requeue_failed(spool.peer(peer), ledger, name, actor=actor, reason=reason)


def requeue_failed(
    peer_spool: PeerSpool,
    ledger: Ledger,
    name: str,
    *,
    actor: str = "cli",
    reason: str = "",
) -> list[Path]:
    """:func:`retry_push` on a :class:`PeerSpool`; returns the paths now in ``sending/``.

    ``name`` is the file's name (a block's name also works). Its ``.reason``
    files go to ``archive/`` (kept for the record) and its retry count starts
    again. Only files that failed to be *pushed* qualify: a received block
    set that failed to rebuild is the peer's file, not ours to send.
    """
    original = _original(name)
    failed = peer_spool.dir(SpoolState.FAILED)
    with peer_lock(peer_spool):
        paths = []
        for path in peer_spool.files(SpoolState.FAILED):
            if path.name.endswith(REASON_SUFFIX):
                continue
            if path.name == original or _original(path.name) == original:
                paths.append(path)
        if not paths:
            raise ActionRefused(f"no failed file {original!r} for {peer_spool.peer} in {failed}")
        for path in paths:
            if not _pushed_by_us(ledger, peer_spool.peer, original, path):
                raise ActionRefused(
                    f"{path.name} is not a file we pushed to {peer_spool.peer}; not re-sent"
                )
        sending = peer_spool.dir(SpoolState.SENDING)
        for path in paths:
            if (sending / path.name).exists():
                raise ActionRefused(f"{path.name} is already in {sending}")
        moved = [durable_move(path, sending) for path in paths]
        for path in paths:
            reason_file = path.with_name(path.name + REASON_SUFFIX)
            if reason_file.exists():
                move_aside(reason_file, peer_spool.dir(SpoolState.ARCHIVE), stamp=True)
        detail = reason or "moved back to sending/"
        ledger.set_state(
            peer_spool.peer,
            original,
            SpoolState.SENDING.value,
            detail=detail,
            actor=actor,
            kind=EventKind.RETRIED,
        )
        ledger.clear_push_state(peer_spool.peer, original)
    log.info("%s: %s moved back to sending/ (%d file(s))", peer_spool.peer, original, len(moved))
    return moved


def _pushed_by_us(ledger: Ledger, peer: str, original: str, path: Path) -> bool:
    if ledger.entries_of(peer, original):
        return True
    # Not in the ledger (dropped into sending/ by hand): trust our own reason line.
    reason = path.with_name(path.name + REASON_SUFFIX)
    try:
        with open(reason, encoding="utf-8", errors="replace") as handle:
            return handle.read(len(PUSH_REASON_PREFIX)) == PUSH_REASON_PREFIX
    except OSError:
        return False


# -- re-publish an expired file ----------------------------------------------------------
def republish(
    spool: Spool,
    ledger: Ledger,
    peer: str,
    name: str,
    *,
    actor: str,
    reason: str,
    now: datetime | None = None,
) -> list[Path]:
    """Move the expired file ``name`` (all its blocks) back to ``published/``.

    Its publication window starts again at ``now``, and the peer sees it in
    its next listing. Returns the paths now in ``published/``.
    """
    _check_who(actor, reason)
    peer_spool = spool.peer(peer)
    original = _original(name)
    expired = peer_spool.dir(SpoolState.EXPIRED)
    published = peer_spool.dir(SpoolState.PUBLISHED)
    with peer_lock(peer_spool):
        entries = ledger.entries_of(peer, original)
        if not entries:
            raise ActionRefused(f"{original!r} was never published for {peer}")
        states = {entry.state for entry in entries}
        if states != {SpoolState.EXPIRED.value}:
            raise ActionRefused(f"{original} is {', '.join(sorted(states))}, not expired")
        todo = []
        for entry in entries:
            source, target = expired / entry.name, published / entry.name
            if source.is_file():
                if target.exists():
                    raise ActionRefused(f"{target} exists already; not overwritten")
                todo.append(source)
            elif not target.is_file():  # not moved back by an interrupted earlier run
                raise ActionRefused(f"{entry.name} is missing from {expired}")
        published.mkdir(parents=True, exist_ok=True)
        for source in todo:
            durable_move(source, published)
        ledger.republish(
            peer, original, at=now or datetime.now(UTC), actor=actor, reason=reason or "republished"
        )
    log.info("%s: %s published again by %s: %s", peer, original, actor, reason)
    return [published / entry.name for entry in entries]


# -- mark as reviewed -------------------------------------------------------------------------
def mark_reviewed(
    spool: Spool, ledger: Ledger, peer: str, name: str, *, actor: str, reason: str
) -> None:
    """Note in the trail that ``actor`` reviewed the file ``name`` of ``peer``."""
    _check_who(actor, reason)
    original = _original(name)
    known = (
        ledger.entries_of(peer, original)
        or ledger.received(peer, original) is not None
        or ledger.events_for(peer, original)
    )
    if not known:
        raise ActionRefused(f"no file {original!r} is known for {peer}")
    ledger.note_event(peer, original, EventKind.REVIEWED, reason, actor=actor)
    log.info("%s: %s reviewed by %s: %s", peer, original, actor, reason)
