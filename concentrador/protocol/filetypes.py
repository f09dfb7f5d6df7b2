"""The CPCSCC file types, the prefix → type classifier and the participant code.

CPCSCC.md §4.2 lists 21 type ids (``TOD`` last, meaning "all types"); §7 says
what each type holds and that a file's type comes from its folder or, failing
that, from a configurable table of P.O. 10.11 file-name prefixes. The table
and its matching rules live here; docs/filetypes.md is the operator's view.

Matching rules (project decisions):

* The *leading field* of a name is the part before its first ``_``
  (``F1_0086_20040612_20040617.9.bz2`` → ``F1``); the whole name when it has
  no ``_``. It is compared to the table keys case-insensitively.
* A key ending in ``*`` (``"F5*"``) matches any leading field that starts with
  the rest of the key; among such keys the longest wins. An exact key always
  wins over a ``*`` key. There is no implicit prefix matching: ``F1`` does not
  claim ``F10_…``, because a misclassified file is published to the wrong
  type silently, while an unclassified one is reported to the operator.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from types import MappingProxyType

from concentrador.protocol.errors import ProtocolError

TOD = "TOD"
"""Not a type: in a request it means "all types" and must be alone (§4.2)."""

REAL_TYPE_IDS: tuple[str, ...] = (
    "CUR", "PTE", "PTF", "TAR", "INC", "OBJ", "ROB", "FIR", "AGR", "MAG",
    "INV", "DIS", "RIS", "NOS", "OSI", "OSP", "OSA", "OSG", "OSE", "OSD",
)  # fmt: skip
"""The 20 real type ids in the spec's order (the order a ``TOD`` answer uses)."""

TYPE_IDS: tuple[str, ...] = (*REAL_TYPE_IDS, TOD)
"""All 21 ids of the ``TipoFichero id`` enumeration, in the spec's order."""

TYPE_DESCRIPTIONS: Mapping[str, str] = MappingProxyType(
    {
        "CUR": "hourly and quarter-hourly load curves (P.O. 10.11 §3.1.1–3.1.3)",
        "PTE": "pending measurement-point data, meter balances, signatures (3.1.14/15/17)",
        "PTF": "pending boundary-point hourly data, pending aggregates (3.1.16, 3.2.4)",
        "TAR": "contract closings, instantaneous readings, billing balances (3.1.4–3.1.6)",
        "INC": "incidents, recorder events, boundary measure cancellations (3.1.7/8/18)",
        "OBJ": "objections to hourly and non-hourly measures (3.1.9, 3.1.11)",
        "ROB": "responses to objections (3.1.10, 3.1.12)",
        "FIR": "signatures of hourly load curves (3.1.13)",
        "AGR": "aggregation definitions and removals (3.2.1, 3.2.2)",
        "MAG": "aggregated measures, incl. variable-length form (3.2.3, 3.2.4)",
        "INV": "customer point and equipment inventory, requests, reading dates (3.3.x)",
        "DIS": "point requests, change of retailer (3.3.1, 3.3.8)",
        "RIS": "responses to inventory modification requests (3.3.4, 3.3.7)",
        "NOS": "customer registration/change/removal notices to the SO (3.3.10–3.3.14)",
        "OSI": "system operator inventory data (3.4.1)",
        "OSP": "system operator hourly energy by boundary point (3.4.2.x)",
        "OSA": "system operator monthly accumulated energy (3.4.3.x)",
        "OSG": "system operator aggregation inventories and energy (3.4.4.x)",
        "OSE": "error files for data sent to the system operator",
        "OSD": "system demand and final profiles (3.5.1, 3.5.2)",
    }
)
"""One line per real type, for docs, logs and the CLI."""

DEFAULT_PREFIXES: Mapping[str, str] = MappingProxyType(
    {
        # The only prefixes the spec and its worked examples tie to a type:
        # §7 names F1, F5, P1, P2 → CUR, and Annex 2 lists F1_… and P1_…
        # files in answer to a CUR request. Other P.O. 10.11 prefixes are
        # left for the operator's table rather than guessed (see module doc).
        "F1": "CUR",
        "F5": "CUR",
        "P1": "CUR",
        "P2": "CUR",
    }
)
"""The shipped prefix → type table; config ``[filetypes] prefixes`` is merged over it."""

WILDCARD = "*"


class FileTypeError(ProtocolError):
    """A type id or a prefix table is not valid."""


def is_type_id(value: str) -> bool:
    """True for the 21 ids of §4.2 (exact, upper case, as on the wire)."""
    return value in TYPE_IDS


