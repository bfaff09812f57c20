"""What a sales person sees and can do in the widget: who is calling (HubSpot's
caller-id match, the record a click away), several calls at once, and no SDK
call made twice for a call whatever the stream resends.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
import pytest_asyncio
from playwright.async_api import Browser

from tests.support.browser import Message, Simulator, open_simulator, push_raw_event, shown
from tests.support.harness import Client, signal

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

CALL_TYPES = ("INCOMING_CALL", "CALL_ANSWERED", "CALL_ENDED", "CALL_COMPLETED")


@pytest_asyncio.fixture(loop_scope="session")
async def sim(browser: Browser, web_gateway: Client) -> AsyncIterator[Simulator]:
    async with open_simulator(browser, web_gateway) as sim:
        await sim.log_in("alice")
        await sim.logged_in()
        yield sim


async def feed(sim: Simulator, *signals: dict[str, object]) -> None:
    for body in signals:
        response = await sim.gateway.ingest(body)
        assert response.status_code == 202, response.text


def sent(log: list[Message], call_id: str) -> list[str]:
    return [
        m["type"]
        for m in log
        if m["dir"] == "in" and m["type"] in CALL_TYPES and (m["data"] or {}).get("externalCallId") == call_id
    ]


async def answer_with(sim: Simulator, kind: str, name: str, object_id: str = "1234") -> None:
    """What HubSpot's caller-id lookup finds for +15555550199 from now on."""
    await sim.page.locator("#match-number").fill("+15555550199")
    await sim.page.locator("#match-kind").select_option(kind)
    await sim.page.locator("#match-name").fill(name)
    await sim.page.locator("#match-object-id").fill(object_id)


async def test_the_caller_hubspot_matched_is_shown_with_its_kind(sim: Simulator) -> None:
    await answer_with(sim, "CONTACT", "Dana Díaz")
    await feed(sim, signal("who-1", "ringing", remoteName="PBX NAME"))
    card = await sim.card("Dana Díaz")
    assert "Contact" in await card.inner_text()
    assert "PBX NAME" not in await card.inner_text()
    await sim.screenshot("browser-caller-id-contact.png")


async def test_a_company_match_reads_as_a_company(sim: Simulator) -> None:
    await answer_with(sim, "COMPANY", "Acme Ltda")
    await feed(sim, signal("who-2", "ringing"))
    card = await sim.card("Acme Ltda")
    assert "Company" in await card.inner_text()


async def test_an_unknown_caller_shows_the_number_and_not_in_hubspot(sim: Simulator) -> None:
    await answer_with(sim, "NONE", "")
    await feed(sim, signal("who-3", "ringing"))
    card = await sim.card("Not in HubSpot")
    assert shown("+15555550199") in await card.inner_text()
    assert not await card.get_by_role("button", name="Open record").is_visible()


async def test_a_failed_match_is_no_notice_and_the_call_still_shows(sim: Simulator) -> None:
    await answer_with(sim, "FAILED", "")
    await feed(sim, signal("who-4", "ringing"))
    await sim.to_app("CALLER_ID_MATCH_FAILED")
    await sim.card(shown("+15555550199"))
    assert await sim.widget.locator("#notices li").count() == 0


async def test_open_record_asks_hubspot_to_navigate_to_the_matched_record(sim: Simulator) -> None:
    await answer_with(sim, "CONTACT", "Dana Díaz", "4321")
    await feed(sim, signal("who-5", "ringing"))
    card = await sim.card("Dana Díaz")
    await card.get_by_role("button", name="Open record").click()
    request = (await sim.from_app("NAVIGATE_TO_RECORD"))[0]["data"]
    assert request["objectCoordinates"] == {"portalId": 100, "objectId": 4321, "objectTypeId": "0-1"}
    assert request["openIn"] == "CURRENT_TAB"
    engagement = (await sim.to_app("CREATE_ENGAGEMENT_SUCCEEDED"))[0]["data"]["engagementId"]
    assert request["engagementId"] == engagement
    await sim.page.get_by_text("0-1 4321 in CURRENT_TAB").wait_for()


async def test_the_record_opens_by_itself_on_an_inbound_call_when_asked(sim: Simulator) -> None:
    await answer_with(sim, "COMPANY", "Acme Ltda", "77")
    await sim.widget.get_by_label("Open the caller's record on inbound calls").check()
    await feed(sim, signal("who-6", "ringing"))
    request = (await sim.from_app("NAVIGATE_TO_RECORD"))[0]["data"]
    assert request["objectCoordinates"] == {"portalId": 100, "objectId": 77, "objectTypeId": "0-2"}
    assert request["openIn"] == "NEW_TAB"


async def test_two_overlapping_calls_are_both_shown_each_with_its_state_and_timer(sim: Simulator) -> None:
    await answer_with(sim, "NONE", "")
    await feed(sim, signal("two-1", "ringing", remoteName="First Caller"), signal("two-1", "answered"))
    await sim.from_app("CALL_ANSWERED")
    await feed(sim, signal("two-2", "ringing", remoteName="Second Caller", **{"from": "+15555550177"}))
    second = await sim.card("Second Caller")
    first = await sim.card("First Caller")
    assert "In call" in await first.inner_text() and "Talking for" in await first.inner_text()
    assert "Ringing" in await second.inner_text() and "Ringing for" in await second.inner_text()
    # The call being talked on stays first, above the one ringing.
    names = await sim.widget.locator("#call-list .call-name").all_inner_texts()
    assert names == ["First Caller", "Second Caller"]
    await sim.screenshot("browser-two-calls.png")

    await feed(sim, signal("two-2", "answered"))
    await sim.from_app("CALL_ANSWERED", 2)
    await first.get_by_text("In call").wait_for()
    await second.get_by_text("In call").wait_for()


