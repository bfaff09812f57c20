"""Click-to-dial by REFER when the PBX does not answer the INVITE in time: a 504, then nothing left.

The fake PBX (tests/support/fakepbx.py) keeps alice's dialog subscription
but never answers the INVITE to her phone, so the gateway gives up at Timer
B (64*T1). What the PBX says after that (the phone answered after all) is
hung up, and alice's own next call to the number is a call of its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from tests.support.fakepbx import FakePbx, Message
from tests.support.harness import Client, make_settings, running_gateway
from tests.support.sipkit import sip_address, sip_table
from tests.support.sse import summary

TARGET = "+12125550100"
PHONE = "sip:1001@127.0.0.1"


@contextlib.asynccontextmanager
async def dialling_gateway(tmp_path: Path, pbx: FakePbx) -> AsyncIterator[Client]:
    """A gateway whose tenant 100 dials by SIP through ``pbx``, alice subscribed there."""
    settings = make_settings(tmp_path, extra={"sip": sip_table(pbx), "dial": {"100": {"route": "sip"}}})
    async with running_gateway(settings) as gw:
        await pbx.subscribed("1001")
        yield gw


async def request(pbx: FakePbx, method: str, call_id: str, timeout: float = 10) -> Message:
    """The next request of ``method`` in the dialog ``call_id`` the gateway sends the PBX."""
    while True:
        message = await pbx.request_seen("1001", timeout)
        if message.method == method and message.get("call-id") == call_id:
            return message


def late_answer(invite: Message, pbx: FakePbx) -> bytes:
    """The 200 OK of the phone's auto-answer, as the PBX forwards it (its requests come through the PBX)."""
    lines = [
        "SIP/2.0 200 OK",
        *[f"Via: {via}" for via in invite.all("via")],
        f"From: {invite.get('from')}",
        f"To: {invite.get('to')};tag=phone-1",
        f"Call-ID: {invite.get('call-id')}",
        f"CSeq: {invite.get('cseq')}",
        f"Contact: <{PHONE}:{pbx.port}>",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def test_an_invite_the_pbx_never_answers_is_a_504_and_the_dial_fails(tmp_path: Path) -> None:
    async with FakePbx("udp") as pbx, dialling_gateway(tmp_path, pbx) as gw:
        token = await gw.login("alice")
        async with gw.stream(token) as stream:
            response = await gw.http.post(
                "/api/dial", json={"number": TARGET}, headers={"authorization": f"Bearer {token}"}
            )
            events = await stream.take(3)
    assert (response.status_code, response.json()["error"]) == (504, "the PBX 127.0.0.1 did not answer")
    assert summary(events) == ["outgoingCall", "callEnded:FAILED", "callCompleted"]


async def test_a_phone_answering_after_the_gateway_gave_up_is_acknowledged_and_hung_up(
    tmp_path: Path,
) -> None:
    async with FakePbx("udp") as pbx, dialling_gateway(tmp_path, pbx) as gw:
        token = await gw.login("alice")
        response = await gw.http.post(
            "/api/dial", json={"number": TARGET}, headers={"authorization": f"Bearer {token}"}
        )
        invite = next(m for m in pbx.requests if m.method == "INVITE")
        call_id = invite.get("call-id") or ""
        pbx.send(late_answer(invite, pbx), sip_address(gw, "udp"), None)
        ack = await request(pbx, "ACK", call_id)
        bye = await request(pbx, "BYE", call_id)
    assert response.status_code == 504
    assert ack.first.startswith(f"ACK {PHONE}") and bye.first.startswith(f"BYE {PHONE}")
    assert "tag=phone-1" in (bye.get("to") or "")


async def test_after_a_dial_the_pbx_never_answered_the_users_own_call_to_the_number_is_its_own(
    tmp_path: Path,
) -> None:
    async with FakePbx("udp") as pbx, dialling_gateway(tmp_path, pbx) as gw:
        token = await gw.login("alice")
        async with gw.stream(token) as stream:
            await gw.http.post(
                "/api/dial", json={"number": TARGET}, headers={"authorization": f"Bearer {token}"}
            )
            failed = await stream.take(3)
            dialog = {"id": "d1", "call_id": "own-call-1", "direction": "initiator", "state": "trying"}
            await pbx.notify("1001", [{**dialog, "remote": f"sip:{TARGET}@pbx.test"}])
            own = await stream.next()
    assert summary(failed) == ["outgoingCall", "callEnded:FAILED", "callCompleted"]
    assert own.json["type"] == "outgoingCall"
    assert own.json["externalCallId"] != failed[0].json["externalCallId"]
