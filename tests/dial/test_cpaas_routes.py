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

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.cpaas import webhook_settings
from tests.support.harness import Client, make_settings, running_gateway
from tests.support.sse import SseEvent
from tests.support.standin import Script, StandIn
from tests.support.twilio_api import TwilioApi

TARGET = "+12125550100"
ALICE_PHONE = "+15555550101"


@dataclass
class Loop:
    gw: Client
    api: StandIn
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}


def twilio_settings(api: StandIn, url: str, wrong: bool) -> dict[str, Any]:
    assert isinstance(api, TwilioApi)
    return {
        "twilio_account_sid": api.account_sid,
        "twilio_api_url": url,
        **({"twilio_auth_token": "f" * 32} if wrong else {}),
    }


PROVIDERS: dict[str, tuple[Callable[[], StandIn], Callable[[StandIn, str, bool], dict[str, Any]]]] = {
    "twilio": (TwilioApi, twilio_settings),
}


@pytest.fixture(params=sorted(PROVIDERS))
def provider(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@contextlib.asynccontextmanager
async def dial_loop(tmp_path: Path, provider: str, *, wrong_credentials: bool = False) -> AsyncIterator[Loop]:
    make_api, route_settings = PROVIDERS[provider]
    api = make_api()
    async with api.running() as url:
        settings = make_settings(
            tmp_path,
            **{**webhook_settings(), **route_settings(api, url, wrong_credentials)},
            dial_api_timeout_seconds=1.0,
            extra={"dial": {"100": {"route": provider}}},
        )
        async with running_gateway(settings) as gw:
            api.gateway_url = gw.base_url
            yield Loop(gw, api, await gw.login("alice"))


def summary(events: list[SseEvent]) -> list[str]:
    out = []
    for event in events:
        status = event.json["payload"].get("callEndStatus")
        out.append(f"{event.json['type']}:{status}" if status else event.json["type"])
    return out


async def dial_and_watch(loop: Loop, count: int, number: str = TARGET) -> tuple[Any, list[SseEvent]]:
    """Dial, take ``count`` events, let the provider finish the call; nothing more may come."""
    async with loop.gw.stream(loop.token) as stream:
        response = await loop.gw.http.post("/api/dial", json={"number": number}, headers=loop.auth)
        events = await stream.take(count)
        await loop.api.idle()
        assert stream.drain() == []
    assert [d.status for d in loop.api.delivered] == [200] * len(loop.api.delivered)
    return response, events


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