def normalise_type_id(value: str) -> str:
    """A configured real type id in wire form (upper case), or FileTypeError.

    Configuration is read case-insensitively (``cur`` is ``CUR``); ``TOD`` is
    refused because no file *is* of type TOD.
    """
    if not isinstance(value, str):
        raise FileTypeError(f"a file type must be a string, not {type(value).__name__}")
    upper = value.strip().upper()
    if upper == TOD:
        raise FileTypeError("TOD means 'all types' and cannot be the type of a file")
    if upper not in REAL_TYPE_IDS:
        raise FileTypeError(
            f"unknown file type {value!r}; expected one of {' '.join(REAL_TYPE_IDS)}"
        )
    return upper


def leading_field(name: str) -> str:
    """The part of ``name`` before its first ``_`` (all of it when there is none)."""
    return name.split("_", 1)[0]


def participant_code(name: str) -> str | None:
    """The participant code of a P.O. 10.11 name: its second ``_`` field.

    ``F1_0086_20040612_20040617.9.bz2`` → ``0086``. Decision: the second field
    counts only when another field follows it, because in P.O. 10.11 names a
    date always follows the code; in ``P1_20031120.1`` the second field is a
    date and version, not a code, so the answer is None. An empty field is None.
    """
    fields = name.split("_", 2)
    if len(fields) < 3 or not fields[1]:
        return None
    return fields[1]


def merge_prefixes(
    overrides: Mapping[str, str], base: Mapping[str, str] = DEFAULT_PREFIXES
) -> dict[str, str]:
    """``base`` with ``overrides`` laid over it, keys compared case-insensitively.

    This is how config ``[filetypes] prefixes`` combines with the shipped
    table: a configured ``"f1"`` replaces the shipped ``"F1"`` instead of
    clashing with it, and new keys are added. Validation is left to
    :class:`TypeClassifier`.
    """
    folded = {key.casefold() for key in overrides if isinstance(key, str)}
    merged = {k: v for k, v in base.items() if k.casefold() not in folded}
    merged.update(overrides)
    return merged


def _check_prefix_key(key: object) -> str:
    if not isinstance(key, str):
        raise FileTypeError(f"a file-name prefix must be a string, not {type(key).__name__}")
    stem = key.removesuffix(WILDCARD)
    if not stem:
        raise FileTypeError(f"prefix {key!r} is empty; every prefix needs at least one character")
    if "_" in stem:
        raise FileTypeError(
            f"prefix {key!r} contains '_'; a prefix is matched against"
            f" the part of a name before its first '_'"
        )
    if WILDCARD in stem:
        raise FileTypeError(f"prefix {key!r}: '*' is only allowed as the last character")
    for char in stem:
        if char.isspace() or unicodedata.category(char).startswith("C"):
            raise FileTypeError(f"prefix {key!r} contains whitespace or a control character")
    return key


class TypeClassifier:
    """Maps a file name to its type id through a prefix table (CPCSCC.md §7, rule 2).

    ``prefixes`` maps a leading field (or ``stem*`` pattern) to a real type id;
    it is validated here so that a bad config fails at start-up with a
    :class:`FileTypeError` naming the bad entry.
    """

    def __init__(self, prefixes: Mapping[str, str] = DEFAULT_PREFIXES) -> None:
        exact: dict[str, str] = {}
        patterns: dict[str, str] = {}
        spelled: dict[str, str] = {}  # folded key → key as written, for messages
        for key, type_id in prefixes.items():
            _check_prefix_key(key)
            normalised = normalise_type_id(type_id)
            folded = key.casefold()
            if folded in spelled and (exact | patterns)[folded] != normalised:
                raise FileTypeError(
                    f"prefixes {spelled[folded]!r} and {key!r} differ only in case"
                    f" but map to different types"
                )
            spelled[folded] = key
            if folded.endswith(WILDCARD):
                patterns[folded] = normalised
            else:
                exact[folded] = normalised
        self._exact = exact
        # Longest stem first, so the first hit is the most specific pattern.
        self._patterns = sorted(
            ((stem.removesuffix(WILDCARD), t) for stem, t in patterns.items()),
            key=lambda item: (-len(item[0]), item[0]),
        )
        self._table = MappingProxyType({spelled[k]: v for k, v in (exact | patterns).items()})

    @property
    def prefixes(self) -> Mapping[str, str]:
        """The validated table, keys as written, type ids upper case."""
        return self._table

    def classify(self, name: str) -> str | None:
        """The type id of ``name``, or None when no prefix matches (not published)."""
        field = leading_field(name).casefold()
        if not field:
            return None
        found = self._exact.get(field)
        if found is not None:
            return found
        for stem, type_id in self._patterns:
            if field.startswith(stem):
                return type_id
        return None

    def __repr__(self) -> str:
        return f"TypeClassifier({dict(self._table)!r})"
