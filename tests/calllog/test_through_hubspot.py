"""Every call logged exactly once through the real pieces: the gateway, its HubSpot client, the stand-in.

The gateway is served on loopback with ``[hubspot]`` pointing at the
HubSpot stand-in (``gateway/standin/hubspot.py``) on another loopback
port; the portal is connected through the install flow, as an admin does;
calls come in through the signed ingest. Faults are the stand-in's
(HubSpot's documented answers: 429 with its rate-limit headers, 401 for an
expired token, 5xx, slow). The outbox's clock is the wall clock plus an
offset the test moves, so a retry due in 30 s runs at once; the stand-in
shares that clock, so its search lag (HubSpot's search is eventually
consistent) passes with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.calllog.jobs import LOG, SEARCH_SETTLE_SECONDS
from gateway.hubspot.crm_client import CALL_TO_CONTACT
from gateway.outbox.jobs import job_key
from gateway.standin.hubspot import HubSpotStandIn, Record
from tests.support.cpaas import webhook_settings
from tests.support.harness import Client, make_settings, running_gateway, signal
from tests.support.hubspot import PORTAL, serving, table
from tests.support.servers import RedisServer
from tests.support.twilio_recordings import twilio_recording

CALLER = "+15555550199"  # signal()'s caller; the contact has it as people type it
ALICE_HUBSPOT_USER = 501
CALLS = "/crm/v3/objects/calls"
# HubSpot's search finds a new record some seconds after its create.
SEARCH_LAG = 10.0


class Clock:
    """The wall clock plus an offset the test moves."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


async def until(done: Callable[[], bool], seconds: float = 10.0, what: str = "") -> None:
    """Poll state the stand-in or the gateway only shows (no event to await), up to a deadline."""
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s: {what}")
        await asyncio.sleep(0.02)


class HubSpotSide:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.standin = HubSpotStandIn(
            default_portal=PORTAL, slow_seconds=1.0, clock=clock, search_lag_seconds=SEARCH_LAG
        )
        self.contact = self.standin.add_contact(
            PORTAL, firstname="Carol", lastname="Caller", phone="(555) 555-0199"
        )
        self.owner = self.standin.add_owner(PORTAL, ALICE_HUBSPOT_USER)
        self.url = ""

    def calls(self) -> list[Record]:
        return list(self.standin.portal(PORTAL).calls.values())

    def creates(self) -> int:
        return self.standin.requests.count(("POST", CALLS))


@pytest.fixture
async def hubspot() -> AsyncIterator[HubSpotSide]:
    side = HubSpotSide(Clock())
    async with serving(side.standin) as url:
        side.url = url
        yield side


@contextlib.asynccontextmanager
async def gateway(
    hubspot: HubSpotSide,
    tmp_path: Path,
    *,
    grace: float = 0,
    redis_url: str | None = None,
    timeout: float = 0.5,
    **overrides: Any,
) -> AsyncIterator[Client]:
    extra = {
        "log_grace_seconds": grace,
        "outbox_file": str(tmp_path / "outbox.sqlite3"),
        "timeout_seconds": timeout,
    }
    settings = make_settings(
        tmp_path,
        redis_url=redis_url,
        extra={"hubspot": table(hubspot.standin, hubspot.url, tmp_path, **extra)},
        **overrides,
    )
    async with running_gateway(settings) as client:
        logger = client.gateway.call_logger
        assert logger is not None
        logger.outbox.clock = hubspot.clock  # the clock the outbox was made to be given
        yield client


async def install(client: Client) -> None:
    """What the admin's browser does: the install link, HubSpot's approval, the callback."""
    async with httpx.AsyncClient(follow_redirects=True, timeout=10) as browser:
        page = await browser.get(client.base_url + "/hubspot/install")
    assert page.status_code == 200 and f"HubSpot portal {PORTAL} connected" in page.text, page.text


