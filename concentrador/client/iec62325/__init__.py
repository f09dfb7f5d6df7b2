"""The client side of the IEC 62325-504 profile (CPCSCC v3.0), beside v2.3's.

* :mod:`.transport` — one keep-alive mutual-TLS connection, SOAP 1.1 or 1.2
  (shares the TLS context, deadlines, cookies and error mapping of
  :mod:`concentrador.client.session`);
* :mod:`.signatures` — signing our requests, checking the peer's answers and
  (with :mod:`concentrador.pki.signer`, shared with the server) that their
  signer is the peer;
* :mod:`.fetch`, :mod:`.upload` — streaming ``get`` answers to ``.work/`` and
  ``put`` bodies from disk (two passes: digest, then send);
* :mod:`.faults` — 504 faults as the client's error classes;
* :mod:`.session` — list, get, put, query;
* :mod:`.collect`, :mod:`.push` — the cycles;
  :class:`~concentrador.client.runner.ClientRunner` picks them by ``peer.protocol``.
"""

from concentrador.client.iec62325.collect import CollectionStopped, Iec62325Collector
from concentrador.client.iec62325.push import Iec62325Pusher
from concentrador.client.iec62325.session import Iec62325Session

__all__ = ["CollectionStopped", "Iec62325Collector", "Iec62325Pusher", "Iec62325Session"]
