"""peticionFechaHora: our wall-clock time in the node's time zone (CPCSCC.md §4.1)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from concentrador.protocol import PeticionFechaHoraResponse

__all__ = ["current_time"]


def current_time(now: datetime, timezone: ZoneInfo) -> PeticionFechaHoraResponse:
    """The answer for the moment ``now`` (aware), shown in ``timezone``.

    The wire format carries no zone (``DD/MM/YYYY hh:mm:ss``), so the
    conversion must happen here: a peer compares it to its own local time.
    """
    if now.tzinfo is None:
        raise ValueError("peticionFechaHora needs a timezone-aware 'now'")
    return PeticionFechaHoraResponse(now.astimezone(timezone))
