"""Click-to-dial through the simulator, with the demo route of dev mode behind it.

HubSpot's DIAL_NUMBER goes to the page, the page asks the gateway, and the
call comes back through the stream as one call: OUTGOING_CALL_STARTED,
HubSpot's engagement, answer, end and completion, one externalCallId.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser

from gateway.dial import demo
from tests.support.browser import Simulator, calls_only, open_simulator
from tests.support.harness import make_settings, running_gateway

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


@pytest_asyncio.fixture(loop_scope="session")
async def dev_simulator(
    browser: Browser, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Simulator]:
    monkeypatch.setattr(demo, "DIAL_TIMING", {"ring": 0.3, "talk": 0.3, "no_answer": 0.3})
    async with (
        running_gateway(make_settings(tmp_path, dev=True)) as client,
        open_simulator(browser, client) as sim,
    ):
        await sim.log_in("alice")
        await sim.logged_in()
        yield sim


async def test_a_dial_is_one_call_from_the_click_to_its_completion(dev_simulator: Simulator) -> None:
    sim = dev_simulator
    await sim.dial("(212) 555-0100")
    completed = (await sim.from_app("CALL_COMPLETED"))[0]["data"]
    call = completed["externalCallId"]
    assert call.startswith("dial:")
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
    started: dict[str, Any] = after_click[1]["data"]
    assert (started["toNumber"], started["fromNumber"], started["createEngagement"]) == (
        "+12125550100",
        "+15555550101",
        True,
    )
    engagement = after_click[2]["data"]["engagementId"]
    assert completed["engagementId"] == engagement
    assert completed["engagementProperties"]["hs_call_status"] == "COMPLETED"
    assert completed["engagementProperties"]["hs_call_direction"] == "OUTBOUND"
    await sim.widget.locator(".call-state", has_text="Ended").wait_for()


@pytest.mark.parametrize(
    ("number", "status"),
    [(demo.DEMO_BUSY, "BUSY"), (demo.DEMO_NO_ANSWER, "NO_ANSWER"), (demo.DEMO_CANCELED, "CANCELED")],
)
async def test_the_demo_numbers_end_busy_unanswered_and_canceled(
    dev_simulator: Simulator, number: str, status: str
) -> None:
    sim = dev_simulator
    await sim.dial(number)
    ended = (await sim.from_app("CALL_ENDED"))[0]["data"]
    assert ended["callEndStatus"] == status
    await sim.from_app("CALL_COMPLETED")
    types = [m["type"] for m in await sim.call_messages(ended["externalCallId"]) if m["dir"] == "in"]
    assert types == ["OUTGOING_CALL_STARTED", "CALL_ENDED", "CALL_COMPLETED"]


async def test_the_simulator_offers_a_number_for_every_ending_of_the_demo_route(
    dev_simulator: Simulator,
) -> None:
    offered = await dev_simulator.page.locator("#dial-examples option").evaluate_all(
        "options => options.map(o => o.value)"
    )
    endings = [demo.DEMO_BUSY, demo.DEMO_NO_ANSWER, demo.DEMO_CANCELED, demo.DEMO_REFUSED]
    assert [number for number in endings if number not in offered] == []


async def test_a_number_the_policy_refuses_shows_the_sentence_and_tells_hubspot(
    dev_simulator: Simulator,
) -> None:
    sim = dev_simulator
    await sim.dial("+1 900 555 0100")
    sentence = "+19005550100 is a premium-rate number, which your portal may not dial"
    await sim.widget.get_by_role("alert").get_by_text(sentence).wait_for()
    error = (await sim.from_app("ERROR"))[0]["data"]
    assert error == {"message": f"Dial refused: {sentence}"}
    assert not [m for m in await sim.messages() if m["type"] == "OUTGOING_CALL_STARTED"]


async def test_an_originate_the_exchange_refuses_ends_failed_with_the_error_shown(
    dev_simulator: Simulator,
) -> None:
    sim = dev_simulator
    await sim.dial(demo.DEMO_REFUSED)
    ended = (await sim.from_app("CALL_ENDED"))[0]["data"]
    assert ended["callEndStatus"] == "FAILED"
    sentence = f"the demo exchange refused the call to {demo.DEMO_REFUSED}"
    await sim.widget.get_by_role("alert").get_by_text(sentence).wait_for()
    assert (await sim.from_app("ERROR"))[0]["data"] == {"message": f"Dial refused: {sentence}"}
