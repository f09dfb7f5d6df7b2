"""What the sender does after one enviarFichero attempt (CPCSCC.md §4.5 table).

Pure: an :class:`Outcome` and the attempt count in, a :class:`Decision` out.
The push cycle applies it (moves files, writes the ledger); tests can check
every row of the table here without a network or a disk.

| outcome                                   | decision                         |
|-------------------------------------------|----------------------------------|
| codigo 0                                  | next block / delivered           |
| codigo 6                                  | next block / delivered, warning  |
| codigo 1, 2, unknown codigo               | retry after ``retry_delay``      |
| connection error, unreadable answer       | retry after ``retry_delay``      |
| ``Server.Generico`` or any ``Server*``    | retry after ``retry_delay``      |
| ``Client.Autenticacion``, codigo 3, 4, 5  | escalate at once                 |
| any other ``Client*`` fault               | escalate at once                 |

A retry whose failed attempts exceed ``retries`` escalates instead, so
``retries = 5`` means one try plus five retries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from concentrador.protocol import Fault, PushResult

__all__ = ["Action", "Decision", "Outcome", "decide"]


class Action(StrEnum):
    ACCEPTED = "accepted"
    """This block is stored by the peer; go on with the next one."""
    RETRY = "retry"
    """Keep the file in ``sending/``; try again after ``retry_delay``."""
    ESCALATE = "escalate"
    """Move the file to ``failed/`` with a reason; an operator must act."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one enviarFichero call: exactly one field is set."""

    codigo: int | None = None
    fault: Fault | None = None
    connection_error: str | None = None
    protocol_error: str | None = None

    def describe(self) -> str:
        """One line for logs, ``.reason`` files and the ledger."""
        if self.codigo is not None:
            try:
                meaning = PushResult(self.codigo).name.lower().replace("_", " ")
            except ValueError:
                meaning = "unknown code"
            return f"codigo {self.codigo} ({meaning})"
        if self.fault is not None:
            return f"fault {self.fault.code}: {self.fault.string}"
        if self.connection_error is not None:
            return f"connection error: {self.connection_error}"
        return f"unreadable answer: {self.protocol_error}"


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: str
    """Why (one line), e.g. for ``NAME.reason``."""
    warning: str | None = None
    """Set for code 6: delivered, but the operator should know."""
    next_attempt_at: datetime | None = None


# Keyed by int: the wire codigo may be one PushResult does not name.
_ESCALATE_CODES: dict[int, str] = {
    PushResult.PARTICIPANT_NOT_ALLOWED: "the peer does not accept this participant code from us",
    PushResult.TYPE_NOT_ALLOWED: "the peer does not accept this file type from us",
    PushResult.TOO_LARGE: "the peer says the file or block is larger than 8 MB",
}


def decide(
    outcome: Outcome,
    *,
    failed_attempts: int,
    retries: int,
    retry_delay: float,
    now: datetime,
) -> Decision:
    """The decision after one attempt.

    ``failed_attempts`` counts the failures of this file *including* this one
    when ``outcome`` is a failure (the ledger has just recorded it).
    """
    described = outcome.describe()
    if outcome.codigo is not None:
        if outcome.codigo == PushResult.STORED:
            return Decision(Action.ACCEPTED, described)
        if outcome.codigo == PushResult.OUTSIDE_LOAD_WINDOW:
            warning = "stored outside the peer's load window: it will not be loaded automatically"
            return Decision(Action.ACCEPTED, described, warning=warning)
        if outcome.codigo in _ESCALATE_CODES:
            return Decision(Action.ESCALATE, f"{described}: {_ESCALATE_CODES[outcome.codigo]}")
        # 1, 2 and codes §4.5 does not know: the peer did not store it, and
        # nothing says trying again is pointless.
        return _retry(described, failed_attempts, retries, retry_delay, now)
    if outcome.fault is not None:
        if outcome.fault.is_client:
            # Client.Autenticacion needs an administrator; any other Client
            # fault says our request itself is refused, so a retry of the same
            # bytes would be refused again.
            return Decision(Action.ESCALATE, described)
        return _retry(described, failed_attempts, retries, retry_delay, now)
    return _retry(described, failed_attempts, retries, retry_delay, now)


def _retry(
    described: str, failed_attempts: int, retries: int, retry_delay: float, now: datetime
) -> Decision:
    if failed_attempts > retries:
        return Decision(
            Action.ESCALATE, f"{described}; gave up after {failed_attempts} failed attempt(s)"
        )
    return Decision(Action.RETRY, described, next_attempt_at=now + timedelta(seconds=retry_delay))
