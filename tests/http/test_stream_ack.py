"""What the pages report about passing events on: claims and the acknowledged position.

Both brokers keep them; with Redis, every instance sees the same.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.harness import Client, make_settings, running_gateway
from tests.support.servers import RedisServer


@contextlib.asynccontextmanager
async def gateways(
    tmp_path: Path, broker: str, redis_server: RedisServer | None
) -> AsyncIterator[list[Client]]:
    """One gateway with the memory broker, or two sharing one Redis."""
    if broker == "memory":
        async with running_gateway(make_settings(tmp_path)) as one:
            yield [one]
        return
    assert redis_server is not None
    settings = make_settings(tmp_path, redis_url=redis_server.url)
    async with running_gateway(settings) as one, running_gateway(settings) as two:
        await one.until_ready()
        await two.until_ready()
        yield [one, two]


@pytest.fixture(params=["memory", "redis"])
async def clients(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[list[Client]]:
    redis_server = request.getfixturevalue("redis_server") if request.param == "redis" else None
    async with gateways(tmp_path, request.param, redis_server) as found:
        yield found


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_only_the_first_page_to_claim_an_event_passes_it_on(clients: list[Client]) -> None:
    one, other = clients[0], clients[-1]
    token = await one.login("alice")
    first = await one.http.post(
        "/api/stream/claim", json={"eventId": "1700000000000-1"}, headers=bearer(token)
    )
    again = await other.http.post(
        "/api/stream/claim", json={"eventId": "1700000000000-1"}, headers=bearer(token)
    )
    assert (first.status_code, first.json()) == (200, {"deliver": True})
    assert (again.status_code, again.json()) == (200, {"deliver": False})


async def test_claims_are_kept_per_user(clients: list[Client]) -> None:
    one = clients[0]
    alice, bob = await one.login("alice"), await one.login("bob")
    body = {"eventId": "1700000000000-2"}
    assert (await one.http.post("/api/stream/claim", json=body, headers=bearer(alice))).json()["deliver"]
    assert (await one.http.post("/api/stream/claim", json=body, headers=bearer(bob))).json()["deliver"]


async def test_the_acknowledged_position_only_moves_forward(clients: list[Client]) -> None:
    one, other = clients[0], clients[-1]
    token = await one.login("alice")
    assert (await one.http.get("/api/stream/ack", headers=bearer(token))).json() == {"lastEventId": None}

    for position, held in [("1700000000000-5", "1700000000000-5"), ("1700000000000-3", "1700000000000-5")]:
        answer = await one.http.post("/api/stream/ack", json={"lastEventId": position}, headers=bearer(token))
        assert answer.json() == {"lastEventId": held}
    # A later millisecond beats a larger sequence number.
    answer = await other.http.post(
        "/api/stream/ack", json={"lastEventId": "1700000000001-0"}, headers=bearer(token)
    )
    assert answer.json() == {"lastEventId": "1700000000001-0"}
    assert (await other.http.get("/api/stream/ack", headers=bearer(token))).json() == {
        "lastEventId": "1700000000001-0"
    }
    bob = await one.login("bob")
    assert (await one.http.get("/api/stream/ack", headers=bearer(bob))).json() == {"lastEventId": None}


@pytest.mark.parametrize("broker", ["memory"])
@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("/api/stream/claim", {"eventId": "not-an-id"}),
        ("/api/stream/claim", {}),
        ("/api/stream/ack", {"lastEventId": 17}),
        ("/api/stream/ack", {"lastEventId": "1-2-3"}),
    ],
)
async def test_what_is_no_event_id_is_refused_with_a_sentence(
    tmp_path: Path, broker: str, route: str, body: dict[str, object]
) -> None:
    async with gateways(tmp_path, broker, None) as (one,):
        token = await one.login("alice")
        answer = await one.http.post(route, json=body, headers=bearer(token))
        assert answer.status_code == 422
        assert "must be an event id" in answer.json()["error"]


@pytest.mark.parametrize("broker", ["memory"])
@pytest.mark.parametrize(
    ("method", "route"),
    [("POST", "/api/stream/claim"), ("POST", "/api/stream/ack"), ("GET", "/api/stream/ack")],
)
async def test_claims_and_acknowledgements_need_a_session(
    tmp_path: Path, broker: str, method: str, route: str
) -> None:
    async with gateways(tmp_path, broker, None) as (one,):
        answer = await one.http.request(method, route, json={"eventId": "1-1", "lastEventId": "1-1"})
        assert answer.status_code == 401
