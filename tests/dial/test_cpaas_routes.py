"""Click-to-dial through Twilio, Telnyx and Vonage, against local stand-ins of their APIs.

The whole loop runs: POST /api/dial → the route's create-call request
(checked by the stand-in for its documented shape and credentials) → the
user's phone rings → the user answers → the number rings → it answers, is
busy or is not answered → the signed status webhooks reach the gateway and
join the dialled call exactly. On the user's stream: one call, one
``externalCallId``, no second ``outgoingCall``, the end status from what
happened.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.dial_loop import ALICE_PHONE, TARGET, dial_and_watch, dial_loop, summary
from tests.support.standin import Script


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


@pytest.mark.parametrize("user_end_first", [False, True], ids=["target-ends-first", "user-ends-first"])
@pytest.mark.parametrize(("target", "status"), [("busy", "BUSY"), ("no-answer", "NO_ANSWER")])
async def test_the_number_busy_or_unanswered_ends_the_call_so_whichever_leg_reports_first(
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
