"""The wire formats: the Redis codec of a call's state, and what the page accepts."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.model import EVENT_ORDER, EndStatus, Phase
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


def test_the_page_calls_exactly_the_sdk_methods_the_model_emits() -> None:
    source = (Path(__file__).resolve().parents[1] / "web" / "js" / "calls.js").read_text()
    listed = re.search(r"SDK_METHODS = new Set\(\[(.*?)\]\)", source, re.S)
    assert listed is not None
    assert re.findall(r'"(\w+)"', listed.group(1)) == list(EVENT_ORDER)