async def call_ends(client: Client, call_id: str = "c1", *, at_ms: int | None = None) -> None:
    start = at_ms if at_ms is not None else int(time.time() * 1000)
    response = await client.ingest(
        {
            "signals": [
                signal(call_id, "ringing", at=start),
                signal(call_id, "answered", at=start + 2000),
                signal(call_id, "ended", at=start + 47000),
            ]
        }
    )
    assert response.status_code == 202, response.text


async def outbox_idle(client: Client) -> None:
    """No job waiting or running (the outbox reads its store about once a second)."""
    logger = client.gateway.call_logger
    assert logger is not None
    deadline = time.monotonic() + 10
    while (await logger.outbox.store.stats()).depth:
        assert time.monotonic() < deadline, f"the outbox still has jobs; {outbox_counts(client)}"
        await asyncio.sleep(0.05)


def outbox_counts(client: Client) -> str:
    """What the outbox's counters say (jobs done by kind, failed attempts by reason): why a job stays."""
    logger = client.gateway.call_logger
    assert logger is not None
    counts = [
        f"{sample.name}{sample.labels}={sample.value:g}"
        for counter in (logger.outbox.done, logger.outbox.failures)
        for metric in counter.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    ]
    return ", ".join(counts) or "no job done or failed"


async def answer_lost(hubspot: HubSpotSide, client: Client) -> None:
    """HubSpot made the call, but the gateway's create timed out before the answer."""
    await until(lambda: len(hubspot.calls()) == 1, what="HubSpot made the call all the same")
    await until(lambda: failures(client, "transient") == 1, what="the create timed out")


def owner_reassigned(hubspot: HubSpotSide) -> Record:
    """The call made with Alice's owner; then Alice is given another owner in HubSpot."""
    [call] = hubspot.calls()
    assert call.properties["hubspot_owner_id"] == hubspot.owner
    assert hubspot.standin.add_owner(PORTAL, ALICE_HUBSPOT_USER) != hubspot.owner
    return call


async def retried_after_a_restart(
    hubspot: HubSpotSide, tmp_path: Path, call: Record, redis_url: str | None = None
) -> None:
    """The log job's retry, past the search lag, on a gateway that lists the owners afresh: no second call."""
    hubspot.clock.advance(SEARCH_SETTLE_SECONDS)
    async with gateway(hubspot, tmp_path, redis_url=redis_url) as client:
        await until(lambda: bool(call.updates) or len(hubspot.calls()) > 1, what="the retry")
        await outbox_idle(client)
    assert len(hubspot.calls()) == 1 and hubspot.creates() == 1


def failures(client: Client, reason: str) -> float:
    value = client.gateway.metrics.registry.get_sample_value(
        "gateway_outbox_failures_total", {"reason": reason}
    )
    return value or 0.0


async def metric(client: Client, line_start: str) -> float | None:
    for line in (await client.http.get("/metrics")).text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.split()[-1])
    return None


def shown(client: Client) -> Callable[[], Any]:
    async def get() -> dict[str, Any]:
        token = await client.login("alice")
        answer = await client.http.get("/api/calls/ingest:c1", headers={"authorization": f"Bearer {token}"})
        body: dict[str, Any] = answer.json()
        return body

    return get


# -- the call with no widget ---------------------------------------------------------


async def test_a_call_with_no_widget_is_created_once_after_the_grace_period(
    hubspot: HubSpotSide, tmp_path: Path
) -> None:
    async with gateway(hubspot, tmp_path, grace=30) as client:
        await install(client)
        start = int(time.time() * 1000)
        await call_ends(client, at_ms=start)
        logger = client.gateway.call_logger
        assert logger is not None
        assert (await logger.outbox.store.stats()).depth == 1  # the settle job, due in 30 s
        assert hubspot.calls() == []
        hubspot.clock.advance(30)
        await until(lambda: len(hubspot.calls()) == 1, what="the call logged")
        await outbox_idle(client)
        [call] = hubspot.calls()
        state = await shown(client)()
    assert hubspot.creates() == 1
    assert call.created_by == "gateway"
    assert call.associations == [("0-1", hubspot.contact, CALL_TO_CONTACT)]
    props = call.properties
    assert props["hubspot_owner_id"] == hubspot.owner
    assert props["hs_call_from_number"] == CALLER and props["hs_call_to_number"] == "+15555550101"
    assert props["hs_call_direction"] == "INBOUND"
    assert props["hs_call_status"] == "COMPLETED"
    assert props["hs_call_duration"] == "45000"
    assert props["hs_timestamp"] == str(start)
    assert props["hs_call_external_id"] == "ingest:c1"
    assert props["hs_call_external_account_id"] == str(PORTAL)
    assert props["hs_call_app_id"] == str(hubspot.standin.app_id)
    assert props["hs_call_source"] == "INTEGRATIONS_PLATFORM"
    assert (state["loggedBy"], str(state["engagementId"])) == ("gateway", call.id)


