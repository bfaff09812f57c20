"""Every HubSpot request ends in its answer or in one of the errors the outbox sorts by."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gateway.hubspot.connections import SYNC_SECONDS
from gateway.hubspot.errors import NotConnected, RateLimited, Rejected, Transient, Unauthorized
from gateway.hubspot.service import HubSpotService
from gateway.hubspot.tokens import BROKEN, TokenGrant
from gateway.standin.hubspot import HubSpotStandIn
from tests.support.hubspot import PORTAL, running_service

OWNERS = "/crm/v3/owners"


async def test_an_answer_is_its_json(service: HubSpotService, standin: HubSpotStandIn) -> None:
    standin.add_owner(PORTAL, 501)
    answer = await service.client.call(PORTAL, "GET", OWNERS)
    assert [o["userId"] for o in answer["results"]] == [501]


async def test_an_expired_token_is_refreshed_once_and_the_request_sent_again(
    service: HubSpotService, standin: HubSpotStandIn
) -> None:
    before = service.connections.current(PORTAL).access_token
    standin.expire_tokens()
    await service.client.call(PORTAL, "GET", OWNERS)
    assert service.connections.current(PORTAL).access_token != before
    assert standin.requests.count(("GET", OWNERS)) == 2


async def test_a_second_401_after_the_refresh_is_unauthorized(
    service: HubSpotService, standin: HubSpotStandIn
) -> None:
    standin.fail_next(OWNERS, 401, times=2)
    with pytest.raises(Unauthorized):
        await service.client.call(PORTAL, "GET", OWNERS)
    # The refresh itself worked: the portal is not broken, only this request failed.
    assert service.connections.statuses()[0].state != BROKEN


async def test_a_revoked_grant_marks_the_portal_broken_and_keeps_it_so(
    service: HubSpotService, standin: HubSpotStandIn
) -> None:
    standin.revoke(PORTAL)
    with pytest.raises(Unauthorized):
        await service.client.call(PORTAL, "GET", OWNERS)
    [status] = service.connections.statuses()
    assert status.state == BROKEN
    assert "invalid_grant" in status.reason
    with pytest.raises(Unauthorized):  # without asking HubSpot again
        await service.client.call(PORTAL, "GET", OWNERS)
    stored = await service.connections.store.load()
    assert stored[PORTAL].broken  # a restart still knows


async def test_a_portal_never_installed_is_not_connected(service: HubSpotService) -> None:
    with pytest.raises(NotConnected):
        await service.client.call(999, "GET", OWNERS)


async def test_a_429_is_rate_limited_for_as_long_as_retry_after_says(
    service: HubSpotService, standin: HubSpotStandIn
) -> None:
    standin.fail_next(OWNERS, 429, headers={"Retry-After": "3"})
    with pytest.raises(RateLimited) as caught:
        await service.client.call(PORTAL, "GET", OWNERS)
    assert caught.value.retry_after == 3
    # The pacer holds the portal's next requests as long.
    assert await service.client.pacer.delay(PORTAL, search=False) > 2


async def test_a_portal_held_by_a_429_is_rate_limited_at_once_without_asking_hubspot(
    service: HubSpotService, standin: HubSpotStandIn
) -> None:
    standin.fail_next(OWNERS, 429, headers={"Retry-After": "30"})
    with pytest.raises(RateLimited):
        await service.client.call(PORTAL, "GET", OWNERS)
    asked = len(standin.requests)
    with pytest.raises(RateLimited) as caught:
        await service.client.call(PORTAL, "GET", OWNERS)  # the outbox tries another job meanwhile
    assert caught.value.retry_after > 25
    assert len(standin.requests) == asked


async def test_a_429_without_retry_after_waits_hubspots_interval(
    service: HubSpotService, standin: HubSpotStandIn
) -> None:
    standin.fail_next(OWNERS, 429)  # X-HubSpot-RateLimit-Remaining: 0, Interval-Milliseconds: 10000
    with pytest.raises(RateLimited) as caught:
        await service.client.call(PORTAL, "GET", OWNERS)
    assert caught.value.retry_after == 10


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_server_error_is_transient(
    service: HubSpotService, standin: HubSpotStandIn, status: int
) -> None:
    standin.fail_next(OWNERS, status)
    with pytest.raises(Transient):
        await service.client.call(PORTAL, "GET", OWNERS)


async def test_an_answer_slower_than_the_timeout_is_transient(
    service: HubSpotService, standin: HubSpotStandIn
) -> None:
    standin.fail_next(OWNERS, "slow")  # 1 s; the client waits 0.5 s
    started = time.monotonic()
    with pytest.raises(Transient, match="in time"):
        await service.client.call(PORTAL, "GET", OWNERS)
    assert time.monotonic() - started < 1.0


async def test_an_unreachable_hubspot_is_transient(service: HubSpotService) -> None:
    service.client.api_base = "http://127.0.0.1:9"  # discard: nothing listens
    with pytest.raises(Transient, match="reached"):
        await service.client.call(PORTAL, "GET", OWNERS)


async def test_another_refusal_is_rejected_with_hubspots_message(service: HubSpotService) -> None:
    with pytest.raises(Rejected, match="hs_timestamp is required"):
        await service.client.call(PORTAL, "POST", "/crm/v3/objects/calls", json={"properties": {}})


async def test_a_refresh_refused_for_the_apps_own_credentials_is_unauthorized_but_not_broken(
    service: HubSpotService, standin: HubSpotStandIn
) -> None:
    standin.client_secret = "rotated-in-the-developer-account"
    standin.expire_tokens()
    with pytest.raises(Unauthorized, match="invalid_client"):
        await service.client.call(PORTAL, "GET", OWNERS)
    assert service.connections.statuses()[0].state != BROKEN


async def test_a_portal_installed_again_through_another_instance_works_here_too(
    service: HubSpotService, standin: HubSpotStandIn, standin_url: str, tmp_path: Path
) -> None:
    standin.revoke(PORTAL)
    with pytest.raises(Unauthorized):
        await service.client.call(PORTAL, "GET", OWNERS)
    # Another instance, sharing the store, connects the portal again.
    async with running_service(service.settings) as other:
        issued = standin.issue_tokens(PORTAL)
        await other.connections.connect(
            TokenGrant(issued["access_token"], issued["refresh_token"], issued["expires_in"], PORTAL)
        )
    service.connections._synced_at -= SYNC_SECONDS  # as if the last reread were that long ago
    await service.client.call(PORTAL, "GET", OWNERS)
    assert service.connections.statuses()[0].state == "connected"
