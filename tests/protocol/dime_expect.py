"""``raises_dime(code)``: expect a DIME error naming ``code``, of the class that code belongs to."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from concentrador.protocol.dime import (
    DimeError,
    DimeErrorCode,
    DimeFormatError,
    DimeLimitError,
    DimeTruncatedError,
    DimeUsageError,
)

Code = DimeErrorCode

# Which class each rule is raised as: the contract adapters rely on (a
# truncated body is a dropped connection, an oversized file is answered 5...).
_LIMIT_CODES = {
    Code.ENVELOPE_TOO_LARGE,
    Code.ATTACHMENT_TOO_LARGE,
    Code.TYPE_TOO_LONG,
    Code.ID_TOO_LONG,
    Code.OPTIONS_TOO_LONG,
    Code.TOO_MANY_RECORDS,
}
_USAGE_CODES = {Code.CONFIGURATION, Code.STATE, Code.PAYLOAD_LENGTH}


def error_class(code: DimeErrorCode) -> type[DimeError]:
    if code is Code.TRUNCATED:
        return DimeTruncatedError
    if code in _LIMIT_CODES:
        return DimeLimitError
    if code in _USAGE_CODES:
        return DimeUsageError
    return DimeFormatError


@contextmanager
def raises_dime(
    code: DimeErrorCode, match: str | None = None
) -> Iterator[pytest.ExceptionInfo[DimeError]]:
    with pytest.raises(error_class(code), match=match) as info:
        yield info
    assert info.value.code is code, f"{info.value.code} raised, {code} expected: {info.value}"
    if code is not Code.TRUNCATED:
        assert not isinstance(info.value, DimeTruncatedError)
