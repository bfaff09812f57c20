"""What only AMI's connection does: the MD5 login, a plain one, TLS (the rest: ../test_pbx_connection.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support import ami_calls
from tests.support.fake_ami import FakeAmi
from tests.support.logcheck import expect_log
from tests.support.pbx_rig import rig, synced
from tests.support.sse import summary
from tests.support.tls_cert import server_context


async def test_the_login_answers_the_md5_challenge_and_never_sends_the_secret(tmp_path: Path) -> None:
    async with rig(tmp_path, FakeAmi()) as r:
        await synced(r.conn, 1)
    login = next(a for a in r.pbx.actions if a["Action"] == "Login")
    assert [a["Action"] for a in r.pbx.actions[:3]] == ["Challenge", "Login", "CoreShowChannels"]
    assert login["AuthType"] == "MD5" and "Secret" not in login and login["Events"] == "call"


async def test_a_plain_login_sends_the_secret(tmp_path: Path) -> None:
    async with rig(tmp_path, FakeAmi(), auth="plain") as r:
        await synced(r.conn, 1)
    login = next(a for a in r.pbx.actions if a["Action"] == "Login")
    assert login["Secret"] == r.pbx.secret


async def test_a_tls_connection_carries_the_session(tmp_path: Path) -> None:
    pbx = FakeAmi(tls=server_context(tmp_path))
    async with rig(tmp_path, pbx, tls=True, tls_verify=False) as r:
        await synced(r.conn, 1)
        await r.pbx.emit(*ami_calls.inbound_unanswered("BUSY", "17"))
        events = await r.stream.take(3)
    assert summary(events) == ["incomingCall", "callEnded:BUSY", "callCompleted"]


# An ERROR, as a refused login: a certificate does not heal by itself, the operator must act.
CERTIFICATE_ERROR = "the PBX's certificate failed verification: .*CERTIFICATE_VERIFY_FAILED"


async def test_a_certificate_the_gateway_cannot_verify_stops_the_login(tmp_path: Path) -> None:
    pbx = FakeAmi(tls=server_context(tmp_path))
    with expect_log("gateway.ami", CERTIFICATE_ERROR, required=False):
        async with rig(tmp_path, pbx, tls=True) as r:
            await asyncio.wait_for(r.conn.until_failed(2), 10)
    assert (r.pbx.logins, r.pbx.actions) == (0, [])


async def test_a_certificate_the_gateway_cannot_verify_is_an_error_line(tmp_path: Path) -> None:
    pbx = FakeAmi(tls=server_context(tmp_path))
    with expect_log("gateway.ami", CERTIFICATE_ERROR) as error:
        async with rig(tmp_path, pbx, tls=True) as r:
            await asyncio.wait_for(r.conn.until_failed(1), 10)
    assert error.seen >= 1