async def test_an_answered_call_stays_while_another_rings_and_ends(sim: Simulator) -> None:
    await answer_with(sim, "NONE", "")
    await feed(sim, signal("stay-1", "ringing", remoteName="Kept Caller"), signal("stay-1", "answered"))
    await sim.from_app("CALL_ANSWERED")
    await feed(sim, signal("stay-2", "ringing", remoteName="Brief Caller", **{"from": "+15555550177"}))
    await feed(sim, signal("stay-2", "ended", endStatus="MISSED"))
    await sim.from_app("CALL_COMPLETED")
    kept = await sim.card("Kept Caller")
    assert "In call" in await kept.inner_text()
    # The missed one is among the last calls, in words, with its time of day.
    recent = sim.widget.locator("#recent-list li", has_text="Brief Caller")
    await recent.wait_for()
    text = await recent.inner_text()
    assert "Missed" in text and "MISSED" not in text
    assert re.search(r"\d{1,2}:\d{2}", text), text


async def test_a_call_resent_under_new_ids_makes_no_sdk_call_twice(sim: Simulator) -> None:
    call = "ingest:again-1"
    await feed(sim, signal("again-1", "ringing"), signal("again-1", "answered"))
    await sim.from_app("CALL_ANSWERED")
    # A broker that lost what it had emitted (issue 13: Redis lost its data)
    # emits the call's start and answer again, under fresh event ids.
    gw = sim.gateway.gateway
    user = gw.directory.by_login("alice")
    assert user is not None
    await gw.broker.transact(user.id, call, lambda held: (replace(held, emitted=()) if held else None, []))
    await feed(sim, signal("again-1", "answered"))
    await feed(sim, signal("again-1", "ended", endStatus="COMPLETED"))
    await sim.from_app("CALL_COMPLETED")
    assert sent(await sim.messages(), call) == list(CALL_TYPES)


async def test_a_call_the_gateway_logs_itself_makes_no_sdk_call(sim: Simulator) -> None:
    call = "ingest:logged-1"
    snapshot = {
        "externalCallId": call,
        "direction": "inbound",
        "state": "ringing",
        "fromNumber": "+15555550144",
        "toNumber": "+15555550101",
        "remoteName": "Logged Elsewhere",
        "startedAt": None,
        "answeredAt": None,
        "endedAt": None,
        "endStatus": None,
        "engagementId": None,
        "loggedBy": "gateway",
    }
    payload = {"externalCallId": call, "fromNumber": "+15555550144", "toNumber": "+15555550101"}
    event = {"type": "incomingCall", "externalCallId": call, "payload": payload, "call": snapshot}
    await push_raw_event(sim.gateway, "alice", event)
    card = await sim.card("Logged Elsewhere")
    await card.get_by_text("Logged by the gateway").wait_for()
    # A call after it goes through as usual, so the first had its turn.
    await feed(sim, signal("after-logged", "ringing"))
    await sim.from_app("INCOMING_CALL")
    assert sent(await sim.messages(), call) == []


async def test_copies_of_a_calls_events_pushed_into_the_stream_make_no_sdk_call_twice(sim: Simulator) -> None:
    call = "ingest:copies-1"
    await feed(sim, signal("copies-1", "ringing"), signal("copies-1", "answered"))
    await sim.from_app("CALL_ANSWERED")
    # The same start and answer once more, straight into the stream, each
    # under a new id; then a start again after the call ended.
    snapshot = {"externalCallId": call, "direction": "inbound", "state": "answered"}
    start = {"externalCallId": call, "fromNumber": "+15555550199", "toNumber": "+15555550101"}
    for kind, payload in (("incomingCall", start), ("callAnswered", {"externalCallId": call})):
        await push_raw_event(
            sim.gateway, "alice", {"type": kind, "externalCallId": call, "payload": payload, "call": snapshot}
        )
    await feed(sim, signal("copies-1", "ended", endStatus="COMPLETED"))
    await sim.from_app("CALL_COMPLETED")
    ended = {**snapshot, "state": "ended"}
    late = {"type": "incomingCall", "externalCallId": call, "payload": start, "call": ended}
    await push_raw_event(sim.gateway, "alice", late)
    await feed(sim, signal("copies-2", "ringing", **{"from": "+15555550177"}))
    await sim.from_app("INCOMING_CALL", 2)
    assert sent(await sim.messages(), call) == list(CALL_TYPES)


async def test_a_frame_the_host_narrowed_stays_narrow_when_the_content_grows(sim: Simulator) -> None:
    await feed(sim, signal("narrow-1", "ringing", remoteName="A Caller With A Rather Long Name"))
    await sim.card("A Caller With A Rather Long Name")
    before = (await sim.from_app("RESIZE_WIDGET"))[-1]["data"]["height"]
    # HubSpot (or the user's layout) narrows the frame as the SDK's host side
    # sizes it: through the iframe's width attribute.
    await sim.page.evaluate("document.querySelector('#calling-widget iframe').setAttribute('width', '300px')")
    # A second ringing call makes the content taller: the page asks for more height.
    await feed(sim, signal("narrow-2", "ringing", remoteName="Another Caller", **{"from": "+15555550177"}))
    await sim.card("Another Caller")
    await sim.page.wait_for_function(
        "h => window.hostLog.some(m => m.type === 'RESIZE_WIDGET' && m.data.height > h)", arg=before
    )
    width = await sim.page.evaluate("document.querySelector('#calling-widget iframe').getAttribute('width')")
    assert width == "300px"
    frame = sim.widget_frame()
    assert await frame.evaluate("window.innerWidth") == 300
    overflow = await frame.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow == 0
    await sim.screenshot("browser-narrowed-widget-grows.png")
