"""What can go wrong when we call a peer, as a small exception tree.

Every error has a one-line ``str()`` fit for a log line or a CLI error. The
cycles decide what to do from the class alone:

* :class:`PeerConnectionError` (network, TLS, timeout, a body cut short):
  abort this peer's cycle, the next schedule tries again;
* :class:`AuthenticationRefused` (``Client.Autenticacion``): stop calling the
  peer until the configuration is reloaded: it needs an administrator;
* :class:`PeerFaultError`: any other SOAP fault, handled per operation;
* :class:`PeerProtocolError`: the peer answered something we cannot read.
"""

from __future__ import annotations

from concentrador.protocol import Fault, FaultCode

__all__ = [
    "AuthenticationRefused",
    "ClientError",
    "CycleBusy",
    "FileVanished",
    "PeerConnectionError",
    "PeerFaultError",
    "PeerProtocolError",
    "fault_error",
]


class ClientError(Exception):
    """Base class of client-side failures; ``str()`` is one line."""

    def __init__(self, peer: str, message: str) -> None:
        super().__init__(f"{peer}: {message}")
        self.peer = peer


class PeerConnectionError(ClientError):
    """The peer could not be reached, or the connection broke mid-call."""


class PeerProtocolError(ClientError):
    """The peer answered bytes that are not an acceptable CPCSCC answer."""


class PeerFaultError(ClientError):
    """The peer answered a SOAP fault; ``.fault`` holds it."""

    def __init__(self, peer: str, operation: str, fault: Fault) -> None:
        super().__init__(peer, f"{operation} answered fault {fault.code}: {fault.string}")
        self.operation = operation
        self.fault = fault


class AuthenticationRefused(PeerFaultError):
    """``Client.Autenticacion``: the peer does not know us (certificate or id)."""


class FileVanished(PeerFaultError):
    """``Client.Fichero`` (or an old peer's empty ``Fichero``): not published any more."""


class CycleBusy(ClientError):
    """Another process or task is running the same cycle for this peer."""


def fault_error(peer: str, operation: str, fault: Fault) -> PeerFaultError:
    """The most specific error class for ``fault``."""
    if fault.code == FaultCode.AUTENTICACION:
        return AuthenticationRefused(peer, operation, fault)
    if fault.code == FaultCode.FICHERO:
        return FileVanished(peer, operation, fault)
    return PeerFaultError(peer, operation, fault)
