"""The HTTP service on the embedded broker: login, stream, ingest, engagement."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.harness import Client, make_settings, running_gateway, signal


async def test_login_returns_a_short_lived_token_and_the_user(gateway: Client) -> None:
    response = await gateway.http.post("/api/login", json={"login": "alice", "password": "alice-password"})
    assert response.status_code == 200
    body = response.json()
    assert body["expiresIn"] == 900
    assert body["user"]["login"] == "alice"
    assert body["user"]["portalId"] == 100
    assert "password_hash" not in str(body)


@pytest.mark.parametrize("route", ["/api/login", "/api/session/refresh", "/api/stream-ticket"])
async def test_a_response_carrying_a_credential_is_never_cached(gateway: Client, route: str) -> None:
    token = await gateway.login("alice")
    if route == "/api/login":
        response = await gateway.http.post(route, json={"login": "alice", "password": "alice-password"})
    else:
        response = await gateway.http.post(route, headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"


async def test_wrong_password_is_refused(gateway: Client) -> None:
    response = await gateway.http.post("/api/login", json={"login": "alice", "password": "nope-nope"})
    assert response.status_code == 401
    assert response.json() == {"error": "wrong login or password"}


async def test_unknown_login_is_refused_like_a_wrong_password(gateway: Client) -> None:
    response = await gateway.http.post("/api/login", json={"login": "mallory", "password": "x" * 10})
    assert response.status_code == 401
    assert response.json() == {"error": "wrong login or password"}


async def test_login_from_another_hubspot_portal_is_refused(gateway: Client) -> None:
    response = await gateway.http.post(
        "/api/login", json={"login": "alice", "password": "alice-password", "portalId": 999}
    )
    assert response.status_code == 403


async def test_login_as_another_hubspot_user_is_refused(gateway: Client) -> None:
    response = await gateway.http.post(
        "/api/login",
        json={"login": "alice", "password": "alice-password", "portalId": 100, "hubspotUserId": 502},
    )
    assert response.status_code == 403
    assert "HubSpot user" in response.json()["error"]


async def test_stream_without_credentials_is_refused(gateway: Client) -> None:
    async with gateway.stream(None) as stream:
        await stream.ended.wait()
    assert stream.status == 401


async def test_stream_with_a_forged_token_is_refused(gateway: Client) -> None:
    token = await gateway.login("alice")
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    async with gateway.stream(forged) as stream:
        await stream.ended.wait()
    assert stream.status == 401


async def test_signed_signals_become_sdk_events_on_the_users_stream(gateway: Client) -> None:
    token = await gateway.login("alice")
    async with gateway.stream(token) as stream:
        assert stream.retry == 2000
        for phase in ("ringing", "answered"):
            assert (await gateway.ingest(signal("c1", phase))).status_code == 202
        ended = await gateway.ingest(signal("c1", "ended", endStatus="COMPLETED"))
        assert ended.status_code == 202
        events = await stream.take(4)
    assert [e.json["type"] for e in events] == ["incomingCall", "callAnswered", "callEnded", "callCompleted"]
    assert all(e.event == "sdk" for e in events)
    incoming = events[0].json
    assert incoming["payload"]["fromNumber"] == "+15555550199"
    assert incoming["externalCallId"] == "ingest:c1"
    assert events[2].json["payload"]["callEndStatus"] == "COMPLETED"
    assert events[3].json["payload"]["engagementProperties"]["hs_call_direction"] == "INBOUND"
    assert len({e.id for e in events}) == 4


async def test_ingest_accepts_a_batch_and_reports_event_ids(gateway: Client) -> None:
    response = await gateway.ingest({"signals": [signal("b1", "ringing"), signal("b1", "answered")]})
    assert response.status_code == 202
    assert response.json()["accepted"] == 2
    assert len(response.json()["events"]) == 2


async def test_repeated_signals_publish_nothing_twice(gateway: Client) -> None:
    first = await gateway.ingest(signal("d1", "ringing"))
    again = await gateway.ingest(signal("d1", "ringing"))
    assert len(first.json()["events"]) == 1
    assert again.json()["events"] == []


async def test_numbers_are_normalised_to_e164(gateway: Client) -> None:
    token = await gateway.login("alice")
    async with gateway.stream(token) as stream:
        await gateway.ingest(signal("n1", "ringing", **{"from": "(555) 555-0177", "to": "1001"}))
        event = await stream.next()
    assert event.json["payload"]["fromNumber"] == "+15555550177"
    assert event.json["payload"]["toNumber"] == "1001"


async def test_a_user_never_sees_another_users_calls(gateway: Client) -> None:
    alice, bob = await gateway.login("alice"), await gateway.login("bob")
    async with gateway.stream(alice) as alice_stream, gateway.stream(bob) as bob_stream:
        await gateway.ingest(signal("p1", "ringing", user="bob"))
        await gateway.ingest(signal("p2", "ringing", user="alice"))
        assert (await alice_stream.next()).json["externalCallId"] == "ingest:p2"
        assert (await bob_stream.next()).json["externalCallId"] == "ingest:p1"
        assert alice_stream.drain() == []


async def test_a_user_cannot_replay_another_users_history(gateway: Client) -> None:
    bob_event = (await gateway.ingest(signal("h1", "ringing", user="bob"))).json()["events"][0]
    await gateway.ingest(signal("h1", "answered", user="bob"))
    alice = await gateway.login("alice")
    async with gateway.stream(alice, last_event_id=bob_event) as stream:
        await gateway.ingest(signal("h2", "ringing", user="alice"))
        event = await stream.next()
    assert event.json["externalCallId"] == "ingest:h2"


async def test_reconnect_with_last_event_id_gets_every_missed_event_once(gateway: Client) -> None:
    token = await gateway.login("alice")
    async with gateway.stream(token) as stream:
        await gateway.ingest(signal("r1", "ringing"))
        seen = await stream.next()
    await gateway.ingest(signal("r1", "answered"))
    await gateway.ingest(signal("r1", "ended"))
    async with gateway.stream(token, last_event_id=seen.id) as resumed:
        await gateway.ingest(signal("r2", "ringing"))
        events = await resumed.take(4)
        await asyncio.sleep(0)
        assert resumed.drain() == []
    assert [e.json["type"] for e in events] == ["callAnswered", "callEnded", "callCompleted", "incomingCall"]


async def test_resuming_from_an_id_no_longer_held_says_there_is_a_gap(gateway: Client) -> None:
    token = await gateway.login("alice")
    async with gateway.stream(token, last_event_id="1-5") as stream:
        gap = await stream.next()
    assert gap.event == "gap"


async def test_stream_ticket_opens_a_stream_for_a_minute(gateway: Client) -> None:
    token = await gateway.login("alice")
    response = await gateway.http.post("/api/stream-ticket", headers={"authorization": f"Bearer {token}"})
    ticket = response.json()["ticket"]
    assert response.json()["expiresIn"] == 60
    async with gateway.stream(None, query=f"?ticket={ticket}") as stream:
        await gateway.ingest(signal("t1", "ringing"))
        assert (await stream.next()).json["externalCallId"] == "ingest:t1"


async def test_a_ticket_opens_one_stream_and_is_refused_after(gateway: Client) -> None:
    ticket = await gateway.stream_ticket(await gateway.login("alice"))
    async with gateway.stream(None, query=f"?ticket={ticket}") as first:
        assert first.status == 200
        while_open = await gateway.open_stream(f"?ticket={ticket}")
    after = await gateway.open_stream(f"?ticket={ticket}")
    assert (while_open[0], after[0]) == (401, 401)
    assert "already used" in after[1]["error"]


async def test_each_ticket_opens_its_own_stream(gateway: Client) -> None:
    token = await gateway.login("alice")
    for _ in range(3):
        ticket = await gateway.stream_ticket(token)
        assert (await gateway.open_stream(f"?ticket={ticket}"))[0] == 200


async def test_a_session_token_is_not_a_ticket_and_a_ticket_is_not_a_session(gateway: Client) -> None:
    token = await gateway.login("alice")
    async with gateway.stream(None, query=f"?ticket={token}") as stream:
        await stream.ended.wait()
    assert stream.status == 401
    ticket = (
        await gateway.http.post("/api/stream-ticket", headers={"authorization": f"Bearer {token}"})
    ).json()["ticket"]
    me = await gateway.http.get("/api/me", headers={"authorization": f"Bearer {ticket}"})
    assert me.status_code == 401


async def test_heartbeats_keep_an_idle_stream_alive(gateway: Client) -> None:
    token = await gateway.login("alice")
    async with gateway.stream(token) as stream:
        await asyncio.wait_for(stream.heartbeat.wait(), 5)
    assert stream.heartbeats >= 1


async def test_engagement_id_is_kept_and_carried_in_later_events(gateway: Client) -> None:
    token = await gateway.login("alice")
    auth = {"authorization": f"Bearer {token}"}
    async with gateway.stream(token) as stream:
        await gateway.ingest(signal("e1", "ringing"))
        await stream.next()
        response = await gateway.http.post(
            "/api/calls/ingest:e1/engagement", json={"engagementId": 4242}, headers=auth
        )
        assert response.status_code == 200
        assert response.json()["engagementId"] == 4242
        await gateway.ingest(signal("e1", "ended"))
        ended, completed = await stream.take(2)
    assert ended.json["payload"]["engagementId"] == 4242
    assert completed.json["payload"]["engagementId"] == 4242


async def test_engagement_for_another_users_call_is_not_found(gateway: Client) -> None:
    await gateway.ingest(signal("e2", "ringing", user="bob"))
    token = await gateway.login("alice")
    response = await gateway.http.post(
        "/api/calls/ingest:e2/engagement",
        json={"engagementId": 1},
        headers={"authorization": f"Bearer {token}"},
    )
    assert response.status_code == 404


async def test_a_different_engagement_for_the_same_call_conflicts(gateway: Client) -> None:
    await gateway.ingest(signal("e3", "ringing"))
    auth = {"authorization": f"Bearer {await gateway.login('alice')}"}
    url = "/api/calls/ingest:e3/engagement"
    assert (await gateway.http.post(url, json={"engagementId": 1}, headers=auth)).status_code == 200
    assert (await gateway.http.post(url, json={"engagementId": 2}, headers=auth)).status_code == 409


async def test_dial_request_without_a_route_for_the_tenant_is_refused_with_404(gateway: Client) -> None:
    auth = {"authorization": f"Bearer {await gateway.login('alice')}"}
    response = await gateway.http.post("/api/dial", json={"number": "555-555-0100"}, headers=auth)
    assert response.status_code == 404
    assert response.json() == {"error": "no dialling route is configured for HubSpot portal 100"}


async def test_health_readiness_and_metrics(gateway: Client) -> None:
    assert (await gateway.http.get("/healthz")).json() == {"status": "ok"}
    ready = await gateway.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["broker"] == {"ok": True, "detail": "memory"}
    await gateway.ingest(signal("m1", "ringing"))
    metrics = (await gateway.http.get("/metrics")).text
    assert 'gateway_events_total{type="incomingCall"} 1.0' in metrics
    assert 'gateway_signals_total{source="ingest"} 1.0' in metrics


async def test_responses_limit_who_may_frame_the_page(gateway: Client) -> None:
    response = await gateway.http.get("/healthz")
    csp = response.headers["content-security-policy"]
    assert csp.startswith("frame-ancestors 'self' https://app.hubspot.com")
    assert "*" not in csp
    assert "access-control-allow-origin" not in response.headers


async def test_repeated_failed_logins_are_throttled(gateway: Client) -> None:
    for _ in range(10):
        response = await gateway.http.post("/api/login", json={"login": "bob", "password": "guess-guess"})
        assert response.status_code == 401
    response = await gateway.http.post("/api/login", json={"login": "bob", "password": "bob-password"})
    assert response.status_code == 429
    assert "too many failed logins" in response.json()["error"]
    other = await gateway.http.post("/api/login", json={"login": "alice", "password": "alice-password"})
    assert other.status_code == 200


async def test_unknown_api_paths_answer_json_404(gateway: Client) -> None:
    response = await gateway.http.post("/api/nope", json={})
    assert response.status_code == 404
    assert response.json() == {"error": "no API route POST /api/nope"}


async def test_a_fresh_stream_is_told_where_now_is_and_can_resume_from_there(gateway: Client) -> None:
    token = await gateway.login("alice")
    async with gateway.stream(token) as stream:
        pass
    assert stream.head_id
    await gateway.ingest(signal("f1", "ringing"))
    async with gateway.stream(token, last_event_id=stream.head_id) as resumed:
        event = await resumed.next()
    assert event.json["externalCallId"] == "ingest:f1"
    assert resumed.head_id is None


async def test_a_refused_session_credential_carries_a_bearer_challenge(gateway: Client) -> None:
    response = await gateway.http.get("/api/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="gateway"'
    signed = await gateway.ingest(signal("x", "ringing"), secret="not-the-secret-0123456789")
    assert "www-authenticate" not in signed.headers


async def test_concurrent_guesses_cannot_slip_past_the_login_limit(gateway: Client) -> None:
    guesses = [
        gateway.http.post("/api/login", json={"login": "bob", "password": f"guess-{n}"}) for n in range(30)
    ]
    statuses = [r.status_code for r in await asyncio.gather(*guesses)]
    assert statuses.count(401) == 10
    assert statuses.count(429) == 20


async def test_a_user_holds_a_bounded_number_of_streams_and_the_oldest_goes(tmp_path: Path) -> None:
    async with running_gateway(make_settings(tmp_path, streams_per_user=2)) as gw:
        token = await gw.login("alice")
        async with gw.stream(token) as first, gw.stream(token), gw.stream(token) as third:
            await asyncio.wait_for(first.ended.wait(), 5)
            await gw.ingest(signal("cap", "ringing"))
            assert (await third.next()).json["externalCallId"] == "ingest:cap"


async def test_a_resume_after_history_was_trimmed_says_there_is_a_gap(tmp_path: Path) -> None:
    async with running_gateway(make_settings(tmp_path, history_size=10)) as gw:
        token = await gw.login("alice")
        async with gw.stream(token) as stream:
            await gw.ingest(signal("g0", "ringing"))
            seen = await stream.next()
        await gw.ingest({"signals": [signal(f"g{n}", "ringing") for n in range(1, 15)]})
        async with gw.stream(token, last_event_id=seen.id) as resumed:
            gap = await resumed.next()
            replayed = await resumed.take(10)
    assert gap.event == "gap"
    assert [e.json["externalCallId"] for e in replayed] == [f"ingest:g{n}" for n in range(5, 15)]


async def test_a_resume_from_an_empty_historys_hello_after_trimming_says_there_is_a_gap(
    tmp_path: Path,
) -> None:
    async with running_gateway(make_settings(tmp_path, history_size=10)) as gw:
        token = await gw.login("alice")
        async with gw.stream(token) as empty_history:
            pass
        await gw.ingest({"signals": [signal(f"t{n}", "ringing") for n in range(15)]})
        async with gw.stream(token, last_event_id=empty_history.head_id) as resumed:
            gap = await resumed.next()
            replayed = await resumed.take(10)
    assert gap.event == "gap"
    assert [e.json["externalCallId"] for e in replayed] == [f"ingest:t{n}" for n in range(5, 15)]


async def test_a_resume_within_history_has_no_gap(tmp_path: Path) -> None:
    async with running_gateway(make_settings(tmp_path, history_size=10)) as gw:
        token = await gw.login("alice")
        async with gw.stream(token) as stream:
            await gw.ingest({"signals": [signal(f"k{n}", "ringing") for n in range(12)]})
            events = await stream.take(12)
        async with gw.stream(token, last_event_id=events[5].id) as resumed:
            replayed = await resumed.take(6)
    assert [e.event for e in replayed] == ["sdk"] * 6


async def test_the_users_own_number_fills_in_the_users_side_of_the_call(gateway: Client) -> None:
    token = await gateway.login("alice")
    async with gateway.stream(token) as stream:
        inbound_call = signal("o1", "ringing")
        del inbound_call["to"]
        await gateway.ingest(inbound_call)
        await gateway.ingest(signal("o2", "ringing", direction="outbound", to="+15555550188"))
        inbound, outbound = await stream.take(2)
    assert inbound.json["payload"]["toNumber"] == "+15555550101"
    assert outbound.json["payload"]["fromNumber"] == "+15555550101"
