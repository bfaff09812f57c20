"""Bad input to the ingest endpoint: a precise refusal, nothing published."""

from __future__ import annotations

import json
import time

import pytest

from tests.support.harness import Client, signal


async def assert_nothing_published(gateway: Client) -> None:
    metrics = (await gateway.http.get("/metrics")).text
    assert "gateway_events_total{" not in metrics


async def test_missing_signature_is_401(gateway: Client) -> None:
    response = await gateway.http.post("/api/ingest", json=signal("x", "ringing"))
    assert response.status_code == 401
    assert "missing" in response.json()["error"]
    await assert_nothing_published(gateway)


async def test_wrong_secret_is_401(gateway: Client) -> None:
    response = await gateway.ingest(signal("x", "ringing"), secret="not-the-secret-0123456789")
    assert response.status_code == 401
    assert response.json()["error"] == "signature does not match"
    await assert_nothing_published(gateway)


async def test_tampered_body_is_401(gateway: Client) -> None:
    body = json.dumps(signal("x", "ringing")).encode()
    ts = int(time.time())
    from gateway.auth.ingest_signature import sign

    headers = {
        "x-gateway-timestamp": str(ts),
        "x-gateway-signature": sign("ingest-secret-for-tests-0123456789", ts, body),
    }
    response = await gateway.http.post("/api/ingest", content=body.replace(b"alice", b"bob"), headers=headers)
    assert response.status_code == 401
    await assert_nothing_published(gateway)


async def test_stale_timestamp_is_401(gateway: Client) -> None:
    response = await gateway.ingest(signal("x", "ringing"), timestamp=int(time.time()) - 3600)
    assert response.status_code == 401
    assert "window" in response.json()["error"]
    await assert_nothing_published(gateway)


async def test_oversized_body_is_413(gateway: Client) -> None:
    response = await gateway.ingest(None, raw=b"{" + b" " * 70000 + b"}")
    assert response.status_code == 413
    await assert_nothing_published(gateway)


async def test_malformed_json_is_400(gateway: Client) -> None:
    response = await gateway.ingest(None, raw=b'{"callId": ')
    assert response.status_code == 400
    assert response.json()["error"].startswith("body is not JSON")


async def test_unknown_user_is_404_and_publishes_nothing(gateway: Client) -> None:
    response = await gateway.ingest(signal("x", "ringing", user="mallory"))
    assert response.status_code == 404
    assert "mallory" in response.json()["error"]
    await assert_nothing_published(gateway)


@pytest.mark.parametrize(
    ("patch", "fragment"),
    [
        ({"phase": "exploded"}, "phase must be one of"),
        ({"direction": "sideways"}, "direction must be one of"),
        ({"callId": ""}, "callId must be a string"),
        ({"callId": "a b"}, "callId must match"),
        ({"sipCode": 99}, "sipCode must be an integer"),
        ({"endStatus": "COMPLETED"}, "endStatus and transferred go with phase ended"),
        ({"colour": "red"}, "unknown field(s) colour"),
        ({"aor": "sip:1001@pbx.test"}, "exactly one of user, aor, userNumber"),
    ],
)
async def test_invalid_signal_fields_are_422_with_the_reason(
    gateway: Client, patch: dict[str, object], fragment: str
) -> None:
    response = await gateway.ingest({**signal("x", "ringing"), **patch})
    assert response.status_code == 422
    assert fragment in response.json()["error"]


async def test_one_bad_signal_in_a_batch_rejects_the_whole_batch(gateway: Client) -> None:
    response = await gateway.ingest({"signals": [signal("ok", "ringing"), signal("bad", "nope")]})
    assert response.status_code == 422
    await assert_nothing_published(gateway)


async def test_user_can_be_found_by_aor_or_number(gateway: Client) -> None:
    by_aor = {**signal("a1", "ringing"), "aor": "<sip:1001@PBX.test;transport=tcp>"}
    del by_aor["user"]
    by_number = {**signal("a2", "ringing"), "userNumber": "555-555-0101"}
    del by_number["user"]
    assert (await gateway.ingest(by_aor)).status_code == 202
    assert (await gateway.ingest(by_number)).status_code == 202


async def test_rejections_are_counted(gateway: Client) -> None:
    await gateway.ingest(signal("x", "ringing"), secret="not-the-secret-0123456789")
    metrics = (await gateway.http.get("/metrics")).text
    assert 'gateway_rejected_total{reason="bad-signature",where="/api/ingest"} 1.0' in metrics


async def test_other_users_keep_receiving_while_bad_input_arrives(gateway: Client) -> None:
    token = await gateway.login("bob")
    async with gateway.stream(token) as stream:
        await gateway.ingest(None, raw=b"\xff\xfe garbage")
        await gateway.ingest(signal("x", "ringing"), secret="not-the-secret-0123456789")
        await gateway.ingest(signal("ok", "ringing", user="bob"))
        assert (await stream.next()).json["externalCallId"] == "ingest:ok"