async def test_a_call_whose_engagement_the_widget_reported_is_updated_never_created(
    hubspot: HubSpotSide, tmp_path: Path
) -> None:
    async with gateway(hubspot, tmp_path) as client:
        await install(client)
        start = int(time.time() * 1000)
        ringing = await client.ingest({"signals": [signal("c1", "ringing", at=start)]})
        assert ringing.status_code == 202
        # HubSpot made the engagement for the widget's incomingCall; the page reports its id.
        engagement = hubspot.standin.widget_engagement(PORTAL, hs_timestamp=str(start))
        token = await client.login("alice")
        reported = await client.http.post(
            "/api/calls/ingest:c1/engagement",
            json={"engagementId": int(engagement)},
            headers={"authorization": f"Bearer {token}"},
        )
        assert reported.status_code == 200, reported.text
        ended = await client.ingest({"signals": [signal("c1", "ended", at=start + 5000)]})
        assert ended.status_code == 202
        [call] = hubspot.calls()
        await until(lambda: bool(call.updates), what="the widget's engagement updated")
        await outbox_idle(client)
        state = await shown(client)()
    assert hubspot.creates() == 0 and len(hubspot.calls()) == 1
    assert call.properties["hs_call_external_id"] == "ingest:c1"
    assert call.properties["hs_call_status"] == "NO_ANSWER"
    assert state["loggedBy"] == "widget"


# -- a wrap-up saved after the call was completed -------------------------------------

DEMO_BOOKED = "3c6f1a52-0c2e-4f7a-9d55-6a0f2b9f1e01"


async def widget_call(hubspot: HubSpotSide, client: Client) -> tuple[Record, dict[str, str]]:
    """An ended call whose engagement the widget reported, after the gateway's own update of it."""
    start = int(time.time() * 1000)
    assert (await client.ingest({"signals": [signal("c1", "ringing", at=start)]})).status_code == 202
    engagement = hubspot.standin.widget_engagement(PORTAL, hs_timestamp=str(start))
    bearer = {"authorization": f"Bearer {await client.login('alice')}"}
    reported = await client.http.post(
        "/api/calls/ingest:c1/engagement", json={"engagementId": int(engagement)}, headers=bearer
    )
    assert reported.status_code == 200, reported.text
    assert (await client.ingest({"signals": [signal("c1", "ended", at=start + 5000)]})).status_code == 202
    call = hubspot.standin.portal(PORTAL).calls[engagement]
    await until(lambda: bool(call.updates), what="the gateway's update of the widget's engagement")
    return call, bearer


async def test_a_wrap_up_saved_after_completion_updates_the_engagement_with_notes_and_outcome(
    hubspot: HubSpotSide, tmp_path: Path
) -> None:
    async with gateway(hubspot, tmp_path) as client:
        await install(client)
        call, bearer = await widget_call(hubspot, client)
        saved = await client.http.post(
            "/api/calls/ingest:c1/wrap-up",
            json={"notes": "Wants a demo\nnext <Tuesday>", "outcome": DEMO_BOOKED},
            headers=bearer,
        )
        assert saved.status_code == 202, saved.text
        await until(lambda: len(call.updates) == 2, what="the wrap-up's update")
        await outbox_idle(client)
    assert call.updates[-1] == ["hs_call_body", "hs_call_disposition"]
    assert call.properties["hs_call_body"] == "Wants a demo<br>next &lt;Tuesday&gt;"
    assert call.properties["hs_call_disposition"] == DEMO_BOOKED
    assert hubspot.creates() == 0


