"""The wrap-up: after a call ends the user adds a note and picks an outcome
from the portal's own, and they reach HubSpot with CALL_COMPLETED; a wrap-up
nobody finishes still completes the call, and a reload does not lose it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Locator, Route
from playwright.async_api import Error as PlaywrightError

from gateway.http.wrapup import HUBSPOT_DEFAULT_DISPOSITIONS
from gateway.standin.dev import DEMO_PORTAL, MOUNT
from tests.support.browser import TIMEOUT_MS, Message, Simulator, open_simulator
from tests.support.harness import Client, make_settings, running_gateway, signal
from tests.support.hubspot import dev_gateway

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

CONNECTED = "f240bbac-87c9-4f6e-bf70-924b57d47db7"  # HubSpot's default "Connected"
DEMO_BOOKED = "0e6d2b36-8a2f-4c1e-9b7a-3f5d1c2e4a10"  # a portal's own outcome
# Long enough for reloads and tabs to be over well inside the late wrap-up's
# time on a busy machine.
BRIEF_SECONDS = 10


@pytest_asyncio.fixture(loop_scope="session")
async def slow_wrap_up(tmp_path: Path) -> AsyncIterator[Client]:
    """A gateway whose page waits a minute for the wrap-up."""
    async with running_gateway(make_settings(tmp_path, wrap_up_seconds=60)) as client:
        yield client


@pytest_asyncio.fixture(loop_scope="session")
async def brief_wrap_up(tmp_path: Path) -> AsyncIterator[Client]:
    """A gateway whose page waits a few seconds for the wrap-up: past that
    deadline the wrap-up is late, and kept across reloads as long again."""
    async with running_gateway(make_settings(tmp_path, wrap_up_seconds=BRIEF_SECONDS)) as client:
        yield client


@pytest_asyncio.fixture(loop_scope="session")
async def sim(browser: Browser, slow_wrap_up: Client) -> AsyncIterator[Simulator]:
    async with open_simulator(browser, slow_wrap_up) as sim:
        yield sim


async def feed(gateway: Client, *signals: dict[str, object]) -> None:
    for body in signals:
        response = await gateway.ingest(body)
        assert response.status_code == 202, response.text


async def ended_call(sim: Simulator, call_id: str) -> None:
    await sim.log_in("alice")
    await sim.logged_in()
    await feed(sim.gateway, signal(call_id, "ringing"), signal(call_id, "answered"))
    await sim.from_app("CALL_ANSWERED")
    await feed(sim.gateway, signal(call_id, "ended", endStatus="COMPLETED"))
    await sim.from_app("CALL_ENDED")


def completions(log: list[Message]) -> list[Message]:
    return [m for m in log if m["dir"] == "in" and m["type"] == "CALL_COMPLETED"]


async def test_a_note_and_an_outcome_reach_hubspot_with_call_completed(sim: Simulator) -> None:
    await ended_call(sim, "wrap-1")
    card = await sim.card("Wrap-up")
    await card.get_by_label("Outcome").select_option(label="Connected")
    await card.get_by_label("Notes").fill("Wants a quote\nCall back <Monday>")
    assert completions(await sim.messages()) == []  # held until the user saves
    await sim.screenshot("browser-wrap-up.png")
    await card.get_by_role("button", name="Save and log").click()

    completed = (await sim.from_app("CALL_COMPLETED"))[0]["data"]
    engagement = (await sim.to_app("CREATE_ENGAGEMENT_SUCCEEDED"))[0]["data"]["engagementId"]
    assert completed["engagementId"] == engagement
    props = completed["engagementProperties"]
    assert props["hs_call_disposition"] == CONNECTED
    assert props["hs_call_body"] == "Wants a quote<br>Call back &lt;Monday&gt;"
    assert props["hs_call_status"] == "COMPLETED"  # the gateway's own properties stay


async def test_the_wrap_up_survives_a_reload_and_completes_the_call_once(sim: Simulator) -> None:
    await ended_call(sim, "wrap-2")
    card = await sim.card("Wrap-up")
    await card.get_by_label("Notes").fill("Left a message with the assistant")
    await sim.page.get_by_role("button", name="Reload iframe").click()
    await sim.from_app("INITIALIZED", 2)
    # The reloaded page is handed the held completion again and asks anew,
    # with what was typed (this browser grants the frame its storage).
    card = await sim.card("Wrap-up")
    notes = card.get_by_label("Notes")
    assert await notes.input_value() == "Left a message with the assistant"
    await card.get_by_role("button", name="Save and log").click()
    completed = (await sim.from_app("CALL_COMPLETED"))[0]["data"]
    assert completed["engagementProperties"]["hs_call_body"] == "Left a message with the assistant"
    # Something later, so that a second completion would be in by now.
    await feed(sim.gateway, signal("wrap-2b", "ringing"))
    await sim.from_app("INCOMING_CALL", 2)
    assert len(completions(await sim.messages())) == 1


async def test_notes_being_typed_keep_the_keys_when_another_call_rings(sim: Simulator) -> None:
    await ended_call(sim, "wrap-focus")
    notes = (await sim.card("Wrap-up")).get_by_label("Notes")
    await notes.press_sequentially("Asked for ")
    await feed(sim.gateway, signal("wrap-focus-2", "ringing"))
    await sim.from_app("INCOMING_CALL", 2)
    await sim.widget.locator("#call-list > li").nth(1).wait_for()
    # The next keys go where the user was typing, not to the page.
    await sim.page.keyboard.type("a demo")
    assert await notes.input_value() == "Asked for a demo"


async def test_a_wrap_up_nobody_finishes_completes_the_call_at_its_deadline(
    browser: Browser, web_gateway: Client
) -> None:
    # web_gateway's page waits one second (tests/support/harness.py).
    async with open_simulator(browser, web_gateway) as sim:
        await ended_call(sim, "wrap-3")
        completed = (await sim.from_app("CALL_COMPLETED"))[0]["data"]
        props = completed["engagementProperties"]
        assert "hs_call_body" not in props and "hs_call_disposition" not in props
        await sim.widget.locator("#call-list .call-state", has_text="Ended").wait_for()


async def test_the_outcomes_offered_are_hubspots_defaults_unless_the_portal_has_its_own(
    tmp_path: Path, web_gateway: Client
) -> None:
    token = await web_gateway.login("alice")
    bearer = {"authorization": f"Bearer {token}"}
    defaults = (await web_gateway.http.get("/api/wrap-up", headers=bearer)).json()
    assert [(d["id"], d["label"]) for d in defaults["dispositions"]] == list(HUBSPOT_DEFAULT_DISPOSITIONS)
    own = make_settings(tmp_path, call_dispositions=((DEMO_BOOKED, "Demo booked"),), wrap_up_seconds=90)
    async with running_gateway(own) as client:
        token = await client.login("alice")
        answer = (await client.http.get("/api/wrap-up", headers={"authorization": f"Bearer {token}"})).json()
    assert answer == {
        "timeoutSeconds": 90,
        "dispositions": [{"id": DEMO_BOOKED, "label": "Demo booked"}],
        "source": "settings",
    }


async def test_the_wrap_up_settings_need_a_session(web_gateway: Client) -> None:
    assert (await web_gateway.http.get("/api/wrap-up")).status_code == 401


async def test_a_wrap_up_saved_after_the_deadline_updates_the_engagement_in_hubspot(
    browser: Browser, tmp_path: Path
) -> None:
    """Cross-site, as HubSpot embeds the widget: the deadline completes the call, the late save updates it."""
    no_answer = "73a0d17f-1163-4015-bdd5-ec830791da20"  # in the stand-in portal's outcomes
    async with (
        dev_gateway(tmp_path) as (gateway, _clock),
        open_simulator(browser, gateway, portal_id=DEMO_PORTAL, cross_site=True) as sim,
    ):
        await sim.log_in("alice")
        await sim.logged_in()
        await feed(gateway, signal("late-1", "ringing"))
        engagement = (await sim.to_app("CREATE_ENGAGEMENT_SUCCEEDED"))[0]["data"]["engagementId"]
        await feed(gateway, signal("late-1", "answered"))
        await sim.from_app("CALL_ANSWERED")
        await feed(gateway, signal("late-1", "ended", endStatus="COMPLETED"))
        completed = (await sim.from_app("CALL_COMPLETED"))[0]["data"]  # the deadline (1 s) passed
        assert "hs_call_body" not in completed["engagementProperties"]

        card = await sim.card("Save to the call")
        await card.get_by_label("Outcome").select_option(label="No answer")
        await card.get_by_label("Notes").fill("Called back later\nno <answer>")
        await card.get_by_role("button", name="Save to the call").click()
        await sim.widget.get_by_text("saved; HubSpot shows it shortly").wait_for()
        await sim.screenshot("browser-wrap-up-late.png")
        wanted = f"<td>hs_call_disposition</td><td>{no_answer}</td>"
        deadline = time.monotonic() + 10
        while wanted not in (page := (await gateway.http.get(MOUNT + "/")).text):
            assert time.monotonic() < deadline, "the stand-in never showed the wrap-up's update"
            await asyncio.sleep(0.05)  # the stand-in's page is all there is to watch
        assert len(completions(await sim.messages())) == 1
    assert f"call {engagement} (portal {DEMO_PORTAL})" in page
    assert "<td>hs_call_body</td><td>Called back later&lt;br&gt;no &amp;lt;answer&amp;gt;</td>" in page


async def test_the_simulator_answers_call_completed_with_the_update_and_shows_the_wrap_up(
    sim: Simulator,
) -> None:
    await ended_call(sim, "wrap-upd")
    card = await sim.card("Wrap-up")
    await card.get_by_label("Outcome").select_option(label="Connected")
    await card.get_by_role("button", name="Save and log").click()
    completed = (await sim.from_app("CALL_COMPLETED"))[0]["data"]
    [updated] = await sim.to_app("UPDATE_ENGAGEMENT_SUCCEEDED")
    assert updated["data"]["engagementId"] == completed["engagementId"]
    shown = await sim.page.locator("#updated").text_content()
    assert shown == f"{completed['engagementId']} SUCCEEDED: hs_call_disposition={CONNECTED}"


async def test_an_update_hubspot_refused_is_offered_again_and_saved_through_the_gateway(
    browser: Browser, tmp_path: Path
) -> None:
    async with (
        dev_gateway(tmp_path) as (gateway, _clock),
        open_simulator(browser, gateway, portal_id=DEMO_PORTAL, cross_site=True) as sim,
    ):
        await sim.page.locator("#update-reply").select_option("FAILED")
        await sim.log_in("alice")
        await sim.logged_in()
        await feed(gateway, signal("refused-1", "ringing"))
        engagement = (await sim.to_app("CREATE_ENGAGEMENT_SUCCEEDED"))[0]["data"]["engagementId"]
        await feed(gateway, signal("refused-1", "ended", endStatus="NO_ANSWER"))
        await sim.from_app("CALL_COMPLETED")  # the 1 s deadline, nothing typed
        await sim.to_app("UPDATE_ENGAGEMENT_FAILED")
        await sim.widget.get_by_text("HubSpot could not save the wrap-up of").wait_for()
        card = await sim.card("Save to the call")
        await card.get_by_label("Notes").fill("Try again on Friday")
        await card.get_by_role("button", name="Save to the call").click()
        await sim.widget.get_by_text("saved; HubSpot shows it shortly").wait_for()
        await sim.screenshot("browser-wrap-up-update-refused.png")
        deadline = time.monotonic() + 10
        while "<td>hs_call_body</td><td>Try again on Friday</td>" not in (
            page := (await gateway.http.get(MOUNT + "/")).text
        ):
            assert time.monotonic() < deadline, "the stand-in never showed the wrap-up's update"
            await asyncio.sleep(0.05)  # the stand-in's page is all there is to watch
    assert f"call {engagement} (portal {DEMO_PORTAL})" in page


async def reload_widget(sim: Simulator) -> None:
    loads = len(await sim.from_app("INITIALIZED"))
    await sim.page.get_by_role("button", name="Reload iframe").click()
    await sim.from_app("INITIALIZED", loads + 1)


async def left_to_the_deadline(sim: Simulator, call_id: str) -> Locator:
    """A call whose wrap-up nobody saved: the deadline completed it, and its card offers the wrap-up late."""
    await ended_call(sim, call_id)
    # The completion comes when the wrap-up's time is up: wait that long, and the usual wait on top.
    await sim.from_app("CALL_COMPLETED", timeout_ms=BRIEF_SECONDS * 1000 + TIMEOUT_MS)
    return await sim.card("Save to the call")


async def completed_once(sim: Simulator, next_call: str) -> None:
    """Another call rings, so that a second completion would be in by now: there is none."""
    await feed(sim.gateway, signal(next_call, "ringing"))
    await sim.from_app("INCOMING_CALL", 2)
    assert len(completions(await sim.messages())) == 1


async def newest_event(gateway: Client, login: str) -> str | None:
    """The id of the newest event on the user's stream."""
    broker, user = gateway.gateway.broker, gateway.gateway.directory.by_login(login)
    assert user is not None
    sub = await broker.subscribe(user.id, None)
    broker.unsubscribe(sub)
    return sub.head_id


