"""Another user never resumes from the last session's place in the stream; the same
user signing in again resumes from where the pages left off, losing nothing."""

from __future__ import annotations

import pytest
from playwright.async_api import Request

from gateway.auth.tokens import TokenSigner
from tests.support.browser import Simulator
from tests.support.harness import signal

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


def is_stream(request: Request) -> bool:
    return "/api/stream?" in request.url


async def alice_had_a_call(sim: Simulator) -> None:
    """Alice signs in and receives a call: the page now has a place in her stream."""
    await sim.log_in("alice")
    await sim.logged_in()
    response = await sim.gateway.ingest(signal("before-1", "ringing"))
    assert response.status_code == 202
    await sim.from_app("INCOMING_CALL")


async def next_stream_url(sim: Simulator, login: str) -> str:
    async with sim.page.expect_request(is_stream) as opened:
        await sim.log_in(login)
    await sim.logged_in()
    return (await opened.value).url


async def test_another_hubspot_user_signs_in_on_a_fresh_stream(simulator: Simulator) -> None:
    sim = simulator
    await alice_had_a_call(sim)
    # HubSpot now says bob (502) is looking: alice's session is not restored.
    await sim.page.get_by_label("HubSpot user id").fill("502")
    await sim.page.get_by_role("button", name="Reload iframe").click()
    await sim.from_app("SYNC_ACK", 2)
    assert (await sim.from_app("INITIALIZED", 2))[1]["data"] == {"isLoggedIn": False}

    url = await next_stream_url(sim, "bob")
    assert "ticket=" in url
    assert "lastEventId=" not in url


async def rang_while_signed_out(sim: Simulator) -> None:
    """A call rings while nobody is signed in; signing in again delivers it, once."""
    response = await sim.gateway.ingest(signal("meanwhile-1", "ringing"))
    assert response.status_code == 202
    url = await next_stream_url(sim, "alice")
    assert "lastEventId=" in url
    incoming = await sim.from_app("INCOMING_CALL", 2)
    assert [m["data"]["externalCallId"] for m in incoming] == ["ingest:before-1", "ingest:meanwhile-1"]
    # Something later, so that a replayed INCOMING_CALL would be in by now.
    await sim.gateway.ingest(signal("meanwhile-1", "answered"))
    await sim.from_app("CALL_ANSWERED")
    assert len(await sim.from_app("INCOMING_CALL")) == 2


async def test_signing_in_after_the_session_ended_resumes_and_delivers_what_rang_meanwhile(
    simulator: Simulator,
) -> None:
    sim = simulator
    await alice_had_a_call(sim)
    # The gateway's secret changes: alice's token is refused from now on, and
    # the page learns it when it asks for a ticket to reopen its stream.
    sim.gateway.gateway.signer = TokenSigner("a-rotated-secret")
    sim.gateway.gateway.broker.close_streams("test")
    await sim.from_app("LOGGED_OUT")
    await sim.widget.get_by_role("alert").get_by_text("Your session ended").wait_for()
    await rang_while_signed_out(sim)


async def test_signing_in_after_signing_out_resumes_and_delivers_what_rang_meanwhile(
    simulator: Simulator,
) -> None:
    sim = simulator
    await alice_had_a_call(sim)
    await sim.widget.get_by_role("button", name="Sign out").click()
    await sim.from_app("LOGGED_OUT")
    await rang_while_signed_out(sim)