async def test_the_same_wrap_up_saved_twice_updates_once_and_a_changed_one_again(
    hubspot: HubSpotSide, tmp_path: Path
) -> None:
    async with gateway(hubspot, tmp_path) as client:
        await install(client)
        call, bearer = await widget_call(hubspot, client)
        for notes in ("First", "First", "Second"):
            saved = await client.http.post(
                "/api/calls/ingest:c1/wrap-up", json={"notes": notes}, headers=bearer
            )
            assert saved.status_code == 202, saved.text
        await until(lambda: len(call.updates) == 3, what="two wrap-up updates")
        await outbox_idle(client)
    assert len(call.updates) == 3
    assert call.properties["hs_call_body"] == "Second"


async def test_a_wrap_up_is_refused_precisely_when_it_cannot_be_sent(
    hubspot: HubSpotSide, tmp_path: Path
) -> None:
    async with gateway(hubspot, tmp_path) as client:
        await install(client)
        bearer = {"authorization": f"Bearer {await client.login('alice')}"}
        start = int(time.time() * 1000)
        assert (await client.ingest({"signals": [signal("c1", "ringing", at=start)]})).status_code == 202

        async def status(path: str, body: object) -> tuple[int, str]:
            answer = await client.http.post(path, json=body, headers=bearer)
            return answer.status_code, answer.json().get("error", "")

        assert await status("/api/calls/ingest:c1/wrap-up", {"notes": "x"}) == (
            409,
            "call ingest:c1 has no engagement in HubSpot yet",
        )
        assert await status("/api/calls/ingest:nope/wrap-up", {"notes": "x"}) == (
            404,
            "no call ingest:nope for this user",
        )
        assert (await status("/api/calls/ingest:c1/wrap-up", {}))[0] == 422
        assert (await status("/api/calls/ingest:c1/wrap-up", {"notes": 5}))[0] == 422
        assert (
            await client.http.post("/api/calls/ingest:c1/wrap-up", json={"notes": "x"})
        ).status_code == 401


# -- HubSpot slow or down ------------------------------------------------------------


async def test_a_429_with_hubspots_headers_is_waited_out_then_one_engagement(
    hubspot: HubSpotSide, tmp_path: Path
) -> None:
    # HubSpot's per-second limit: its remaining count 0 means "wait a second".
    hubspot.standin.fail_next(
        CALLS, 429, method="POST", exact=True, headers={"X-HubSpot-RateLimit-Secondly-Remaining": "0"}
    )
    async with gateway(hubspot, tmp_path) as client:
        await install(client)
        await call_ends(client)
        await until(lambda: len(hubspot.calls()) == 1, what="the call logged after the 429")
        await outbox_idle(client)
        failures = await metric(client, 'gateway_outbox_failures_total{reason="rate_limited"}')
    assert hubspot.creates() == 2 and len(hubspot.calls()) == 1
    assert failures == 1


async def test_an_expired_token_is_refreshed_and_the_call_logged_once(
    hubspot: HubSpotSide, tmp_path: Path
) -> None:
    async with gateway(hubspot, tmp_path) as client:
        await install(client)
        hubspot.standin.expire_tokens()
        await call_ends(client)
        await until(lambda: len(hubspot.calls()) == 1, what="the call logged after the refresh")
        await outbox_idle(client)
    assert hubspot.creates() == 1
    assert len(hubspot.standin.access_tokens) == 2  # the install's, and the refresh's


@pytest.mark.parametrize("fault", [503, "slow"])
async def test_a_search_failing_or_slow_is_retried_with_backoff_one_engagement(
    hubspot: HubSpotSide, tmp_path: Path, fault: int | str
) -> None:
    hubspot.standin.fail_next(CALLS + "/search", fault, times=2)
    async with gateway(hubspot, tmp_path) as client:
        await install(client)
        await call_ends(client)
        await until(lambda: failures(client, "transient") == 1, what="the first failure")
        # The retry waits for the backoff (5 s or more), which the test lets pass.
        assert hubspot.calls() == []
        hubspot.clock.advance(10)
        await until(lambda: failures(client, "transient") == 2, what="the second failure")
        hubspot.clock.advance(20)
        await until(lambda: len(hubspot.calls()) == 1, what="the call logged after the backoff")
        await outbox_idle(client)
    assert hubspot.creates() == 1