async def test_a_late_wrap_up_is_offered_again_after_a_reload_until_its_time_is_up(
    browser: Browser, brief_wrap_up: Client
) -> None:
    async with open_simulator(browser, brief_wrap_up) as sim:
        card = await left_to_the_deadline(sim, "late-same")
        completion = await newest_event(sim.gateway, "alice")
        await card.get_by_label("Notes").fill("Rang back, left a voicemail")
        await reload_widget(sim)
        card = await sim.card("Save to the call")
        # This browser grants the frame its storage: what was typed is there.
        assert await card.get_by_label("Notes").input_value() == "Rang back, left a voicemail"
        await sim.screenshot("browser-wrap-up-late-after-reload.png")

        # Its time up (the wrap-up's, then as long again), the page lets the
        # completion go: the next page is not handed it.
        user = sim.gateway.gateway.directory.by_login("alice")
        assert user is not None
        deadline = time.monotonic() + 2 * BRIEF_SECONDS + 10
        while await sim.gateway.gateway.broker.acknowledged(user.id) != completion:
            assert time.monotonic() < deadline, "the late wrap-up was kept past its time"
            await asyncio.sleep(0.1)  # the gateway's position is all there is to watch
        await reload_widget(sim)
        await sim.widget.locator("#connection[data-state=open]").wait_for()
        await sim.widget.get_by_text("No call right now.").wait_for()
        assert await sim.widget.get_by_text("Save to the call").count() == 0
        await completed_once(sim, "late-same-next")


