"""The wire formats: the Redis codec of a call's state."""

from __future__ import annotations

from gateway.model import EndStatus, Phase
from gateway.wire import decode_state, encode_state
from tests.support.calls import run, sig


def test_state_survives_a_round_trip_through_the_redis_codec() -> None:
    state, _ = run(
        [
            sig(Phase.RINGING, 5, from_number="+1", remote_name="Ann"),
            sig(Phase.ENDED, 9, end_status=EndStatus.BUSY, sip_code=486),
        ]
    )
    assert decode_state(encode_state(state)) == state