async def test_a_create_whose_answer_timed_out_is_found_by_its_external_id_not_made_twice(
    hubspot: HubSpotSide, tmp_path: Path
) -> None:
    hubspot.standin.fail_next(
        CALLS, "slow", method="POST", exact=True
    )  # made after 1 s; the gateway waits 0.5 s
    async with gateway(hubspot, tmp_path) as client:
        await install(client)
        await call_ends(client)
        await answer_lost(hubspot, client)
        # The retry comes when HubSpot's search finds the call (past its lag), not sooner.
        hubspot.clock.advance(SEARCH_SETTLE_SECONDS)
        [call] = hubspot.calls()
        await until(lambda: bool(call.updates), what="the call found and completed")
        await outbox_idle(client)
        state = await shown(client)()
    assert SEARCH_SETTLE_SECONDS > SEARCH_LAG
    assert hubspot.creates() == 1 and len(hubspot.calls()) == 1
    assert str(state["engagementId"]) == call.id


async def test_a_create_answered_5xx_is_retried_after_the_search_lag_one_engagement(
    hubspot: HubSpotSide, tmp_path: Path
) -> None:
    hubspot.standin.fail_next(CALLS, 502, method="POST", exact=True)  # HubSpot may or may not have made it
    async with gateway(hubspot, tmp_path) as client:
        await install(client)
        await call_ends(client)
        await until(lambda: failures(client, "transient") == 1, what="the create failed")
        hubspot.clock.advance(SEARCH_SETTLE_SECONDS - 1)
        logger = client.gateway.call_logger
        assert logger is not None
        assert not await logger.outbox.run_once()  # not due sooner than the search lag
        hubspot.clock.advance(1)
        await until(lambda: len(hubspot.calls()) == 1, what="the call created on the retry")
        await outbox_idle(client)
    assert hubspot.creates() == 2 and len(hubspot.calls()) == 1


async def test_a_revoked_portal_parks_the_job_visibly_and_a_reinstall_logs_the_call_at_once(
    hubspot: HubSpotSide, tmp_path: Path
) -> None:
    async with gateway(hubspot, tmp_path) as client:
        await install(client)
        hubspot.standin.revoke(PORTAL)
        await call_ends(client)
        await until(lambda: failures(client, "unauthorized") == 1, what="the job parked")
        scraped: dict[str, float | None] = {}
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            scraped = {
                name: await metric(client, name)
                for name in (
                    'gateway_hubspot_portals{state="broken"}',
                    "gateway_outbox_depth",
                    'gateway_outbox_failures_total{reason="unauthorized"}',
                )
            }
            if scraped["gateway_outbox_depth"] == 1:
                break
            await asyncio.sleep(0.05)
        oldest = await metric(client, "gateway_outbox_oldest_age_seconds")
        ready = await client.http.get("/readyz")
        assert scraped == {
            'gateway_hubspot_portals{state="broken"}': 1,
            "gateway_outbox_depth": 1,
            'gateway_outbox_failures_total{reason="unauthorized"}': 1,
        }
        assert oldest is not None and oldest > 0
        assert ready.status_code == 503 and "portal 100 broken" in ready.text
        assert hubspot.calls() == []
        await install(client)  # wakes the parked job: no waiting for its PARK_SECONDS
        await until(lambda: len(hubspot.calls()) == 1, what="the call logged after the reinstall")
        await outbox_idle(client)
    assert hubspot.creates() == 1


# -- restarts and instances ----------------------------------------------------------


