"""``query``: the server time (the v3 peticionFechaHora) and the data types we answer."""

from __future__ import annotations

from datetime import datetime

from lxml import etree

from concentrador.protocol.iec62325.errors import ErrorCode, Iec62325Error
from concentrador.protocol.iec62325.models import QueryRequest
from concentrador.protocol.iec62325.request import SUPPORTED_DATA_TYPES
from concentrador.protocol.iec62325.response import data_types_response, server_time_response
from concentrador.protocol.iec62325.wire import DataType

__all__ = ["query_answer"]


def query_answer(request: QueryRequest, now: datetime) -> etree._Element:
    """The ResponseMessage for ``request`` at ``now`` (aware; sent as UTC)."""
    if request.data_type == DataType.SERVER_TIMESTAMP:
        return server_time_response(now)
    if request.data_type == DataType.LIST_OF_DATA_TYPES:
        return data_types_response(SUPPORTED_DATA_TYPES, now)
    raise Iec62325Error(
        ErrorCode.QUERY_UNKNOWN_DATA_TYPE,
        f"DataType {request.data_type[:60]!r} is not supported; "
        f"supported: {', '.join(SUPPORTED_DATA_TYPES)}",
    )
