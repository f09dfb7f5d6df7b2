"""Server-side mutual TLS with a CRL that can be reloaded without a restart.

aiohttp binds one ``ssl.SSLContext`` when the site starts, and an X509
store only ever *adds* CRLs (OpenSSL then keeps preferring the first one it
loaded), so a reload cannot simply mutate the listening context. Instead the
listening context has an SNI callback that, during every handshake, moves the
connection onto the *current* inner context. OpenSSL verifies the client
certificate against the store of the context the connection ends up on, so a
freshly built inner context means a fresh CRL. The callback runs whether or
not the client sent SNI (Axis 1.4 does not).
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


class TLSConfigError(Exception):
    """The TLS material could not be loaded; the message names the file."""


@dataclass(frozen=True)
class ServerTLSFiles:
    cert: Path
    key: Path
    client_ca: Path
    crl: Path | None = None


def _base_context(files: ServerTLSFiles) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_REQUIRED
    if files.crl is not None:
        ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    return ctx


def build_server_context(files: ServerTLSFiles) -> ssl.SSLContext:
    """A complete mutual-TLS server context: our cert, the client CA and CRL."""
    ctx = _base_context(files)
    try:
        ctx.load_cert_chain(str(files.cert), str(files.key))
    except (OSError, ssl.SSLError) as exc:
        raise TLSConfigError(f"server certificate {files.cert} / key {files.key}: {exc}") from exc
    try:
        ctx.load_verify_locations(cafile=str(files.client_ca))
    except (OSError, ssl.SSLError) as exc:
        raise TLSConfigError(f"client CA bundle {files.client_ca}: {exc}") from exc
    if files.crl is not None:
        try:
            ctx.load_verify_locations(cafile=str(files.crl))
        except (OSError, ssl.SSLError) as exc:
            raise TLSConfigError(f"CRL {files.crl}: {exc}") from exc
    return ctx


class ReloadableServerTLS:
    """Owns the listening context and swaps in rebuilt inner contexts."""

    def __init__(self, files: ServerTLSFiles) -> None:
        self._lock = threading.Lock()
        self._files = files
        self._inner = build_server_context(files)
        self._crl_stamp = self._stamp(files.crl)
        # The outer context must verify with the same mode and flags: those
        # are copied into each connection before the callback runs.
        self.context = build_server_context(files)
        self.context.sni_callback = self._select_context

    @staticmethod
    def _stamp(path: Path | None) -> tuple[int, int] | None:
        if path is None:
            return None
        try:
            st = os.stat(path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def _select_context(
        self, sslobj: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext
    ) -> None:
        sslobj.context = self._inner

    def reload(self, files: ServerTLSFiles | None = None) -> None:
        """Rebuild from disk; on failure keep serving with the old material."""
        files = files or self._files
        inner = build_server_context(files)  # raises TLSConfigError, old one stays
        with self._lock:
            self._files = files
            self._inner = inner
            self._crl_stamp = self._stamp(files.crl)
        log.info("TLS material reloaded (crl=%s)", files.crl)

    def reload_if_crl_changed(self) -> bool:
        """Cheap poll for the periodic job: reload when the CRL file changed."""
        stamp = self._stamp(self._files.crl)
        if self._files.crl is None or stamp == self._crl_stamp:
            return False
        try:
            self.reload()
        except TLSConfigError as exc:
            log.error("CRL changed but could not be loaded, keeping the old one: %s", exc)
            self._crl_stamp = stamp  # do not retry on every poll; next change retries
            return False
        return True
