"""POST /api/dial: 202 with the call, or a precise refusal (one sentence, a status)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.dial import demo
from tests.support.harness import Client, make_settings, running_gateway


@pytest.fixture(autouse=True)
def quick_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "DIAL_TIMING", {"ring": 0.05, "talk": 0.05, "no_answer": 0.05})


@contextlib.asynccontextmanager
async def dialling(
    tmp_path: Path, dev: bool = True, **tenant: Any
) -> AsyncIterator[tuple[Client, dict[str, str]]]:
    extra = {"dial": {"100": {"route": "demo", **tenant}}}
    async with running_gateway(make_settings(tmp_path, dev=dev, extra=extra)) as gw:
        yield gw, {"authorization": f"Bearer {await gw.login('alice')}"}


async def test_a_dial_answers_202_with_the_call_whose_events_come_through_the_stream(tmp_path: Path) -> None:
    async with dialling(tmp_path) as (gw, auth), gw.stream(auth["authorization"][7:]) as stream:
        response = await gw.http.post("/api/dial", json={"number": "(212) 555-0100"}, headers=auth)
        events = await stream.take(4)
    assert response.status_code == 202
    body = response.json()
    assert body == {
        "externalCallId": body["externalCallId"],
        "number": "+12125550100",
        "callerId": "+15555550101",
    }
    assert [e.json["type"] for e in events] == ["outgoingCall", "callAnswered", "callEnded", "callCompleted"]
    assert {e.json["externalCallId"] for e in events} == {body["externalCallId"]}
    started = events[0].json["payload"]
    assert (started["fromNumber"], started["toNumber"], started["createEngagement"]) == (
        "+15555550101",
        "+12125550100",
        True,
    )


async def test_a_retried_request_gets_the_same_call(tmp_path: Path) -> None:
    async with dialling(tmp_path) as (gw, auth):
        body = {"number": "+12125550100", "idempotencyKey": "click-7"}
        first = await gw.http.post("/api/dial", json=body, headers=auth)
        again = await gw.http.post("/api/dial", json=body, headers=auth)
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (
            {"number": "+1 900 555 0100"},
            403,
            "+19005550100 is a premium-rate number, which your portal may not dial",
        ),
        (
            {"number": "+49 30 123456"},
            403,
            "+4930123456 is outside US, and your portal may not dial other countries",
        ),
        ({"number": "555-0100"}, 422, "'555-0100' is not a phone number that can be dialled"),
        ({"number": "+999 123 456"}, 422, "'+999 123 456' is not a phone number that can be dialled"),
        ({"number": ""}, 422, "number is required"),
        ({"number": 5551234}, 422, "number is required"),
        ({"number": "1" * 65}, 422, "number must be at most 64 characters"),
        (
            {"number": "+12125550100", "callerId": "1" * 65},
            422,
            "callerId must be a phone number of at most 64 characters",
        ),
        ({"number": "+12125550100", "idempotencyKey": "a b"}, 422, "idempotencyKey must be 1-128 of"),
        (
            {"number": "+12125550100", "callerId": "+15555550177"},
            403,
            "'+15555550177' is not one of your own",
        ),
    ],
)
async def test_refusals_are_one_sentence_with_a_precise_status(
    tmp_path: Path, body: dict[str, Any], status: int, error: str
) -> None:
    async with dialling(tmp_path) as (gw, auth):
        response = await gw.http.post("/api/dial", json=body, headers=auth)
    assert response.status_code == status
    assert response.json()["error"].startswith(error)


async def test_a_number_outside_the_allow_list_is_refused(tmp_path: Path) -> None:
    async with dialling(tmp_path, allow=["+1212"]) as (gw, auth):
        response = await gw.http.post("/api/dial", json={"number": "+13125550100"}, headers=auth)
    assert response.status_code == 403
    assert response.json() == {"error": "+13125550100 is not among the numbers your portal may dial"}


async def test_past_the_rate_limit_the_answer_is_429_with_retry_after(tmp_path: Path) -> None:
    async with dialling(tmp_path, max_dials=1, per_seconds=30) as (gw, auth):
        assert (
            await gw.http.post("/api/dial", json={"number": "+12125550100"}, headers=auth)
        ).status_code == 202
        response = await gw.http.post("/api/dial", json={"number": "+12125550100"}, headers=auth)
    assert response.status_code == 429
    assert 1 <= int(response.headers["retry-after"]) <= 30
    assert response.json()["error"].startswith("you dialled 1 times in 30 seconds; try again in")


async def test_a_route_that_is_not_offered_here_is_refused_with_409(tmp_path: Path) -> None:
    async with dialling(tmp_path, dev=False) as (gw, auth):
        response = await gw.http.post("/api/dial", json={"number": "+12125550100"}, headers=auth)
    assert response.status_code == 409
    assert response.json() == {
        "error": "the dialling route 'demo' of HubSpot portal 100 is not available on this gateway"
    }


async def test_a_refused_originate_answers_502_and_ends_the_call_failed(tmp_path: Path) -> None:
    async with dialling(tmp_path) as (gw, auth), gw.stream(auth["authorization"][7:]) as stream:
        response = await gw.http.post("/api/dial", json={"number": demo.DEMO_REFUSED}, headers=auth)
        events = await stream.take(3)
        metrics = (await gw.http.get("/metrics")).text
    assert response.status_code == 502
    assert response.json() == {"error": f"the demo exchange refused the call to {demo.DEMO_REFUSED}"}
    assert [e.json["type"] for e in events] == ["outgoingCall", "callEnded", "callCompleted"]
    assert events[1].json["payload"]["callEndStatus"] == "FAILED"
    assert 'gateway_dials_total{outcome="route-refused",route="demo"} 1.0' in metrics


async def test_dialling_needs_a_session(tmp_path: Path) -> None:
    async with dialling(tmp_path) as (gw, _):
        response = await gw.http.post("/api/dial", json={"number": "+12125550100"})
    assert response.status_code == 401
