"""The root of every error the protocol core raises.

A fuzzer feeding hostile bytes to any parser in ``concentrador.protocol``
must only ever see subclasses of :class:`ProtocolError`; anything else is a
bug. Each concept module defines its own specific subclasses.
"""


class ProtocolError(Exception):
    """Base class for all errors raised by the pure protocol core.

    ``str(err)`` is a one-line, human-readable message fit for a log line,
    a SOAP faultstring or a CLI error.
    """
