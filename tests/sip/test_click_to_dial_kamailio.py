"""Click-to-dial by REFER through Debian's Kamailio, with sipp as the user's phone and the callee.

Alice dials +12125550100 (POST /api/dial, route ``sip``). The gateway
INVITEs her phone (extension 1001) through Kamailio, which challenges it
(digest); the phone (tests/sip/sipp/phone_follows_refer.xml) answers at
once, takes the REFER, calls the number itself through Kamailio and tells
the gateway how that went; Kamailio PUBLISHes every dialog (the gateway's
leg to the phone too) to the gateway. Alice's stream must show exactly one
call, the dialled one, with the end status of what really happened. With
two gateways on one Redis, the one that dials (and gets the phone's
NOTIFYs) is not the one Kamailio PUBLISHes to: the end of the phone's call
to the number, which the PUBLISH reports first and without a reason, must
wait for the other's sipfrag all the same.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import harness
from tests.support.click_to_dial_rig import PASSWORD, kamailio_gateway, kamailio_gateways, phones
from tests.support.harness import Client, signal
from tests.support.kamailio import Kamailio
from tests.support.servers import RedisServer, write_users
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
async def rig(
    tmp_path: Path, *, password: str = PASSWORD, redis: RedisServer | None = None
) -> AsyncIterator[Rig]:
    """The Kamailio rig (tests/support/click_to_dial_rig.py) with alice's stream open.

    With ``redis``, two gateways: ``gw`` dials, Kamailio PUBLISHes to the other.
    """
    async with contextlib.AsyncExitStack() as stack:
        if redis is None:
            gw, kamailio = await stack.enter_async_context(kamailio_gateway(tmp_path, password=password))
        else:
            gw, _, kamailio = await stack.enter_async_context(kamailio_gateways(tmp_path, redis.url))
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


async def refused_before_any_call(tmp_path: Path, alice: dict[str, Any], request: dict[str, str]) -> Any:
    """POST /api/dial as ``alice``, no phone listening: the answer, once her stream shows no call came."""
    write_users(tmp_path / "users.json", [alice, *harness.test_users()[1:]])

    async def play() -> Any:
        async with rig(tmp_path) as r:
            response = await r.gw.http.post("/api/dial", json={"number": TARGET, **request}, headers=r.auth)
            marked = await r.gw.ingest(signal("marker", "ringing", **{"from": MARKER_FROM}))
            assert marked.status_code < 300, marked.text
            first = (await r.stream.next(timeout=30)).json
            assert first["type"] == "incomingCall" and first["payload"]["fromNumber"] == MARKER_FROM, first
            return response.status_code, response.json()

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


@pytest.mark.parametrize(
    ("callee", "status"),
    [("callee_busy.xml", "BUSY"), ("callee_rings.xml", "NO_ANSWER"), ("callee_answers.xml", "COMPLETED")],
    ids=["busy", "unanswered", "answered"],
)
async def test_with_two_instances_the_call_ends_as_the_sipfrag_says_though_the_other_got_its_end_first(
    tmp_path: Path, redis_server: RedisServer, callee: str, status: str
) -> None:
    answer, body, events = await dial_through(tmp_path, "phone_follows_refer.xml", callee, redis=redis_server)
    assert answer == 202
    answered = ["callAnswered"] if status == "COMPLETED" else []
    assert [e.json["type"] for e in events] == ["outgoingCall", *answered, "callEnded", "callCompleted"]
    assert one_call(body, events)["callEndStatus"] == status


async def test_a_caller_id_the_phone_cannot_present_is_refused_and_the_phone_not_rung(tmp_path: Path) -> None:
    # The phone calls as itself: its PBX, not the dial, decides what the callee sees.
    alice = {**harness.test_users()[0], "numbers": [ALICE_NUMBER, "+15555550109"]}
    status, body = await refused_before_any_call(tmp_path, alice, {"callerId": "+15555550109"})
    assert status == 409
    assert body["error"] == (
        "calls through your PBX show the caller id your PBX gives your phone; "
        "the gateway cannot make them show +15555550109"
    )


async def test_a_user_without_a_phone_to_ring_is_refused_no_phone_and_nothing_is_dialled(
    tmp_path: Path,
) -> None:
    alice = {**harness.test_users()[0], "aors": []}
    status, body = await refused_before_any_call(tmp_path, alice, {})
    assert status == 409
    assert body["error"] == (
        "you have no phone (SIP address) for the gateway to ring first; "
        "ask your administrator to add it to your user"
    )


async def test_a_user_without_a_number_dials_and_the_call_keeps_the_caller_id_the_pbx_reports(
    tmp_path: Path,
) -> None:
    alice = {**harness.test_users()[0], "numbers": []}
    write_users(tmp_path / "users.json", [alice, *harness.test_users()[1:]])
    status, body, events = await dial_through(tmp_path, "phone_follows_refer.xml", "callee_answers.xml")
    assert status == 202
    assert body["callerId"] is None
    assert [e.json["type"] for e in events] == ["outgoingCall", "callAnswered", "callEnded", "callCompleted"]
    assert {e.json["externalCallId"] for e in events} == {body["externalCallId"]}
    started = events[0].json["payload"]
    assert "fromNumber" not in started and started["toNumber"] == TARGET
    # What the PBX reported for the phone's own call (its dialog's local identity) is the call's caller id.
    completed = events[-1].json
    assert completed["payload"]["engagementProperties"]["hs_call_from_number"] == "1001"
    assert completed["call"]["fromNumber"] == "1001"
