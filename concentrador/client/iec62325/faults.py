"""A 504 peer's faults as the client's error classes, so the cycles and the
retry policy (:mod:`concentrador.client.retry_policy`) treat both profiles alike.

A 504 fault is a SOAP fault whose ``detail`` holds ``FaultMessage/Reply/Error``
with a REE-style code (``GET-006``...). It becomes a
:class:`~concentrador.client.errors.PeerFaultError` whose ``fault.code`` is
``Client.<code>`` or ``Server.<code>`` and whose text is the peer's details:

* ``Client`` when the peer says the requester is at fault (SOAP 1.1
  ``Client``, SOAP 1.2 ``Sender``), ``Server`` otherwise; the retry policy
  escalates the former and retries the latter;
* but a few codes mean "try again later" whatever the SOAP code says
  (:data:`TRANSIENT`: busy, temporarily blocked, a read or store failure);
* ``HAND-001`` / ``HAND-003`` (the peer does not know us, or will not let us
  act as who we say) become :class:`AuthenticationRefused`: an administrator
  must act, as for v2.3's ``Client.Autenticacion``;
* ``GET-006`` (no such message) becomes :class:`FileVanished`.
"""

from __future__ import annotations

from collections.abc import Sequence

from concentrador.client.errors import AuthenticationRefused, FileVanished, PeerFaultError
from concentrador.protocol import Fault
from concentrador.protocol.iec62325.errors import ErrorCode
from concentrador.protocol.iec62325.models import ReplyError

__all__ = ["AUTHENTICATION", "TRANSIENT", "iec_fault_error", "reply_failed_error"]

AUTHENTICATION = frozenset({ErrorCode.UNIDENTIFIED, ErrorCode.NOT_ALLOWED})
TRANSIENT = frozenset(
    {
        "HAND-022",  # runtime exception
        "LST-006",  # database read failed
        "LST-020",  # list limits exceeded, temporarily blocked
        "GET-007",  # database read failed
        "GET-010",  # get limits exceeded, temporarily blocked
        "GET-013",  # file read failed
        "PUT-001",  # cannot process, no reason given
        "PUT-002",  # a message of the same type/date is being processed
        "PUT-009",  # unable to store
        "PUT-016",  # put limits exceeded, temporarily blocked
        "QRY-004",
    }
)
_CLIENT_CODES = frozenset({"client", "sender"})


def iec_fault_error(
    peer: str, operation: str, soap: Fault | None, errors: Sequence[ReplyError]
) -> PeerFaultError:
    """The error for a 504 fault: the SOAP fault (if any) and its ``Reply/Error`` list."""
    first = errors[0] if errors else None
    code = first.code if first is not None and first.code else "HAND-010"
    texts = [_describe(error) for error in errors] or [soap.string if soap else "no details"]
    if soap is not None and not errors and soap.detail:
        texts.append(soap.detail)
    side = "Client"
    if soap is not None and soap.base_class.lower() not in _CLIENT_CODES:
        side = "Server"
    if code in TRANSIENT:
        side = "Server"
    fault = Fault(f"{side}.{code}", "; ".join(t for t in texts if t) or code)
    if code in AUTHENTICATION:
        return AuthenticationRefused(peer, operation, fault)
    if code == ErrorCode.GET_NOT_FOUND:
        return FileVanished(peer, operation, fault)
    return PeerFaultError(peer, operation, fault)


def reply_failed_error(peer: str, operation: str, errors: Sequence[ReplyError]) -> PeerFaultError:
    """A ``ResponseMessage`` whose ``Reply/Result`` is ``FAILED`` (no SOAP fault)."""
    return iec_fault_error(peer, operation, None, errors or [ReplyError("HAND-010", "FAILED")])


def _describe(error: ReplyError) -> str:
    parts = [error.details or error.reason or ""]
    if error.reason and error.details and error.reason != error.details:
        parts.append(f"({error.reason})")
    return " ".join(p for p in parts if p)
