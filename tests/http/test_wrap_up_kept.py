"""The wrap-up kept for the page at the gateway: ``PUT``/``DELETE /api/calls/{id}/wrap-up/kept``
and ``GET /api/wrap-up/kept`` (docs/page.md#wrap-up)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.calllog.properties import NOTES_MAX_CHARS
from tests.support.harness import Client, signal
from tests.support.hubspot import dev_gateway

KEPT = "/api/calls/ingest:k1/wrap-up/kept"


async def alice(gateway: Client) -> dict[str, str]:
    """Alice signed in, with a call that rang (ingest:k1)."""
    assert (await gateway.ingest(signal("k1", "ringing"))).status_code == 202
    return {"authorization": f"Bearer {await gateway.login('alice')}"}


async def kept(gateway: Client, bearer: dict[str, str]) -> list[dict[str, Any]]:
    answer = await gateway.http.get("/api/wrap-up/kept", headers=bearer)
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["wrapUps"]
    return found


async def test_a_kept_draft_is_read_back_by_the_next_page_with_its_call(gateway: Client) -> None:
    bearer = await alice(gateway)
    answer = await gateway.http.put(
        KEPT, json={"notes": "Wants a quote\nby Friday", "outcome": "x"}, headers=bearer
    )
    assert answer.status_code == 204
    [found] = await kept(gateway, bearer)
    assert {k: found[k] for k in ("externalCallId", "notes", "outcome", "owed")} == {
        "externalCallId": "ingest:k1",
        "notes": "Wants a quote\nby Friday",
        "outcome": "x",
        "owed": False,
    }
    assert found["call"]["externalCallId"] == "ingest:k1"  # what the card shows


async def test_an_owed_wrap_up_stays_owed_when_its_notes_are_saved_again(gateway: Client) -> None:
    bearer = await alice(gateway)
    await gateway.http.put(KEPT, json={"notes": "first", "owed": True}, headers=bearer)
    await gateway.http.put(KEPT, json={"notes": "first, then more"}, headers=bearer)
    [found] = await kept(gateway, bearer)
    assert (found["notes"], found["owed"]) == ("first, then more", True)


async def test_a_discarded_wrap_up_is_kept_no_longer(gateway: Client) -> None:
    bearer = await alice(gateway)
    await gateway.http.put(KEPT, json={"notes": "never mind", "owed": True}, headers=bearer)
    assert (await gateway.http.delete(KEPT, headers=bearer)).status_code == 204
    assert await kept(gateway, bearer) == []


async def test_notes_longer_than_an_update_takes_are_refused_with_422(gateway: Client) -> None:
    bearer = await alice(gateway)
    answer = await gateway.http.put(KEPT, json={"notes": "n" * (NOTES_MAX_CHARS + 1)}, headers=bearer)
    assert answer.status_code == 422
    assert answer.json()["error"] == f"notes is longer than {NOTES_MAX_CHARS} characters"
    assert await kept(gateway, bearer) == []


async def test_notes_of_the_longest_length_are_kept(gateway: Client) -> None:
    bearer = await alice(gateway)
    notes = "\u00e9" * NOTES_MAX_CHARS  # two bytes each in UTF-8
    assert (await gateway.http.put(KEPT, json={"notes": notes}, headers=bearer)).status_code == 204
    assert (await kept(gateway, bearer))[0]["notes"] == notes


async def test_a_body_too_large_for_any_wrap_up_is_refused_with_413(gateway: Client) -> None:
    bearer = await alice(gateway)
    body = b'{"notes": "' + b"n" * (NOTES_MAX_CHARS * 6 + 2048) + b'"}'
    answer = await gateway.http.put(
        KEPT, content=body, headers={**bearer, "content-type": "application/json"}
    )
    assert answer.status_code == 413


async def test_a_body_that_is_not_json_is_refused_with_400(gateway: Client) -> None:
    bearer = await alice(gateway)
    answer = await gateway.http.put(
        KEPT, content=b"{notes", headers={**bearer, "content-type": "application/json"}
    )
    assert answer.status_code == 400
    assert answer.json()["error"].startswith("body is not JSON")


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"notes": 5}, "notes must be a string"),
        ({"outcome": ["x"]}, "outcome must be a string"),
        ({"outcome": "o" * 101}, "outcome is longer than 100 characters"),
        ({"notes": "x", "owed": "yes"}, "owed must be true or false"),
    ],
)
async def test_a_bad_field_is_refused_with_422(gateway: Client, body: dict[str, Any], error: str) -> None:
    bearer = await alice(gateway)
    answer = await gateway.http.put(KEPT, json=body, headers=bearer)
    assert (answer.status_code, answer.json()["error"]) == (422, error)


async def test_a_body_that_is_not_an_object_is_refused_with_422(gateway: Client) -> None:
    bearer = await alice(gateway)
    answer = await gateway.http.put(KEPT, json=["notes"], headers=bearer)
    assert (answer.status_code, answer.json()["error"]) == (422, "body must be a JSON object")


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_an_unknown_call_is_refused_with_404(gateway: Client, method: str) -> None:
    bearer = await alice(gateway)
    path = "/api/calls/ingest:nobody/wrap-up/kept"
    answer = await gateway.http.request(method, path, json={"notes": "x"}, headers=bearer)
    assert (answer.status_code, answer.json()["error"]) == (404, "no call ingest:nobody for this user")


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_another_users_call_is_refused_with_404_and_left_alone(gateway: Client, method: str) -> None:
    assert (await gateway.ingest(signal("b1", "ringing", user="bob"))).status_code == 202
    bob = {"authorization": f"Bearer {await gateway.login('bob')}"}
    path = "/api/calls/ingest:b1/wrap-up/kept"
    assert (await gateway.http.put(path, json={"notes": "bob's"}, headers=bob)).status_code == 204
    bearer = await alice(gateway)
    answer = await gateway.http.request(method, path, json={"notes": "alice's"}, headers=bearer)
    assert answer.status_code == 404
    assert [w["notes"] for w in await kept(gateway, bob)] == ["bob's"]
    assert await kept(gateway, bearer) == []


@pytest.mark.parametrize(("method", "path"), [("GET", "/api/wrap-up/kept"), ("PUT", KEPT), ("DELETE", KEPT)])
async def test_the_kept_wrap_up_needs_a_session(gateway: Client, method: str, path: str) -> None:
    answer = await gateway.http.request(method, path, json={"notes": "x"})
    assert answer.status_code == 401


async def test_a_wrap_up_saved_through_the_gateway_is_kept_no_longer(tmp_path: Path) -> None:
    async with dev_gateway(tmp_path) as (gateway, _clock):
        bearer = await alice(gateway)
        engagement = await gateway.http.post(
            "/api/calls/ingest:k1/engagement", json={"engagementId": 4711}, headers=bearer
        )
        assert engagement.status_code == 200, engagement.text
        await gateway.http.put(KEPT, json={"notes": "owed", "owed": True}, headers=bearer)
        saved = await gateway.http.post(
            "/api/calls/ingest:k1/wrap-up", json={"notes": "owed"}, headers=bearer
        )
        assert saved.status_code == 202, saved.text
        assert await kept(gateway, bearer) == []


async def test_a_late_wrap_up_with_notes_past_four_kilobytes_is_taken(tmp_path: Path) -> None:
    async with dev_gateway(tmp_path) as (gateway, _clock):
        bearer = await alice(gateway)
        await gateway.http.post(
            "/api/calls/ingest:k1/engagement", json={"engagementId": 4712}, headers=bearer
        )
        notes = "n" * 5000
        saved = await gateway.http.post("/api/calls/ingest:k1/wrap-up", json={"notes": notes}, headers=bearer)
        assert saved.status_code == 202, saved.text
