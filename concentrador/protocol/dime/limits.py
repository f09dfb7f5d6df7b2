"""What the DIME reader agrees to accept from a peer.

The reader checks every announced length against these limits as soon as it
has decoded the header that announces it, i.e. before it reads, buffers or
allocates anything for that field (CPCSCC.md §5). The defaults fit CPCSCC:
an envelope of at most 1 MiB and a file or block of at most 8 MiB (the
receiver's bound in §6; §4.5 answers code 5 above it, which needs the adapter
to raise ``max_attachment`` if it wants to *answer* instead of cutting the
message short).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from concentrador.protocol.dime.errors import (
    DimeErrorCode,
    DimeUsageError,
)
from concentrador.protocol.dime.header import MAX_FIELD_LENGTH
from concentrador.protocol.wire import DEFAULT_MAX_ENVELOPE, MIB


@dataclass(frozen=True, slots=True)
class DimeLimits:
    """Upper bounds for one DIME message, all inclusive.

    - ``max_envelope``: bytes of logical record 0 (the SOAP envelope),
      summed over its chunks.
    - ``max_attachment``: bytes of each later logical record, summed over
      its chunks.
    - ``max_type_length``, ``max_id_length``, ``max_options_length``: the
      16-bit TYPE, ID and OPTIONS lengths of any physical record.
    - ``max_records``: physical records, continuation chunks included (a
      chunk of 1 byte costs a header each, so this bounds the CPU a peer can
      make us spend per payload byte).
    """

    max_envelope: int = DEFAULT_MAX_ENVELOPE
    max_attachment: int = 8 * MIB
    max_type_length: int = 256
    max_id_length: int = 256
    max_options_length: int = 256
    max_records: int = 4096

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            # bool is an int subclass; True as a limit is surely a mistake.
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise DimeUsageError(
                    DimeErrorCode.CONFIGURATION,
                    f"DimeLimits.{field.name} must be a non-negative int, got {value!r}",
                )
        for name in ("max_type_length", "max_id_length", "max_options_length"):
            if getattr(self, name) > MAX_FIELD_LENGTH:
                raise DimeUsageError(
                    DimeErrorCode.CONFIGURATION,
                    f"DimeLimits.{name} cannot exceed the 16-bit field maximum {MAX_FIELD_LENGTH}",
                )
        if self.max_records < 1:
            raise DimeUsageError(
                DimeErrorCode.CONFIGURATION, "DimeLimits.max_records must be at least 1"
            )


# The frozen default instance, shared as a default argument.
DEFAULT_LIMITS = DimeLimits()