@pytest.mark.parametrize("backing", ["sqlite", "redis"])
async def test_jobs_pending_at_a_restart_run_after_the_start(
    hubspot: HubSpotSide, tmp_path: Path, backing: str, request: pytest.FixtureRequest
) -> None:
    redis_url = request.getfixturevalue("redis_server").url if backing == "redis" else None
    async with gateway(hubspot, tmp_path, grace=30, redis_url=redis_url) as client:
        await install(client)
        await call_ends(client)
        logger = client.gateway.call_logger
        assert logger is not None
        assert (await logger.outbox.store.stats()).depth == 1
    assert hubspot.calls() == []
    hubspot.clock.advance(30)
    async with gateway(hubspot, tmp_path, grace=30, redis_url=redis_url) as client:
        await until(lambda: len(hubspot.calls()) == 1, what="the pending call logged after the restart")
        await outbox_idle(client)
    assert hubspot.creates() == 1


async def test_two_instances_on_one_redis_make_one_engagement(
    hubspot: HubSpotSide, tmp_path: Path, redis_server: RedisServer
) -> None:
    async with gateway(hubspot, tmp_path, redis_url=redis_server.url) as one:
        await install(one)  # before the second starts, which reads the portal's tokens at start
        async with gateway(hubspot, tmp_path, redis_url=redis_server.url) as two:
            for n in range(5):
                await call_ends(one if n % 2 else two, f"c{n}")
            await until(lambda: len(hubspot.calls()) == 5, what="five calls logged")
            await outbox_idle(one)
            await outbox_idle(two)
    external_ids = sorted(c.properties["hs_call_external_id"] for c in hubspot.calls())
    assert external_ids == [f"ingest:c{n}" for n in range(5)]
    assert hubspot.creates() == 5


async def test_a_create_retried_after_the_users_owner_changed_finds_the_first_not_a_second(
    hubspot: HubSpotSide, tmp_path: Path
) -> None:
    hubspot.standin.fail_next(CALLS, "slow", method="POST", exact=True)  # made, but the answer is lost
    async with gateway(hubspot, tmp_path) as client:
        await install(client)
        await call_ends(client)
        await answer_lost(hubspot, client)
    call = owner_reassigned(hubspot)
    await retried_after_a_restart(hubspot, tmp_path, call)


async def test_a_log_job_slower_than_its_lease_is_not_run_again_by_another_instance(
    hubspot: HubSpotSide, tmp_path: Path, redis_server: RedisServer
) -> None:
    lease = 4.0
    hubspot.standin.slow_seconds = 2 * lease  # HubSpot makes the call only after two leases
    hubspot.standin.fail_next(CALLS, "slow", method="POST", exact=True)
    async with gateway(hubspot, tmp_path, redis_url=redis_server.url, timeout=4 * lease) as one:
        await install(one)  # before the second starts, which reads the portal's tokens at start
        async with gateway(hubspot, tmp_path, redis_url=redis_server.url, timeout=4 * lease) as two:
            for instance in (one, two):
                logger = instance.gateway.call_logger
                assert logger is not None
                logger.outbox.lease_seconds = lease
            await call_ends(one)
            await until(
                lambda: hubspot.creates() >= 1 and len(hubspot.calls()) == hubspot.creates(),
                seconds=6 * lease,
                what="every create HubSpot was sent carried out",
            )
            await outbox_idle(one)
            await outbox_idle(two)
    assert hubspot.creates() == 1 and len(hubspot.calls()) == 1