async def test_a_late_wrap_up_is_offered_again_after_a_reload_cross_site_without_storage(
    browser: Browser, brief_wrap_up: Client
) -> None:
    async with open_simulator(browser, brief_wrap_up, cross_site=True) as sim:
        assert not await sim.storage_granted()
        await left_to_the_deadline(sim, "late-cross")
        await reload_widget(sim)
        # The gateway replays the completion the page kept unacknowledged.
        card = await sim.card("Save to the call")
        assert await card.get_by_label("Notes").input_value() == ""  # nothing was typed
        await completed_once(sim, "late-cross-next")


async def test_a_tab_opened_after_the_deadline_offers_the_late_wrap_up_and_keeps_it_once_it_leads(
    browser: Browser, brief_wrap_up: Client
) -> None:
    async with open_simulator(browser, brief_wrap_up, cross_site=True) as sim:
        await left_to_the_deadline(sim, "late-tab")
        tab = await sim.another_tab()
        await tab.widget.locator("#connection[data-state=open]").wait_for()
        await tab.card("Save to the call")
        first = await sim.messages()
        # The first tab goes. The second leads now: it tells a third tab of
        # the wrap-up, and keeps it across its own reload.
        await sim.page.close()
        await tab.widget.get_by_text("Another HubSpot window logs this call").wait_for(state="hidden")
        third = await tab.another_tab()
        await third.card("Save to the call")
        await third.page.close()
        await reload_widget(tab)
        await tab.card("Save to the call")
        await feed(sim.gateway, signal("late-tab-next", "ringing"))
        await tab.from_app("INCOMING_CALL")
        assert len(completions(first)) == 1 and completions(await tab.messages()) == []


