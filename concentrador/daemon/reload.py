"""What a SIGHUP reload may change, and the TLS files it reloads.

The listening socket and the spool root are fixed for the life of the
process: a reload that changes them keeps the old values and says so,
rather than half-apply them.
"""

from __future__ import annotations

import dataclasses
import logging

from concentrador.config import Config
from concentrador.server.tls import ServerTLSFiles

__all__ = ["keep_restart_only_settings", "tls_files"]

# The daemon's logger: these lines belong with its other reload messages.
log = logging.getLogger("concentrador.daemon.serve")


def tls_files(config: Config) -> ServerTLSFiles:
    """The server's certificate, key, client CA and CRL paths from ``config``."""
    server = config.server
    assert server.cert and server.key and server.client_ca  # checked by load_config
    return ServerTLSFiles(server.cert, server.key, server.client_ca, server.crl)


def keep_restart_only_settings(old: Config, new: Config) -> Config:
    """``new``, but with the settings a reload cannot apply taken from ``old``."""
    kept = []
    if new.node.spool != old.node.spool:
        kept.append(f"node.spool stays {old.node.spool}")
        new = dataclasses.replace(new, node=dataclasses.replace(new.node, spool=old.node.spool))
    if (new.spool, new.node.replica) != (old.spool, old.node.replica):
        # The watcher's mode and the temp folders are chosen at start.
        kept.append("[spool] and node.replica stay as they were")
        node = dataclasses.replace(new.node, replica=old.node.replica)
        new = dataclasses.replace(new, node=node, spool=old.spool)
    server = new.server
    if (server.host, server.port, server.insecure_http) != (
        old.server.host,
        old.server.port,
        old.server.insecure_http,
    ):
        kept.append(f"server.listen/insecure_http stay {old.server.listen}")
        server = dataclasses.replace(
            server,
            host=old.server.host,
            port=old.server.port,
            insecure_http=old.server.insecure_http,
        )
        new = dataclasses.replace(new, server=server)
    if new.server.limits != old.server.limits:
        # The listener and its connection guard are built once, at start.
        kept.append("server deadlines and connection caps stay as they were")
        server = dataclasses.replace(new.server, limits=old.server.limits)
        new = dataclasses.replace(new, server=server)
    for line in kept:
        log.warning("reload: %s until a restart", line)
    return new
