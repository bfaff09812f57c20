"""Click-to-dial by REFER through Debian's Kamailio, with sipp as the user's phone and the callee.

Alice dials +12125550100 (POST /api/dial, route ``sip``). The gateway
INVITEs her phone (extension 1001) through Kamailio, which challenges it
(digest); the phone (tests/sip/sipp/phone_follows_refer.xml) answers at
once, takes the REFER, calls the number itself through Kamailio and tells
the gateway how that went; Kamailio PUBLISHes every dialog (the gateway's
leg to the phone too) to the gateway. Alice's stream must show exactly one
call, the dialled one, with the end status of what really happened.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.click_to_dial_rig import PASSWORD, kamailio_gateway, phones
from tests.support.harness import Client, signal
from tests.support.kamailio import Kamailio
from tests.support.sse import SseEvent, SseStream

pytestmark = pytest.mark.kamailio

TEST_SECONDS = 60
TARGET = "+12125550100"
ALICE_NUMBER = "+15555550101"
MARKER_FROM = "+15555550177"


@dataclass
class Rig:
    gw: Client
    kamailio: Kamailio
    auth: dict[str, str]
    stream: SseStream


@contextlib.asynccontextmanager
async def rig(tmp_path: Path, *, password: str = PASSWORD) -> AsyncIterator[Rig]:
    """The Kamailio rig (tests/support/click_to_dial_rig.py) with alice's stream open."""
    async with kamailio_gateway(tmp_path, password=password) as (gw, kamailio):
        token = await gw.login("alice")
        async with gw.stream(token) as stream:
            yield Rig(gw, kamailio, {"authorization": f"Bearer {token}"}, stream)


async def call_events(rig: Rig) -> list[SseEvent]:
    """The dialled call's events up to callCompleted; then a marker call must be the next event."""
    events: list[SseEvent] = []
    while not events or events[-1].json["type"] != "callCompleted":
        try:
            # Generous: a retransmitted request through the proxy costs seconds.
            events.append(await rig.stream.next(timeout=30))
        except TimeoutError:
            raise AssertionError(f"no event after {[e.json['type'] for e in events]}") from None
    answer = await rig.gw.ingest(signal("marker", "ringing", **{"from": MARKER_FROM}))
    assert answer.status_code < 300, answer.text
    after = (await rig.stream.next()).json
    assert after["type"] == "incomingCall" and after["payload"]["fromNumber"] == MARKER_FROM, (
        f"an event beyond the dialled call's: {after}"
    )
    return events


async def dial_through(
    tmp_path: Path, phone: str, callee: str | None, **rig_options: Any
) -> tuple[int, Any, list[SseEvent]]:
    async def play() -> tuple[int, Any, list[SseEvent]]:
        async with rig(tmp_path, **rig_options) as r:
            try:
                async with phones(tmp_path, r.kamailio, phone, callee):
                    response = await r.gw.http.post("/api/dial", json={"number": TARGET}, headers=r.auth)
                    events = await call_events(r)
                return response.status_code, response.json(), events
            except (AssertionError, TimeoutError) as exc:
                raise AssertionError(f"{exc!r}\nkamailio log:\n{r.kamailio.log()[-4000:]}") from exc

    return await asyncio.wait_for(play(), TEST_SECONDS)


def one_call(body: Any, events: list[SseEvent]) -> dict[str, Any]:
    """The events are of one call, the dialled one, started by outgoingCall; its callEnded payload."""
    assert {e.json["externalCallId"] for e in events} == {body["externalCallId"]}
    first = events[0].json
    assert first["type"] == "outgoingCall"
    assert (first["payload"]["fromNumber"], first["payload"]["toNumber"]) == (ALICE_NUMBER, TARGET)
    ended: dict[str, Any] = next(e.json["payload"] for e in events if e.json["type"] == "callEnded")
    return ended


async def test_the_phone_calls_the_number_and_the_answered_call_completes(tmp_path: Path) -> None:
    status, body, events = await dial_through(tmp_path, "phone_follows_refer.xml", "callee_answers.xml")
    assert status == 202
    assert [e.json["type"] for e in events] == ["outgoingCall", "callAnswered", "callEnded", "callCompleted"]
    assert one_call(body, events)["callEndStatus"] == "COMPLETED"


async def test_a_busy_number_ends_the_dialled_call_busy(tmp_path: Path) -> None:
    status, body, events = await dial_through(tmp_path, "phone_follows_refer.xml", "callee_busy.xml")
    assert status == 202
    assert [e.json["type"] for e in events] == ["outgoingCall", "callEnded", "callCompleted"]
    assert one_call(body, events)["callEndStatus"] == "BUSY"


async def test_a_number_nobody_answers_ends_the_dialled_call_no_answer(tmp_path: Path) -> None:
    status, body, events = await dial_through(tmp_path, "phone_follows_refer.xml", "callee_rings.xml")
    assert status == 202
    assert [e.json["type"] for e in events] == ["outgoingCall", "callEnded", "callCompleted"]
    assert one_call(body, events)["callEndStatus"] == "NO_ANSWER"


async def test_a_user_who_does_not_pick_up_their_own_phone_cancels_the_dial(tmp_path: Path) -> None:
    status, body, events = await dial_through(tmp_path, "callee_rings.xml", None)
    assert status == 202
    assert [e.json["type"] for e in events] == ["outgoingCall", "callEnded", "callCompleted"]
    assert one_call(body, events)["callEndStatus"] == "CANCELED"


async def test_credentials_the_pbx_refuses_fail_the_dial_with_a_sentence(tmp_path: Path) -> None:
    async def play() -> tuple[int, Any, list[SseEvent]]:
        async with rig(tmp_path, password="not-the-password") as r:
            response = await r.gw.http.post("/api/dial", json={"number": TARGET}, headers=r.auth)
            return response.status_code, response.json(), await call_events(r)

    status, body, events = await asyncio.wait_for(play(), TEST_SECONDS)
    assert status == 502
    assert "credentials" in body["error"]
    assert [e.json["type"] for e in events] == ["outgoingCall", "callEnded", "callCompleted"]
    assert events[1].json["payload"]["callEndStatus"] == "FAILED"