async def kept_at_gateway(gateway: Client, call_key: str, **wanted: object) -> None:
    """Until the gateway keeps alice's wrap-up of the call as ``wanted`` (the page saves it as she types)."""
    user = gateway.gateway.directory.by_login("alice")
    assert user is not None
    deadline = time.monotonic() + 10
    while True:
        held = (await gateway.gateway.broker.kept_wrap_ups(user.id)).get(call_key)
        if held is not None and all(json.loads(held).get(k) == v for k, v in wanted.items()):
            return
        assert time.monotonic() < deadline, f"the gateway never kept {wanted} for {call_key}, but {held}"
        await asyncio.sleep(0.05)  # the broker is all there is to watch


async def test_notes_typed_cross_site_without_storage_are_back_after_a_reload(
    browser: Browser, slow_wrap_up: Client
) -> None:
    async with open_simulator(browser, slow_wrap_up, cross_site=True) as sim:
        assert not await sim.storage_granted()
        await ended_call(sim, "draft-cross")
        card = await sim.card("Wrap-up")
        await card.get_by_label("Outcome").select_option(label="Connected")
        await card.get_by_label("Notes").fill("Wants the blue one")
        await kept_at_gateway(
            sim.gateway, "ingest:draft-cross", notes="Wants the blue one", outcome=CONNECTED
        )
        await reload_widget(sim)
        card = await sim.card("Wrap-up")
        assert await card.get_by_label("Notes").input_value() == "Wants the blue one"
        assert await card.get_by_label("Outcome").input_value() == CONNECTED
        await card.get_by_role("button", name="Save and log").click()
        [completed] = await sim.from_app("CALL_COMPLETED")
        assert completed["data"]["engagementProperties"]["hs_call_body"] == "Wants the blue one"


