"""Click-to-dial through the simulator with a CPaaS behind it: Twilio's API, played by its stand-in.

DIAL_NUMBER → the Twilio route creates the call to the user's phone → the
stand-in plays it (user answers, the number rings, answers, is busy or is
not answered) and posts Twilio's signed status callbacks → one call in the
widget and in HubSpot, from OUTGOING_CALL_STARTED to CALL_COMPLETED. A
create-call request Twilio refuses ends the call FAILED, its sentence in
the widget and in HubSpot's sendError.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser

from tests.support.browser import Simulator, calls_only, open_simulator
from tests.support.dial_loop import Loop, dial_loop
from tests.support.standin import Script

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

TARGET = "+12125550100"
BUSY = "+12125550186"
NO_ANSWER = "+12125550108"
REFUSED = "+12125550113"


@pytest_asyncio.fixture(loop_scope="session")
async def twilio_simulator(browser: Browser, tmp_path: Path) -> AsyncIterator[tuple[Simulator, Loop]]:
    async with dial_loop(tmp_path, "twilio") as loop, open_simulator(browser, loop.gw) as sim:
        loop.api.step_seconds = 0.2
        loop.api.scripts[BUSY] = Script(target="busy")
        await sim.log_in("alice")
        await sim.logged_in()
        yield sim, loop


async def test_a_twilio_dial_is_one_call_from_the_click_to_its_completion(
    twilio_simulator: tuple[Simulator, Loop],
) -> None:
    sim, loop = twilio_simulator
    await sim.dial(TARGET)
    completed = (await sim.from_app("CALL_COMPLETED"))[0]["data"]
    call = completed["externalCallId"]
    messages = calls_only(await sim.messages())
    after_click = messages[next(i for i, m in enumerate(messages) if m["type"] == "DIAL_NUMBER") :]
    assert [(m["dir"], m["type"]) for m in after_click] == [
        ("out", "DIAL_NUMBER"),
        ("in", "OUTGOING_CALL_STARTED"),
        ("out", "CREATE_ENGAGEMENT_SUCCEEDED"),
        ("in", "CALL_ANSWERED"),
        ("in", "CALL_ENDED"),
        ("in", "CALL_COMPLETED"),
    ]
    assert {m["data"]["externalCallId"] for m in after_click[1:]} == {call}
    assert completed["engagementId"] == after_click[2]["data"]["engagementId"]
    assert completed["engagementProperties"]["hs_call_status"] == "COMPLETED"
    await sim.widget.locator(".call-state", has_text="Ended").wait_for()
    await loop.api.idle()
    assert [d.status for d in loop.api.delivered] == [200] * len(loop.api.delivered)


async def test_a_busy_number_ends_the_twilio_dial_busy(twilio_simulator: tuple[Simulator, Loop]) -> None:
    sim, _ = twilio_simulator
    await sim.dial(BUSY)
    ended = (await sim.from_app("CALL_ENDED"))[0]["data"]
    assert ended["callEndStatus"] == "BUSY"
    # The completion follows the end by one round trip of the page's claim.
    await sim.from_app("CALL_COMPLETED")
    types = [m["type"] for m in await sim.call_messages(ended["externalCallId"]) if m["dir"] == "in"]
    assert types == ["OUTGOING_CALL_STARTED", "CALL_ENDED", "CALL_COMPLETED"]


async def test_a_number_nobody_answers_ends_the_twilio_dial_no_answer(
    twilio_simulator: tuple[Simulator, Loop],
) -> None:
    sim, loop = twilio_simulator
    loop.api.scripts[NO_ANSWER] = Script(target="no-answer")
    await sim.dial(NO_ANSWER)
    ended = (await sim.from_app("CALL_ENDED"))[0]["data"]
    assert ended["callEndStatus"] == "NO_ANSWER"
    await sim.from_app("CALL_COMPLETED")
    types = [m["type"] for m in await sim.call_messages(ended["externalCallId"]) if m["dir"] == "in"]
    assert types == ["OUTGOING_CALL_STARTED", "CALL_ENDED", "CALL_COMPLETED"]


async def test_an_originate_twilio_refuses_ends_failed_with_the_sentence_shown_and_sent(
    twilio_simulator: tuple[Simulator, Loop],
) -> None:
    sim, loop = twilio_simulator
    loop.api.scripts[REFUSED] = Script(api="invalid")
    await sim.dial(REFUSED)
    ended = (await sim.from_app("CALL_ENDED"))[0]["data"]
    assert ended["callEndStatus"] == "FAILED"
    # The stand-in's answer to a bad parameter, as Twilio words it.
    sentence = "Twilio refused the call (400: Invalid 'To' Phone Number (error 21211))"
    await sim.widget.get_by_role("alert").get_by_text(sentence).wait_for()
    assert (await sim.from_app("ERROR"))[0]["data"] == {"message": f"Dial refused: {sentence}"}
    await sim.from_app("CALL_COMPLETED")
    types = [m["type"] for m in await sim.call_messages(ended["externalCallId"]) if m["dir"] == "in"]
    assert types == ["OUTGOING_CALL_STARTED", "CALL_ENDED", "CALL_COMPLETED"]