async def test_a_log_job_queued_before_owners_were_kept_keeps_the_owner_its_first_attempt_found(
    hubspot: HubSpotSide, tmp_path: Path, redis_server: RedisServer
) -> None:
    hubspot.standin.fail_next(CALLS, "slow", method="POST", exact=True)  # made, but the answer is lost
    async with gateway(hubspot, tmp_path, redis_url=redis_server.url) as client:
        await install(client)
        logger = client.gateway.call_logger
        assert logger is not None
        # As the version before owners were fixed at settle time queued it: the user, no owner.
        old_job = {
            "user": "alice",
            "call": "ingest:c9",
            "portal": PORTAL,
            "hubspot_user_id": ALICE_HUBSPOT_USER,
            "remote": CALLER,
            "properties": {
                "hs_timestamp": "1796205600000",
                "hs_call_title": "Inbound call from +15555550199",
                "hs_call_direction": "INBOUND",
                "hs_call_status": "COMPLETED",
                "hs_call_duration": "45000",
                "hs_call_from_number": CALLER,
                "hs_call_to_number": "+15555550101",
                "hs_call_external_id": "ingest:c9",
                "hs_call_external_account_id": str(PORTAL),
                "hs_call_source": "INTEGRATIONS_PLATFORM",
            },
        }
        assert await logger.outbox.enqueue(LOG, job_key(LOG, "alice", "ingest:c9"), old_job)
        await answer_lost(hubspot, client)
    call = owner_reassigned(hubspot)
    await retried_after_a_restart(hubspot, tmp_path, call, redis_server.url)
    assert call.properties["hubspot_owner_id"] == hubspot.owner  # the first, written again


async def test_a_recording_after_the_users_owner_changed_goes_to_the_engagement_logged_with_the_first(
    hubspot: HubSpotSide, tmp_path: Path, redis_server: RedisServer
) -> None:
    hubspot.standin.fail_next(CALLS, "slow", method="POST", exact=True)  # made, but the answer is lost
    sid, start = "CA" + "8" * 32, int(time.time() * 1000)
    async with gateway(hubspot, tmp_path, redis_url=redis_server.url) as client:
        await install(client)
        phases = (("ringing", start), ("answered", start + 2000), ("ended", start + 47000))
        body = {"signals": [signal(sid, phase, source="twilio", at=at) for phase, at in phases]}
        assert (await client.ingest(body)).status_code == 202
        await answer_lost(hubspot, client)
    call = owner_reassigned(hubspot)
    # Twilio's recording reaches an instance that lists the owners afresh,
    # past the search lag; the log job's retry is not due yet.
    hubspot.clock.advance(SEARCH_LAG + 1)
    async with gateway(hubspot, tmp_path, redis_url=redis_server.url, **webhook_settings()) as client:
        content, headers = twilio_recording(hubspot.url, sid)  # the media is not fetched here
        answer = await client.http.post("/webhooks/twilio/recording-status", content=content, headers=headers)
        assert answer.json() == {"recording": f"twilio:{sid}"}, answer.text
        ready = hubspot.standin.portal(PORTAL).recordings_ready
        await until(lambda: bool(ready), what="HubSpot told of the recording")
    assert ready == [call.id] and hubspot.creates() == 1


async def test_two_users_without_an_owner_rung_by_one_call_are_each_logged_on_their_own_engagement(
    hubspot: HubSpotSide, tmp_path: Path
) -> None:
    hubspot.standin.portal(PORTAL).owners.clear()  # no owner tells their engagements apart
    async with gateway(hubspot, tmp_path) as client:
        await install(client)
        start = int(time.time() * 1000)
        # A hunt group: Alice's phone rings and gives up, then Bob's rings and he answers.
        alices = [signal("c1", "ringing", at=start), signal("c1", "ended", at=start + 20000)]
        assert (await client.ingest({"signals": alices})).status_code == 202
        await until(lambda: len(hubspot.calls()) == 1, what="Alice's missed leg logged")
        hubspot.clock.advance(SEARCH_LAG + 5)  # HubSpot's search finds it by Bob's end
        bobs = [
            signal("c1", "ringing", user="bob", to="+15555550102", at=start + 20000),
            signal("c1", "answered", user="bob", at=start + 22000),
            signal("c1", "ended", user="bob", at=start + 80000),
        ]
        assert (await client.ingest({"signals": bobs})).status_code == 202
        await until(
            lambda: len(hubspot.calls()) == 2 or any(c.updates for c in hubspot.calls()), what="Bob's leg"
        )
        await outbox_idle(client)
    statuses = sorted(c.properties["hs_call_status"] for c in hubspot.calls())
    assert statuses == ["COMPLETED", "NO_ANSWER"]
    assert all(not c.updates for c in hubspot.calls())
