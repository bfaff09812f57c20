"""Click-to-dial through the simulator with the SIP route behind it: Kamailio and sipp phones.

DIAL_NUMBER → the gateway INVITEs alice's phone through Kamailio (a sipp
that answers by itself and follows the REFER) → the phone calls the number
(a sipp callee that answers, is busy or rings unanswered) → Kamailio
PUBLISHes the dialogs → one call in the widget and in HubSpot, from
OUTGOING_CALL_STARTED to CALL_COMPLETED, with one externalCallId. An INVITE
the PBX refuses ends the call FAILED, its sentence in the widget and in
HubSpot's sendError.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser

from tests.support import harness
from tests.support.browser import Message, Simulator, calls_only, open_simulator
from tests.support.click_to_dial_rig import kamailio_gateway, phones
from tests.support.kamailio import Kamailio
from tests.support.servers import write_users

pytestmark = [pytest.mark.browser, pytest.mark.kamailio, pytest.mark.asyncio(loop_scope="session")]

TEST_SECONDS = 60
TARGET = "+12125550100"
PHONE = "phone_follows_refer.xml"


@dataclass
class SipSimulator:
    sim: Simulator
    kamailio: Kamailio
    tmp_path: Path


@pytest_asyncio.fixture(loop_scope="session")
async def sip_simulator(browser: Browser, tmp_path: Path) -> AsyncIterator[SipSimulator]:
    async with kamailio_gateway(tmp_path) as (gw, kamailio), open_simulator(browser, gw) as sim:
        await sim.log_in("alice")
        await sim.logged_in()
        yield SipSimulator(sim, kamailio, tmp_path)


async def dial_and_complete(rig: SipSimulator, callee: str) -> tuple[dict[str, Any], list[Message]]:
    """Click DIAL_NUMBER with the callee playing ``callee``; CALL_COMPLETED's data and what crossed."""
    sim = rig.sim

    async def play() -> tuple[dict[str, Any], list[Message]]:
        async with phones(rig.tmp_path, rig.kamailio, PHONE, callee):
            await sim.dial(TARGET)
            completed: dict[str, Any] = (await sim.from_app("CALL_COMPLETED"))[0]["data"]
        messages = calls_only(await sim.messages())
        return completed, messages[next(i for i, m in enumerate(messages) if m["type"] == "DIAL_NUMBER") :]

    try:
        return await asyncio.wait_for(play(), TEST_SECONDS)
    except (AssertionError, TimeoutError) as exc:
        raise AssertionError(f"{exc!r}\nkamailio log:\n{rig.kamailio.log()[-4000:]}") from exc


async def test_a_sip_dial_the_number_answers_is_one_call_from_the_click_to_its_completion(
    sip_simulator: SipSimulator,
) -> None:
    completed, after_click = await dial_and_complete(sip_simulator, "callee_answers.xml")
    assert [(m["dir"], m["type"]) for m in after_click] == [
        ("out", "DIAL_NUMBER"),
        ("in", "OUTGOING_CALL_STARTED"),
        ("out", "CREATE_ENGAGEMENT_SUCCEEDED"),
        ("in", "CALL_ANSWERED"),
        ("in", "CALL_ENDED"),
        ("in", "CALL_COMPLETED"),
    ]
    assert {m["data"]["externalCallId"] for m in after_click[1:]} == {completed["externalCallId"]}
    started = after_click[1]["data"]
    assert (started["fromNumber"], started["toNumber"]) == ("+15555550101", TARGET)
    assert after_click[4]["data"]["callEndStatus"] == "COMPLETED"
    assert completed["engagementId"] == after_click[2]["data"]["engagementId"]
    assert completed["engagementProperties"]["hs_call_status"] == "COMPLETED"
    await sip_simulator.sim.widget.locator(".call-state", has_text="Ended").wait_for()


async def test_a_sip_dial_to_a_busy_number_ends_busy(sip_simulator: SipSimulator) -> None:
    completed, after_click = await dial_and_complete(sip_simulator, "callee_busy.xml")
    assert [(m["dir"], m["type"]) for m in after_click] == [
        ("out", "DIAL_NUMBER"),
        ("in", "OUTGOING_CALL_STARTED"),
        ("out", "CREATE_ENGAGEMENT_SUCCEEDED"),
        ("in", "CALL_ENDED"),
        ("in", "CALL_COMPLETED"),
    ]
    assert {m["data"]["externalCallId"] for m in after_click[1:]} == {completed["externalCallId"]}
    assert after_click[3]["data"]["callEndStatus"] == "BUSY"
    assert completed["engagementProperties"]["hs_call_status"] == "BUSY"


async def test_a_sip_dial_nobody_answers_ends_no_answer(sip_simulator: SipSimulator) -> None:
    completed, after_click = await dial_and_complete(sip_simulator, "callee_rings.xml")
    assert [m["type"] for m in after_click if m["dir"] == "in"] == [
        "OUTGOING_CALL_STARTED",
        "CALL_ENDED",
        "CALL_COMPLETED",
    ]
    assert {m["data"]["externalCallId"] for m in after_click[1:]} == {completed["externalCallId"]}
    assert after_click[-2]["data"]["callEndStatus"] == "NO_ANSWER"


async def test_a_sip_dial_the_pbx_refuses_ends_failed_with_the_sentence_shown_and_sent(
    browser: Browser, tmp_path: Path
) -> None:
    async with (
        kamailio_gateway(tmp_path, password="not-the-password") as (gw, _),
        open_simulator(browser, gw) as sim,
    ):
        await sim.log_in("alice")
        await sim.logged_in()
        await sim.dial(TARGET)
        ended = (await sim.from_app("CALL_ENDED"))[0]["data"]
        error = (await sim.from_app("ERROR"))[0]["data"]["message"]
        sentence = error.removeprefix("Dial refused: ")
        await sim.widget.get_by_role("alert").get_by_text(sentence).wait_for()
        await sim.from_app("CALL_COMPLETED")
        types = [m["type"] for m in await sim.call_messages(ended["externalCallId"]) if m["dir"] == "in"]
    assert ended["callEndStatus"] == "FAILED"
    assert error.startswith("Dial refused: the PBX refused the gateway's call to your phone ")
    assert error.endswith(": check its credentials")
    assert types == ["OUTGOING_CALL_STARTED", "CALL_ENDED", "CALL_COMPLETED"]


async def test_a_user_without_a_number_sees_the_dial_go_out_from_their_phone(
    browser: Browser, tmp_path: Path
) -> None:
    alice = {**harness.test_users()[0], "numbers": []}
    write_users(tmp_path / "users.json", [alice, *harness.test_users()[1:]])
    async with kamailio_gateway(tmp_path) as (gw, kamailio), open_simulator(browser, gw) as sim:
        await sim.log_in("alice")
        await sim.logged_in()
        async with phones(tmp_path, kamailio, PHONE, "callee_answers.xml"):
            await sim.dial(TARGET)
            await sim.widget.get_by_text("Dialling from your phone…").wait_for()
            started = (await sim.from_app("OUTGOING_CALL_STARTED"))[0]["data"]
            await sim.from_app("CALL_COMPLETED")
    assert "fromNumber" not in started and started["toNumber"] == TARGET
