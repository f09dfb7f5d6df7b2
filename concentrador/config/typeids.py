"""The file type ids the config may name.

The authority is ``concentrador.protocol.filetypes.TYPE_IDS``; until that
module exists (it is written concurrently) the list of CPCSCC.md §7 is used,
so a config validates the same either way.
"""

from __future__ import annotations

_SPEC_TYPE_IDS: tuple[str, ...] = (
    *("CUR", "PTE", "PTF", "TAR", "INC", "OBJ", "ROB", "FIR", "AGR", "MAG"),
    *("INV", "DIS", "RIS", "NOS", "OSI", "OSP", "OSA", "OSG", "OSE", "OSD"),
)
ALL_TYPES = "TOD"
"""Not a type: "all of them", only valid alone in a request."""


def _load() -> tuple[str, ...]:
    try:
        from concentrador.protocol.filetypes import TYPE_IDS  # type: ignore[attr-defined]
    except ImportError:
        return _SPEC_TYPE_IDS
    return tuple(type_id for type_id in TYPE_IDS if type_id != ALL_TYPES)


REAL_TYPE_IDS: tuple[str, ...] = _load()
"""The 20 real type ids in §7 order (``TOD`` excluded)."""
