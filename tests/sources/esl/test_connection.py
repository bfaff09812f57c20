"""What only the event socket's connection does: auth, its events (the rest: ../test_pbx_connection.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.fake_esl import FakeEsl
from tests.support.logcheck import expect_log
from tests.support.pbx_rig import rig, synced


async def test_the_session_authenticates_subscribes_and_lists_the_channels(tmp_path: Path) -> None:
    async with rig(tmp_path, FakeEsl()) as r:
        await synced(r.conn, 1)
    assert r.pbx.commands[:3] == [
        f"auth {r.pbx.password}",
        "event plain CHANNEL_CREATE CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA CHANNEL_ANSWER CHANNEL_BRIDGE "
        "CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB CUSTOM sofia::transferor",
        "api show channels as json",
    ]


async def test_an_address_the_switchs_acl_refuses_is_an_error_and_tried_again(tmp_path: Path) -> None:
    with expect_log("gateway.esl", r"refused the gateway's address \(Access Denied, go away.\)"):
        async with rig(tmp_path, FakeEsl(deny_address=True)) as r:
            await asyncio.wait_for(r.conn.until_failed(2), 10)
    assert (r.conn.sessions, r.pbx.commands) == (0, [])