async def test_notes_typed_just_before_a_reload_cross_site_without_storage_are_back(
    browser: Browser, slow_wrap_up: Client
) -> None:
    """The page goes away before typing pauses long enough for its save: it saves them as it goes."""
    async with open_simulator(browser, slow_wrap_up, cross_site=True) as sim:
        assert not await sim.storage_granted()
        await ended_call(sim, "draft-flush")
        card = await sim.card("Wrap-up")
        await card.get_by_label("Notes").fill("Call her back at noon")
        await reload_widget(sim)
        card = await sim.card("Wrap-up")
        assert await card.get_by_label("Notes").input_value() == "Call her back at noon"


async def test_notes_of_a_late_save_the_gateway_refused_are_back_after_a_reload_cross_site(
    browser: Browser, brief_wrap_up: Client
) -> None:
    """No HubSpot connection: the gateway refuses the late save (409), and what was typed stays kept."""
    async with open_simulator(browser, brief_wrap_up, cross_site=True) as sim:
        assert not await sim.storage_granted()
        card = await left_to_the_deadline(sim, "late-refused")
        await card.get_by_label("Notes").fill("Quote sent by mail")
        await card.get_by_role("button", name="Save to the call").click()
        await sim.widget.get_by_text("not saved").wait_for()
        await reload_widget(sim)
        card = await sim.card("Save to the call")
        assert await card.get_by_label("Notes").input_value() == "Quote sent by mail"


@contextlib.asynccontextmanager
async def refused_after_saving(browser: Browser, gateway: Client) -> AsyncIterator[Simulator]:
    """Cross-site without storage: alice saves a wrap-up, HubSpot refuses it, the gateway keeps it owed."""
    async with open_simulator(browser, gateway, portal_id=DEMO_PORTAL, cross_site=True) as sim:
        assert not await sim.storage_granted()
        await sim.page.locator("#update-reply").select_option("FAILED")
        await sim.log_in("alice")
        await sim.logged_in()
        await feed(gateway, signal("owed-1", "ringing"))
        await sim.to_app("CREATE_ENGAGEMENT_SUCCEEDED")
        await feed(gateway, signal("owed-1", "ended", endStatus="NO_ANSWER"))
        card = await sim.card("Wrap-up")
        await card.get_by_label("Notes").fill("Send the contract")
        await card.get_by_role("button", name="Save and log").click()
        await sim.to_app("UPDATE_ENGAGEMENT_FAILED")
        await kept_at_gateway(gateway, "ingest:owed-1", notes="Send the contract", owed=True)
        yield sim


