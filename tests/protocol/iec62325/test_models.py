"""Wire vocabulary, datetimes, the error table and the models."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from concentrador.protocol.errors import ProtocolError
from concentrador.protocol.iec62325 import (
    ERROR_CODES,
    ErrorCode,
    Iec62325Error,
    MessageId,
    PutRequest,
    Response,
    SignatureError,
    format_datetime,
    parse_datetime,
)
from concentrador.protocol.iec62325.models import Header
from concentrador.protocol.iec62325.wire import PLACEHOLDER, ReplyResult


def test_format_datetime_is_utc_with_z() -> None:
    madrid = timezone(timedelta(hours=2))
    assert format_datetime(datetime(2024, 6, 1, 12, 0, 0, tzinfo=madrid)) == "2024-06-01T10:00:00Z"
    assert format_datetime(datetime(2024, 6, 1, 12, 0, 0)) == "2024-06-01T12:00:00Z"
    assert format_datetime(datetime(2024, 6, 1, 0, 0, 0, 120000, tzinfo=UTC)) == (
        "2024-06-01T00:00:00.12Z"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-06-01T10:00:00Z", datetime(2024, 6, 1, 10, tzinfo=UTC)),
        ("2024-06-01T12:00:00+02:00", datetime(2024, 6, 1, 10, tzinfo=UTC)),
        ("2024-06-01T10:00:00", datetime(2024, 6, 1, 10, tzinfo=UTC)),
        ("2024-06-01T10:00:00.123456789Z", datetime(2024, 6, 1, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2024-06-01T24:00:00Z", datetime(2024, 6, 2, tzinfo=UTC)),
    ],
)
def test_parse_datetime_accepts_xs_datetime(text: str, expected: datetime) -> None:
    assert parse_datetime(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2024-06-01",
        "2024-13-01T00:00:00Z",
        "2024-06-01T10:00:00+15:00",
        "01/06/2024 10:00:00",
        "2024-06-01T10:00:00ZZ",
        "2024-02-30T00:00:00Z",
        "2024-06-01T24:00:01Z",
    ],
)
def test_parse_datetime_refuses_the_rest(text: str) -> None:
    assert parse_datetime(text) is None


def test_every_code_constant_is_in_the_table_with_ree_shape() -> None:
    codes = {v for k, v in vars(ErrorCode).items() if not k.startswith("_")}
    assert codes == set(ERROR_CODES)
    for code in codes:
        assert re.fullmatch(r"(HAND|LST|GET|PUT|QRY)-\d{3}", code)


def test_error_carries_code_details_and_side() -> None:
    error = Iec62325Error(ErrorCode.GET_NOT_FOUND, "no message 7")
    assert isinstance(error, ProtocolError)
    assert (error.code, error.details, str(error)) == (
        "GET-006",
        "no message 7",
        "GET-006: no message 7",
    )
    assert not error.server_side
    assert Iec62325Error(ErrorCode.PUT_STORE_FAILED, "disk").server_side
    assert Iec62325Error("XYZ-999", "unknown").server_side is False
    signature = SignatureError("digest mismatch")
    assert signature.code == "HAND-007" and isinstance(signature, Iec62325Error)
    assert SignatureError("no signature", ErrorCode.SIGNATURE_SYNTAX).code == "HAND-008"


def test_models_name_helpers() -> None:
    header = Header("reply", "Compressed")
    response = Response(
        header, ReplyResult.OK, ids=(MessageId("x", "other"), MessageId("f.bz2", "name"))
    )
    assert response.name == "f.bz2"
    put = PutRequest(Header("create", "Compressed"), name="f.bz2", compressed=PLACEHOLDER)
    assert put.is_binary
