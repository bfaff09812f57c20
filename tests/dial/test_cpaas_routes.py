"""Click-to-dial through Twilio, Telnyx and Vonage, against local stand-ins of their APIs.

The whole loop runs: POST /api/dial → the route's create-call request
(checked by the stand-in for its documented shape and credentials) → the
user's phone rings → the user answers → the number rings → it answers, is
busy, is not answered, fails, or rings until the user hangs up → the
signed status webhooks reach the gateway and join the dialled call
exactly. On the user's stream: one call, one ``externalCallId``, no second
``outgoingCall``, the end status from what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.dial_loop import ALICE_PHONE, TARGET, Loop, dial_and_watch, dial_loop
from tests.support.sse import SseEvent, summary
from tests.support.standin import Script
from tests.webhooks.test_end_to_end import post, ringing


async def test_the_user_answers_then_the_number_and_it_is_one_call_to_its_completion(
    tmp_path: Path, provider: str
) -> None:
    async with dial_loop(tmp_path, provider) as loop:
        response, events = await dial_and_watch(loop, 4)
    assert response.status_code == 202
    call = response.json()["externalCallId"]
    assert summary(events) == ["outgoingCall", "callAnswered", "callEnded:COMPLETED", "callCompleted"]
    assert {e.json["externalCallId"] for e in events} == {call}
    started = events[0].json["payload"]
    assert (started["fromNumber"], started["toNumber"]) == (ALICE_PHONE, TARGET)
    properties = events[3].json["payload"]["engagementProperties"]
    assert (properties["hs_call_to_number"], properties["hs_call_status"]) == (TARGET, "COMPLETED")


@pytest.mark.parametrize(
    ("user", "seen"),
    [
        ("answer", ["outgoingCall", "callAnswered", "callEnded:COMPLETED", "callCompleted"]),
        ("no-answer", ["outgoingCall", "callEnded:CANCELED", "callCompleted"]),
    ],
    ids=["user-answers", "user-never-picks-up"],
)
async def test_webhooks_reaching_the_gateway_before_the_providers_answer_join_the_dialled_call(
    tmp_path: Path, provider: str, user: str, seen: list[str]
) -> None:
    async with dial_loop(tmp_path, provider) as loop:
        loop.api.report_first = True
        loop.api.scripts[TARGET] = Script(user=user)
        response, events = await dial_and_watch(loop, len(seen))
    assert response.status_code == 202
    assert summary(events) == seen
    assert {e.json["externalCallId"] for e in events} == {response.json()["externalCallId"]}


@pytest.mark.parametrize("user_end_first", [False, True], ids=["target-ends-first", "user-ends-first"])
@pytest.mark.parametrize(
    ("target", "status"),
    [("busy", "BUSY"), ("no-answer", "NO_ANSWER"), ("canceled", "CANCELED"), ("failed", "FAILED")],
    ids=["number-busy", "number-not-answering", "user-hangs-up-while-it-rings", "number-failing"],
)
async def test_the_number_not_answering_ends_the_call_as_it_happened_whichever_leg_reports_first(
    tmp_path: Path, provider: str, target: str, status: str, user_end_first: bool
) -> None:
    async with dial_loop(tmp_path, provider) as loop:
        loop.api.scripts[TARGET] = Script(target=target, user_end_first=user_end_first)
        _, events = await dial_and_watch(loop, 3)
    assert summary(events) == ["outgoingCall", f"callEnded:{status}", "callCompleted"]


@pytest.mark.parametrize("user", ["no-answer", "busy"])
async def test_the_user_never_picking_up_their_own_phone_cancels_the_call(
    tmp_path: Path, provider: str, user: str
) -> None:
    async with dial_loop(tmp_path, provider) as loop:
        loop.api.scripts[TARGET] = Script(user=user)
        _, events = await dial_and_watch(loop, 3)
    assert summary(events) == ["outgoingCall", "callEnded:CANCELED", "callCompleted"]


async def test_wrong_credentials_fail_the_dial_with_one_sentence(tmp_path: Path, provider: str) -> None:
    async with dial_loop(tmp_path, provider, wrong_credentials=True) as loop:
        response, events = await dial_and_watch(loop, 3)
    assert response.status_code == 502
    assert "refused the gateway's credentials (401)" in response.json()["error"]
    assert summary(events) == ["outgoingCall", "callEnded:FAILED", "callCompleted"]
    assert loop.api.requests == [] and loop.api.delivered == []


@pytest.mark.parametrize(
    ("api", "status", "said"),
    [
        ("invalid", 502, "refused the call (4"),
        (429, 503, "is limiting the rate of calls (429)"),
        (500, 502, "refused the call (500"),
        (503, 502, "refused the call (503"),
        ("slow", 504, "did not answer in time"),
    ],
)
async def test_a_refused_or_unanswered_create_call_fails_the_dial(
    tmp_path: Path, provider: str, api: int | str, status: int, said: str
) -> None:
    async with dial_loop(tmp_path, provider) as loop:
        loop.api.scripts[TARGET] = Script(api=api)
        response, events = await dial_and_watch(loop, 3)
    assert response.status_code == status
    assert said in response.json()["error"]
    assert summary(events) == ["outgoingCall", "callEnded:FAILED", "callCompleted"]


async def test_a_call_the_provider_places_after_the_dial_timed_out_is_hung_up_before_the_number_is_called(
    tmp_path: Path, provider: str
) -> None:
    async with dial_loop(tmp_path, provider) as loop:
        # The provider answers the create-call request after the gateway gave up,
        # and rings the user all the same (Telnyx: the user even answers).
        loop.api.scripts[TARGET] = Script(api="slow")
        response, events = await dial_and_watch(loop, 3)
        hung_up, delivered = loop.api.hung_up, loop.api.delivered
    assert response.status_code == 504
    assert summary(events) == ["outgoingCall", "callEnded:FAILED", "callCompleted"]
    assert len(hung_up) == 1
    assert [d.url for d in delivered if "leg=target" in d.url] == []


def late_call_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The log lines about late calls, with their level."""
    return [f"{r.levelname} {r.getMessage()}" for r in caplog.records if "late call" in r.getMessage()]


