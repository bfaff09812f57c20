"""Click-to-dial's screen of the dialog events: which signals go on, which wait, and an outage.

The screen of a real ``ClickToDial`` on a real broker (the embedded one, or
Redis on a port where nothing listens); the whole flow through Kamailio, on
one and on two instances, is tests/sip/test_click_to_dial_kamailio.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.broker import make_broker
from gateway.model import EndStatus, Phase, Signal
from gateway.ops.metrics import Metrics
from gateway.sources.sip.click_to_dial import ClickToDial
from gateway.sources.sip.click_to_dial_rules import leg_call_id
from gateway.sources.sip.message_transport import SipTransport
from gateway.sources.sip.settings import sip_settings
from gateway.sources.sip.transactions import ClientTransactions
from gateway.tracker import CallTracker
from tests.support.click_to_dial_rig import reasonless_end
from tests.support.harness import make_settings
from tests.support.servers import free_port

SECRET = b"secret-for-tests"
NUMBER = "+12125550100"


def click_to_dial(tmp_path: Path, redis_url: str | None = None) -> ClickToDial:
    settings = sip_settings({"sip": {"listen": ["udp:127.0.0.1:0"]}})
    assert settings is not None
    transport = SipTransport(list(settings.listen), settings.limits, lambda _: None)
    tracker = CallTracker(make_broker(make_settings(tmp_path, redis_url=redis_url)), Metrics())
    return ClickToDial(settings, transport, ClientTransactions(settings.timers), tracker, SECRET)


async def test_a_reasonless_end_to_a_number_some_instance_referred_the_user_to_is_held(
    tmp_path: Path,
) -> None:
    dial = click_to_dial(tmp_path)
    await dial.holds.mark("alice", NUMBER, "leg-1", 60)
    assert not await dial.screen(reasonless_end())
    assert len(await dial.holds.release("alice", NUMBER, "leg-1")) == 1


@pytest.mark.parametrize(
    "signal",
    [
        reasonless_end(end_status=EndStatus.BUSY),
        reasonless_end(sip_code=486),
        reasonless_end(to_number="+12125550199"),
        reasonless_end(phase=Phase.ANSWERED),
    ],
    ids=["with a status", "with a code", "another number", "not an end"],
)
async def test_other_signals_go_on_at_once_and_nothing_is_held(tmp_path: Path, signal: Signal) -> None:
    dial = click_to_dial(tmp_path)
    await dial.holds.mark("alice", NUMBER, "leg-1", 60)
    assert await dial.screen(signal)
    assert await dial.holds.release("alice", NUMBER, "leg-1") == []


async def test_the_legs_of_any_instance_sharing_the_secret_are_never_a_call(tmp_path: Path) -> None:
    dial = click_to_dial(tmp_path)
    assert not await dial.screen(
        reasonless_end(call_id=leg_call_id(SECRET, bytes(8), "10.0.0.20"), phase=Phase.RINGING)
    )


async def test_an_end_that_cannot_be_held_for_want_of_the_broker_goes_on_at_once(tmp_path: Path) -> None:
    dial = click_to_dial(tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}")
    try:
        assert await dial.screen(reasonless_end())
    finally:
        await dial.tracker.broker.close()
