"""Subscriber mode end to end: fake PBX -> SIP -> call model -> broker -> SSE."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakepbx import FakePbx
from tests.sipkit import ringing, sip_gateway, sip_table


@pytest.mark.parametrize("kind", ["udp", "tcp"])
async def test_a_notify_after_a_digest_challenge_rings_the_users_stream(tmp_path: Path, kind: str) -> None:
    async with FakePbx(kind) as pbx, sip_gateway(tmp_path, sip_table(pbx)) as gw:
        token = await gw.login("alice")
        async with gw.stream(token) as stream:
            sub = await pbx.subscribed("1001")
            assert pbx.challenges_sent >= 1
            assert sub.subscribes[-1].get("event") == "dialog"
            assert sub.subscribes[-1].get("accept") == "application/dialog-info+xml"
            answer = await pbx.notify("1001", [ringing("call-1")])
            assert answer.status == 200
            event = await stream.next()
        assert event.json["type"] == "incomingCall"
        assert event.json["payload"]["fromNumber"] == "+15555550199"
