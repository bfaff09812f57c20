"""Call logging in the running gateway: its state in the API, and the widget kept from a second engagement.

Served by uvicorn on loopback, on the memory broker and on Redis; the
grace period is 0, so a call is logged as soon as it ends, and the tests
await HubSpot's side seeing it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.assemble import build_gateway
from tests.support.crm_records import InMemoryCallRecords
from tests.support.harness import Client, make_settings, running_gateway, signal
from tests.support.servers import RedisServer


@contextlib.asynccontextmanager
async def logging_gateway(
    tmp_path: Path, records: InMemoryCallRecords, redis_url: str | None = None
) -> AsyncIterator[Client]:
    hubspot = {"log_grace_seconds": 0, "app_id": 4242, "outbox_file": str(tmp_path / "outbox.sqlite3")}
    settings = make_settings(tmp_path, redis_url=redis_url, extra={"hubspot": hubspot})
    async with running_gateway(settings, call_records=records) as client:
        yield client


@pytest.fixture(params=["memory", "redis"])
async def records_and_gateway(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[InMemoryCallRecords, Client]]:
    records = InMemoryCallRecords()
    redis_url = None
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        redis_url = server.url
    async with logging_gateway(tmp_path, records, redis_url) as client:
        yield records, client


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def ended_call(client: Client, records: InMemoryCallRecords) -> list[str]:
    """A call rings, is answered, ends, and the gateway logs it; the ids of its events."""
    response = await client.ingest(
        {"signals": [signal("c1", "ringing"), signal("c1", "answered"), signal("c1", "ended")]}
    )
    assert response.status_code == 202, response.text
    await records.until(lambda: len(records.created()) == 1)
    # The engagement is kept with the call just after HubSpot answered the
    # create; that is only observable through the API.
    token = await client.login("alice")
    for _ in range(250):
        shown = (await client.http.get("/api/calls/ingest:c1", headers=bearer(token))).json()
        if shown["engagementId"] is not None:
            break
        await asyncio.sleep(0.02)
    event_ids: list[str] = response.json()["events"]
    return event_ids


async def test_the_call_shows_that_the_gateway_logged_it(
    records_and_gateway: tuple[InMemoryCallRecords, Client],
) -> None:
    records, client = records_and_gateway
    await ended_call(client, records)
    token = await client.login("alice")
    shown = (await client.http.get("/api/calls/ingest:c1", headers=bearer(token))).json()
    assert shown["loggedBy"] == "gateway"
    assert str(shown["engagementId"]) in records.calls


async def test_a_page_that_opens_later_passes_none_of_the_calls_events_on(
    records_and_gateway: tuple[InMemoryCallRecords, Client],
) -> None:
    records, client = records_and_gateway
    event_ids = await ended_call(client, records)
    token = await client.login("alice")
    answers = [
        (await client.http.post("/api/stream/claim", json={"eventId": e}, headers=bearer(token))).json()
        for e in event_ids
    ]
    assert answers == [{"deliver": False, "loggedBy": "gateway"}] * len(event_ids)
    assert len(records.created()) == 1


async def test_an_engagement_the_widget_reports_after_the_gateway_logged_the_call_is_refused(
    records_and_gateway: tuple[InMemoryCallRecords, Client],
) -> None:
    records, client = records_and_gateway
    await ended_call(client, records)
    token = await client.login("alice")
    response = await client.http.post(
        "/api/calls/ingest:c1/engagement", json={"engagementId": 123456}, headers=bearer(token)
    )
    assert response.status_code == 409
    assert "already has engagement" in response.json()["error"]


async def test_without_a_hubspot_table_the_gateway_logs_nothing(tmp_path: Path) -> None:
    records = InMemoryCallRecords()
    async with running_gateway(make_settings(tmp_path), call_records=records) as client:
        assert client.gateway.call_logger is None
        response = await client.ingest({"signals": [signal("c1", "ringing"), signal("c1", "ended")]})
        assert response.status_code == 202
    assert records.requests == []


async def test_metrics_show_the_outbox_and_the_calls_logged(
    records_and_gateway: tuple[InMemoryCallRecords, Client],
) -> None:
    records, client = records_and_gateway
    await ended_call(client, records)
    scraped = (await client.http.get("/metrics")).text
    assert 'gateway_calls_logged_total{by="gateway"} 1.0' in scraped
    for name in ("gateway_outbox_depth", "gateway_outbox_oldest_age_seconds", "gateway_outbox_dead"):
        assert f"\n{name} " in scraped


def test_a_hubspot_table_without_a_hubspot_client_logs_nothing(tmp_path: Path) -> None:
    gw = build_gateway(make_settings(tmp_path, extra={"hubspot": {}}))
    assert gw.call_logger is None


def test_a_hubspot_table_and_a_hubspot_client_start_the_call_logger(tmp_path: Path) -> None:
    hubspot = {"outbox_file": str(tmp_path / "outbox.sqlite3")}
    gw = build_gateway(
        make_settings(tmp_path, extra={"hubspot": hubspot}), call_records=InMemoryCallRecords()
    )
    assert gw.call_logger is not None and gw.call_logger in gw.components
