"""The §4.5 decision table, without a network or a disk."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from concentrador.client.retry_policy import Action, Outcome, decide
from concentrador.protocol.faults import Fault

NOW = datetime(2024, 1, 1, tzinfo=UTC)

RETRYABLE = [
    Outcome(codigo=1),
    Outcome(codigo=2),
    Outcome(codigo=99),
    Outcome(fault=Fault("Server.Generico", "x")),
    Outcome(connection_error="reset"),
    Outcome(protocol_error="garbage"),
]
AT_ONCE = [
    Outcome(codigo=3),
    Outcome(codigo=4),
    Outcome(codigo=5),
    Outcome(fault=Fault("Client.Autenticacion", "x")),
    Outcome(fault=Fault("Client.Fichero", "x")),
]


@pytest.mark.parametrize("codigo", [0, 6])
def test_accepted(codigo: int) -> None:
    decision = decide(Outcome(codigo=codigo), failed_attempts=0, retries=0, retry_delay=1, now=NOW)
    assert decision.action is Action.ACCEPTED
    assert (decision.warning is not None) == (codigo == 6)


@given(
    outcome=st.sampled_from(RETRYABLE),
    retries=st.integers(0, 50),
    attempts=st.integers(1, 60),
    delay=st.floats(0, 86400),
)
def test_retryable_until_the_limit(outcome: Outcome, retries: int, attempts: int, delay: float):
    decision = decide(
        outcome, failed_attempts=attempts, retries=retries, retry_delay=delay, now=NOW
    )
    if attempts <= retries:
        assert decision.action is Action.RETRY
        assert decision.next_attempt_at == NOW + timedelta(seconds=delay)
    else:
        assert decision.action is Action.ESCALATE
        assert f"after {attempts} failed" in decision.reason


@given(outcome=st.sampled_from(AT_ONCE), retries=st.integers(0, 50))
def test_escalated_at_once(outcome: Outcome, retries: int) -> None:
    decision = decide(outcome, failed_attempts=1, retries=retries, retry_delay=600, now=NOW)
    assert decision.action is Action.ESCALATE
    assert decision.next_attempt_at is None
    assert "\n" not in decision.reason


def test_reasons_name_the_cause() -> None:
    assert (
        "codigo 3 (participant not allowed)"
        in decide(Outcome(codigo=3), failed_attempts=1, retries=5, retry_delay=1, now=NOW).reason
    )
    assert "connection error: reset" in Outcome(connection_error="reset").describe()
