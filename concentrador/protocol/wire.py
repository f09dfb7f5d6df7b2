"""Constants of the wire that several codecs and both adapters share, defined once."""

from __future__ import annotations

__all__ = ["DEFAULT_MAX_ENVELOPE", "DIME_CONTENT_TYPE", "MIB"]

MIB = 1024 * 1024

DIME_CONTENT_TYPE = "application/dime"
"""The HTTP Content-Type of a DIME message (enviarFichero request, recogerFichero answer)."""

DEFAULT_MAX_ENVELOPE = 1 * MIB
"""The largest SOAP envelope we read, plain or as DIME record 0 (a request is ~1 KiB)."""