@contextlib.asynccontextmanager
async def late_dial(
    tmp_path: Path, provider: str, caplog: pytest.LogCaptureFixture, *, over_before_hang_up: bool = False
) -> AsyncIterator[tuple[Loop, Any, list[SseEvent]]]:
    """A dial the provider answered too late, then placed all the same: the loop, the answer, the events."""
    caplog.set_level(logging.INFO, "gateway.dial")
    async with dial_loop(tmp_path, provider) as loop:
        loop.api.scripts[TARGET] = Script(api="slow")
        loop.api.over_before_hang_up = over_before_hang_up
        response, events = await dial_and_watch(loop, 3)
        assert response.status_code == 504
        assert summary(events) == ["outgoingCall", "callEnded:FAILED", "callCompleted"]
        yield loop, response, events


@pytest.mark.parametrize("provider", ["twilio", "vonage"])
async def test_a_late_call_reported_again_is_hung_up_once(
    tmp_path: Path, provider: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with late_dial(tmp_path, provider, caplog) as (loop, _, _):
        (first, *_) = [d for d in loop.api.delivered if "leg=user" in d.url]
        # Its webhook again, twice at once (a redelivery racing another webhook).
        again = [loop.api.deliver(first.url, first.sent, first.headers) for _ in range(2)]
        answers = await asyncio.gather(*again)
    assert [a.status for a in answers] == [200, 200]
    assert len(loop.api.hung_up) == 1
    (line,) = late_call_lines(caplog)
    assert re.fullmatch(rf"INFO {provider.title()}: the late call of dial [0-9a-f]+ hung up", line), line


@pytest.mark.parametrize("provider", ["twilio", "vonage"])
async def test_a_late_call_the_provider_says_was_over_already_is_done_with_an_info_line(
    tmp_path: Path, provider: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with late_dial(tmp_path, provider, caplog, over_before_hang_up=True) as (loop, _, _):
        asked = list(loop.api.hung_up)
    assert len(asked) == 1
    status = 404 if provider == "vonage" else 400  # what each documents for a call no longer in progress
    (line,) = late_call_lines(caplog)
    said = rf"INFO {provider.title()}: the late call of dial [0-9a-f]+ was over already \({status}\)"
    assert re.fullmatch(said, line), line


async def test_a_dial_while_another_call_rings_the_user_is_a_call_of_its_own(
    tmp_path: Path, provider: str
) -> None:
    async with dial_loop(tmp_path, provider) as loop, loop.gw.stream(loop.token) as stream:
        ring = await post(loop.gw, provider, ringing(provider, "other-1"))
        first = await stream.next()
        response = await loop.gw.http.post("/api/dial", json={"number": TARGET}, headers=loop.auth)
        dialled = await stream.take(4)
        await loop.api.idle()
        assert stream.drain() == []
    assert ring.status_code == 200
    assert (first.json["type"], first.json["externalCallId"]) == ("incomingCall", f"{provider}:other-1")
    assert summary(dialled) == ["outgoingCall", "callAnswered", "callEnded:COMPLETED", "callCompleted"]
    assert {e.json["externalCallId"] for e in dialled} == {response.json()["externalCallId"]}


async def test_a_retried_dial_request_asks_the_provider_once_and_is_one_call(
    tmp_path: Path, provider: str
) -> None:
    body = {"number": TARGET, "idempotencyKey": "click-1"}
    async with dial_loop(tmp_path, provider) as loop, loop.gw.stream(loop.token) as stream:
        first = await loop.gw.http.post("/api/dial", json=body, headers=loop.auth)
        events = await stream.take(4)
        again = await loop.gw.http.post("/api/dial", json=body, headers=loop.auth)
        await loop.api.idle()
        assert stream.drain() == []
        requests = len(loop.api.requests)
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert requests == 1
    assert summary(events) == ["outgoingCall", "callAnswered", "callEnded:COMPLETED", "callCompleted"]
