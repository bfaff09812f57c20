"""Events reach HubSpot once each: across reloads, per call, whatever HubSpot answers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Browser

from tests.support.browser import Message, Simulator, open_simulator, shown
from tests.support.harness import Client, signal

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

# Records each SDK event the widget's stream received, before the page's own
# handling, as "type externalCallId" in window.sdkReceived: the tests need to
# know an event is in the page but not yet passed on to HubSpot.
RECORD_RECEIVED = """
(() => {
  const Native = window.EventSource;
  if (!Native) return;
  window.sdkReceived = [];
  window.EventSource = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("sdk", (message) => {
        const data = JSON.parse(message.data);
        window.sdkReceived.push(`${data.type} ${data.externalCallId}`);
      });
    }
  };
})();
"""


@pytest_asyncio.fixture(loop_scope="session")
async def sim(browser: Browser, web_gateway: Client) -> AsyncIterator[Simulator]:
    """The simulator, its widget recording what its stream received."""
    async with open_simulator(browser, web_gateway, init_script=RECORD_RECEIVED) as sim:
        yield sim


async def feed(sim: Simulator, *signals: dict[str, object]) -> None:
    for body in signals:
        response = await sim.gateway.ingest(body)
        assert response.status_code == 202, response.text


async def received(sim: Simulator, entry: str) -> None:
    """Waits until the widget's stream has received ``entry`` ("type externalCallId")."""
    await sim.widget_frame().wait_for_function("(e) => window.sdkReceived.includes(e)", arg=entry)


def types_of(log: list[Message], call_id: str) -> list[str]:
    return [
        m["type"]
        for m in log
        if m["dir"] == "in"
        and m["type"].startswith(("INCOMING", "OUTGOING", "CALL_"))
        and (m["data"] or {}).get("externalCallId") == call_id
    ]


async def end_held_for_engagement(sim: Simulator, call_id: str) -> str:
    """Signs in, rings and ends a call whose engagement id HubSpot has not sent.

    Returns once the page holds the call's end, waiting for that id.
    """
    # HubSpot answers slowly (or not at all): the simulator leaves it to the test.
    await sim.page.locator("#auto-engagement").uncheck()
    await sim.log_in("alice")
    await sim.logged_in()
    call = f"ingest:{call_id}"
    await feed(sim, signal(call_id, "ringing"))
    await sim.from_app("INCOMING_CALL")
    await feed(sim, signal(call_id, "ended", endStatus="CANCELED"))
    await received(sim, f"callCompleted {call}")
    return call


async def test_events_received_but_not_yet_passed_on_are_delivered_after_a_reload(sim: Simulator) -> None:
    call = await end_held_for_engagement(sim, "reload-q")
    assert types_of(await sim.messages(), call) == ["INCOMING_CALL"]

    await sim.page.get_by_role("button", name="Reload iframe").click()
    await sim.from_app("SYNC_ACK", 2)
    completed = (await sim.from_app("CALL_COMPLETED"))[0]["data"]
    # HubSpot never created the engagement: callCompleted (engagement
    # optional) closes the call; callEnded, which requires it, is not sent.
    assert completed["externalCallId"] == call
    assert "engagementId" not in completed
    assert types_of(await sim.messages(), call) == ["INCOMING_CALL", "CALL_COMPLETED"]


async def test_a_call_waiting_for_its_engagement_does_not_hold_up_another_call(sim: Simulator) -> None:
    first = await end_held_for_engagement(sim, "slow-1")
    second = "ingest:next-2"

    await feed(sim, signal("next-2", "ringing", **{"from": "+15555550177"}))
    incoming = await sim.from_app("INCOMING_CALL", 2)
    assert incoming[1]["data"]["externalCallId"] == second
    # The first call's end still waits for its engagement, in its own turn.
    assert types_of(await sim.messages(), first) == ["INCOMING_CALL"]

    await sim.page.get_by_label("Call", exact=True).fill(first)
    await sim.page.get_by_label("Engagement", exact=True).fill("4242")
    await sim.page.get_by_role("button", name="CREATE_ENGAGEMENT_SUCCEEDED").click()
    ended = (await sim.from_app("CALL_ENDED"))[0]["data"]
    assert ended == {"externalCallId": first, "callEndStatus": "MISSED", "engagementId": 4242}
    await sim.from_app("CALL_COMPLETED")
    assert types_of(await sim.messages(), first) == ["INCOMING_CALL", "CALL_ENDED", "CALL_COMPLETED"]


async def test_failed_engagement_completes_the_call_at_once_without_call_ended(sim: Simulator) -> None:
    call = await end_held_for_engagement(sim, "nolog-1")

    await sim.page.get_by_label("Call", exact=True).fill(call)
    await sim.page.get_by_role("button", name="CREATE_ENGAGEMENT_FAILED").click()
    failed = (await sim.to_app("CREATE_ENGAGEMENT_FAILED"))[0]
    completed = (await sim.from_app("CALL_COMPLETED"))[0]
    # Well inside the page's 5 s wait for an engagement id.
    assert completed["at"] - failed["at"] < 2_000
    # The SDK's OnCallEnded requires an engagementId, which HubSpot never made.
    assert types_of(await sim.messages(), call) == ["INCOMING_CALL", "CALL_COMPLETED"]
    assert "engagementId" not in completed["data"]


async def test_failed_engagement_notice_names_the_call_shows_hubspots_text_and_can_be_dismissed(
    sim: Simulator,
) -> None:
    call = await end_held_for_engagement(sim, "nolog-2")
    await sim.page.get_by_label("Call", exact=True).fill(call)
    await sim.page.get_by_role("button", name="CREATE_ENGAGEMENT_FAILED").click()
    notice = sim.widget.locator("#notices li")
    await notice.wait_for()
    text = await notice.inner_text()
    assert f"HubSpot could not log the inbound call from {shown('+15555550199')}" in text
    assert "The simulator refused to log this call" in text
    assert "[object Object]" not in text
    await sim.screenshot("browser-engagement-failed-notice.png")
    await notice.get_by_role("button", name="Dismiss notice").click()
    await notice.wait_for(state="detached")


async def test_reload_replays_a_waiting_calls_end_but_not_another_call_passed_on_meanwhile(
    sim: Simulator,
) -> None:
    first = await end_held_for_engagement(sim, "wait-1")
    second = "ingest:other-2"
    # The second call's event comes after the first call's end in the stream,
    # and reaches HubSpot while that end still waits.
    await feed(sim, signal("other-2", "ringing", **{"from": "+15555550177"}))
    await sim.from_app("INCOMING_CALL", 2)

    await sim.page.get_by_role("button", name="Reload iframe").click()
    await sim.from_app("SYNC_ACK", 2)
    await sim.from_app("CALL_COMPLETED")
    # Something after the replay, so a second INCOMING_CALL would be in by now.
    await feed(sim, signal("other-2", "answered"))
    await sim.from_app("CALL_ANSWERED")
    log = await sim.messages()
    # No engagement was ever made for the first call: no callEnded (see above).
    assert types_of(log, first) == ["INCOMING_CALL", "CALL_COMPLETED"]
    assert types_of(log, second) == ["INCOMING_CALL", "CALL_ANSWERED"]
