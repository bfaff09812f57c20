"""The SIP bench at toy size: both ways in reach the streams, every message answered 200."""

from __future__ import annotations

import pytest

from bench.sip_bench import run


@pytest.mark.parametrize("mode", ["publish", "notify"])
async def test_sip_bench_matches_every_message_to_its_event(mode: str) -> None:
    figures = await run(mode, calls=4, users=2, window=2)
    assert figures["mode"] == mode
    assert figures["failures"] == 0
    assert figures["messages"] == 12 and figures["events_matched"] == 12