async def test_an_update_hubspot_refused_is_still_offered_after_a_reload_cross_site_until_saved(
    browser: Browser, tmp_path: Path
) -> None:
    async with (
        dev_gateway(tmp_path, wrap_up_seconds=60) as (gateway, _clock),
        refused_after_saving(browser, gateway) as sim,
    ):
        await reload_widget(sim)
        card = await sim.card("Save to the call")
        assert await card.get_by_label("Notes").input_value() == "Send the contract"
        await card.get_by_role("button", name="Save to the call").click()
        await sim.widget.get_by_text("saved; HubSpot shows it shortly").wait_for()
        deadline = time.monotonic() + 10
        while (
            "<td>hs_call_body</td><td>Send the contract</td>"
            not in (await gateway.http.get(MOUNT + "/")).text
        ):
            assert time.monotonic() < deadline, "the stand-in never showed the wrap-up's update"
            await asyncio.sleep(0.05)  # the stand-in's page is all there is to watch
        # Saved: the next page offers it no more.
        await reload_widget(sim)
        await sim.widget.locator("#connection[data-state=open]").wait_for()
        await sim.widget.get_by_text("No call right now.").wait_for()
        assert len(completions(await sim.messages())) == 1


async def test_an_update_hubspot_refused_is_offered_in_a_tab_opened_later_until_discarded(
    browser: Browser, tmp_path: Path
) -> None:
    async with (
        dev_gateway(tmp_path, wrap_up_seconds=60) as (gateway, _clock),
        refused_after_saving(browser, gateway) as sim,
    ):
        tab = await sim.another_tab()
        card = await tab.card("Save to the call")
        assert await card.get_by_label("Notes").input_value() == "Send the contract"
        await card.get_by_role("button", name="Discard").click()
        await tab.widget.get_by_text("discarded").wait_for()
        user = gateway.gateway.directory.by_login("alice")
        assert user is not None
        assert await gateway.gateway.broker.kept_wrap_ups(user.id) == {}
        await reload_widget(tab)
        await tab.widget.get_by_text("No call right now.").wait_for()


@pytest.mark.parametrize(("button", "method"), [("Save to the call", "POST"), ("Discard", "DELETE")])
async def test_a_wrap_up_saved_or_discarded_as_the_page_goes_away_is_not_kept_again(
    browser: Browser, tmp_path: Path, button: str, method: str
) -> None:
    async with (
        dev_gateway(tmp_path, wrap_up_seconds=60) as (gateway, _clock),
        refused_after_saving(browser, gateway) as sim,
    ):
        # The gateway does what the button asks; its answer reaches the page
        # only once the page is gone.
        done, gone = asyncio.Event(), asyncio.Event()

        async def answer_late(route: Route) -> None:
            if route.request.method != method:
                await route.continue_()
                return
            answer = await route.fetch()
            done.set()
            await gone.wait()
            with contextlib.suppress(PlaywrightError):  # the frame that asked is gone
                await route.fulfill(response=answer)

        await sim.context.route(re.compile(r"/api/calls/[^/]+/wrap-up"), answer_late)
        card = await sim.card("Save to the call")
        await card.get_by_label("Notes").fill("Send the contract today")
        await card.get_by_role("button", name=button).click()
        await asyncio.wait_for(done.wait(), 10)
        # Gone before the typing paused long enough for a save of its own.
        await reload_widget(sim)
        gone.set()
        await sim.widget.locator("#connection[data-state=open]").wait_for()
        await sim.widget.get_by_text("No call right now.").wait_for()
        user = gateway.gateway.directory.by_login("alice")
        assert user is not None
        assert await gateway.gateway.broker.kept_wrap_ups(user.id) == {}
