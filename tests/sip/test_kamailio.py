"""Debian's Kamailio as the PBX, in both ways the gateway listens, with sipp phones placing calls.

Kamailio (tests/sip/kamailio/*.cfg) routes each call from a sipp caller to
a sipp phone, extension 1001 (alice); its pua_dialoginfo reports the
callee's dialog either by PUBLISH to the gateway or to its own presence
server, which NOTIFYs the gateway's subscription. Each call must give
alice's stream exactly its SDK events: nothing missing, nothing more (a
marker event sent afterwards must come next).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.harness import Client, signal
from tests.support.kamailio import Kamailio, Mode, call_through
from tests.support.servers import free_port
from tests.support.sipkit import sip_address, sip_gateway, sip_table
from tests.support.sse import SseEvent, SseStream

pytestmark = pytest.mark.kamailio

TEST_SECONDS = 60
CALLER = "+15555550199"
ALICE_NUMBER = "+15555550101"
MARKER_FROM = "+15555550177"

# outcome: (caller scenario, callee scenario, SDK events, end status)
OUTCOMES: dict[str, tuple[str, str, list[str], str]] = {
    "answered": (
        "caller_answered.xml",
        "callee_answers.xml",
        ["incomingCall", "callAnswered", "callEnded", "callCompleted"],
        "COMPLETED",
    ),
    # pua_dialoginfo tells no reason or code, so a refused or abandoned
    # inbound call is MISSED (docs/sip.md, "What each PBX tells").
    "busy": (
        "caller_refused.xml",
        "callee_busy.xml",
        ["incomingCall", "callEnded", "callCompleted"],
        "MISSED",
    ),
    "cancelled": (
        "caller_cancels.xml",
        "callee_rings.xml",
        ["incomingCall", "callEnded", "callCompleted"],
        "MISSED",
    ),
}


@asynccontextmanager
async def kamailio_and_gateway(tmp_path: Path, mode: Mode) -> AsyncIterator[tuple[Kamailio, Client]]:
    callee = ("127.0.0.1", free_port(socket.SOCK_DGRAM))
    if mode == "publish":
        async with (
            sip_gateway(tmp_path, sip_table(publish_from=["127.0.0.1"])) as gw,
            Kamailio(tmp_path, mode, callee=callee, gateway=sip_address(gw, "udp")) as kamailio,
        ):
            yield kamailio, gw
        return
    # The gateway subscribes at start-up, so Kamailio comes first.
    kamailio = Kamailio(tmp_path, mode, callee=callee)
    pbx = {"address": "{}:{}".format(*kamailio.address), "domain": "pbx.test", "expires": 300}
    async with kamailio, sip_gateway(tmp_path, {**sip_table(), "pbx": {"100": pbx}}) as gw:
        await gw.until_ready()
        yield kamailio, gw


async def events_until_marker(gw: Client, stream: SseStream, count: int) -> list[SseEvent]:
    """The call's ``count`` events, then a marker call sent by signed ingest must be next."""
    events: list[SseEvent] = []
    try:
        while len(events) < count:
            events.append(await stream.next())
    except TimeoutError:
        raise AssertionError(f"only {[e.json['type'] for e in events]} arrived") from None
    answer = await gw.ingest(signal("marker", "ringing", **{"from": MARKER_FROM}))
    assert answer.status_code < 300, answer.text
    after: dict[str, Any] = (await stream.next()).json
    assert after["type"] == "incomingCall" and after["payload"]["fromNumber"] == MARKER_FROM, (
        f"an event beyond the call's: {after}"
    )
    return events


@pytest.mark.parametrize("mode", ["publish", "presence"])
@pytest.mark.parametrize("outcome", list(OUTCOMES))
async def test_a_call_through_kamailio_gives_exactly_its_sdk_events(
    tmp_path: Path, mode: Mode, outcome: str
) -> None:
    caller, callee, expected, status = OUTCOMES[outcome]

    async def play() -> list[SseEvent]:
        async with kamailio_and_gateway(tmp_path, mode) as (kamailio, gw):
            token = await gw.login("alice")
            async with gw.stream(token) as stream:
                try:
                    async with call_through(kamailio, tmp_path, caller, callee):
                        pass
                    return await events_until_marker(gw, stream, len(expected))
                except (AssertionError, TimeoutError) as exc:
                    raise AssertionError(f"{exc!r}\nkamailio log:\n{kamailio.log()[-4000:]}") from exc

    events = await asyncio.wait_for(play(), TEST_SECONDS)
    assert [e.json["type"] for e in events] == expected
    assert len({e.json["externalCallId"] for e in events}) == 1
    first = events[0].json["payload"]
    assert (first["fromNumber"], first["toNumber"]) == (CALLER, ALICE_NUMBER)
    ended = next(e.json["payload"] for e in events if e.json["type"] == "callEnded")
    assert ended["callEndStatus"] == status
