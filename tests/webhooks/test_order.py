"""Every arrival order of a provider's events, with repeats, through parse and the model."""

from __future__ import annotations

import itertools
import time

import pytest

from gateway.model import EVENT_ORDER, Signal
from gateway.sources.webhooks import telnyx, twilio, vonage
from gateway.sources.webhooks.common import Ignored, signals_for
from tests.support.cpaas import sdk_events, telnyx_body, twilio_params, users_directory, vonage_body

DAY_MS = 86_400_000


def answered_call(provider: str) -> list[list[Signal]]:
    """Each delivery's signals for an inbound call answered and completed."""
    t = int(time.time()) - 60
    now_ms = int(time.time() * 1000)
    directory = users_directory()
    if provider == "twilio":
        parsed = [
            twilio.parse(twilio_params("CA1", status, at=t + offset, **extra), now_ms, DAY_MS)
            for status, offset, extra in [
                ("ringing", 0, {}),
                ("in-progress", 4, {}),
                ("completed", 50, {"CallDuration": "46"}),
            ]
        ]
    elif provider == "vonage":
        parsed = [
            vonage.parse(vonage_body("u1", status, at=t + offset, **extra), now_ms)
            for status, offset, extra in [
                ("started", 0, {}),
                ("ringing", 0.3, {}),
                ("answered", 4, {}),
                ("completed", 50, {"duration": "46"}),
            ]
        ]
    else:
        parsed = [
            telnyx.parse(telnyx_body("call.initiated", "leg", at=t, direction="incoming")),
            telnyx.parse(telnyx_body("call.answered", "leg", at=t + 4)),
            telnyx.parse(telnyx_body("call.hangup", "leg", at=t + 50, hangup_cause="normal_clearing")),
        ]
    out: list[list[Signal]] = []
    for item in parsed:
        result = signals_for(item, provider, directory)
        assert not isinstance(result, Ignored), result
        out.append(result)
    return out


@pytest.mark.parametrize("provider", ["twilio", "telnyx", "vonage"])
def test_any_order_with_repeats_emits_each_sdk_event_once_in_sdk_order(provider: str) -> None:
    deliveries = answered_call(provider)
    orders = 0
    for order in itertools.permutations(deliveries + deliveries[-2:]):
        events = sdk_events([signal for delivery in order for signal in delivery])
        kinds = [e.split(":")[0] for e in events]
        assert len(kinds) == len(set(kinds)), (order, events)
        assert kinds == sorted(kinds, key=EVENT_ORDER.index)
        assert kinds[0] == "incomingCall" and kinds[-2:] == ["callEnded", "callCompleted"]
        orders += 1
    assert orders >= 120


@pytest.mark.parametrize("provider", ["twilio", "vonage"])
def test_a_duration_keeps_the_call_completed_in_any_order(provider: str) -> None:
    deliveries = answered_call(provider)
    for order in itertools.permutations(deliveries):
        events = sdk_events([signal for delivery in order for signal in delivery])
        assert "callEnded:COMPLETED" in events, (order, events)
