"""Recordings end to end: a provider's callback in, HubSpot's signed request, the media over real HTTP.

The gateway runs under uvicorn on loopback; Twilio, Telnyx, Vonage and a
PBX's web server are the stand-ins of tests/support, each serving a
two-channel WAV the way its provider documents its media URLs (Twilio basic
auth, Telnyx presigned, Vonage application JWT, the PBX basic auth), with
byte ranges. HubSpot's requests are signed by tests/support/hubspot_request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from gateway.broker.memory import MemoryBroker
from gateway.config import Settings
from gateway.hubspot.crm import Leg, ObjectRef
from gateway.ops.metrics import Metrics
from gateway.outbox.store import StoreUnavailable
from gateway.recordings.announce import DirectAnnouncer
from gateway.recordings.links import LinkSigner
from gateway.recordings.location import Recording
from gateway.recordings.service import RecordingService
from gateway.tracker import CallTracker
from tests.support.cpaas import (
    ALICE,
    PUBLIC_URL,
    TWILIO_TOKEN,
    telnyx_body,
    telnyx_headers,
    twilio_params,
    twilio_request,
    vonage_body,
    vonage_headers,
    webhook_settings,
)
from tests.support.harness import TOKEN_SECRET, Client, make_settings, running_gateway, signal
from tests.support.hubspot_request import CLIENT_SECRET, hubspot_headers
from tests.support.pbx_media import PASSWORD, USERNAME, PbxMedia
from tests.support.servers import RedisServer
from tests.support.standin import recording_wav
from tests.support.telnyx_api import API_KEY as TELNYX_API_KEY
from tests.support.telnyx_api import CONNECTION_ID, TelnyxApi
from tests.support.twilio_api import ACCOUNT_SID, TwilioApi
from tests.support.twilio_recordings import TWILIO_MEDIA, twilio_recording
from tests.support.vonage_api import VonageApi, private_key_pem

WAV = recording_wav()
ALICE_OWNER, BOB_OWNER = "71", "72"


@dataclass
class HubSpotCalls:
    """The HubSpot client as recordings use it (``CallRecords``): what was asked of it.

    A stand-in of the HubSpot connection, which another part of the gateway
    implements against HubSpot's API; here it records the recording-ready
    posts and answers the search by external id from ``logged``.
    """

    ready: list[tuple[int, str]] = field(default_factory=list)
    # engagement id -> its properties, in the order HubSpot made them
    logged: dict[str, dict[str, str]] = field(default_factory=dict)
    # HubSpot user id -> owner id, of the harness's users
    owners: dict[int, str] = field(default_factory=lambda: {501: ALICE_OWNER, 502: BOB_OWNER})

    async def recording_ready(self, portal_id: int, engagement_id: str) -> None:
        self.ready.append((portal_id, engagement_id))

    def log(self, engagement_id: str, external_id: str, owner_id: str | None, **properties: str) -> None:
        """The gateway's call logger made this engagement."""
        owned = {} if owner_id is None else {"hubspot_owner_id": owner_id}
        self.logged[engagement_id] = {"hs_call_external_id": external_id, **owned, **properties}

    async def find_owned_call(self, portal_id: int, external_id: str, leg: Leg) -> str | None:
        wanted = {"hs_call_external_id": external_id, **leg.properties}
        return next(
            (
                engagement
                for engagement, props in self.logged.items()
                if props.get("hubspot_owner_id") == leg.owner_id
                and all(props.get(name) == value for name, value in wanted.items())
            ),
            None,
        )

    async def create_call(
        self, portal_id: int, properties: Mapping[str, str], associate_with: list[ObjectRef]
    ) -> str:
        raise AssertionError("recordings never create calls")

    async def update_call(self, portal_id: int, engagement_id: str, properties: Mapping[str, str]) -> None:
        raise AssertionError("recordings never update calls")

    async def find_records_by_phone(self, portal_id: int, number: str) -> list[ObjectRef]:
        raise AssertionError("recordings never search records")

    async def owner_id(self, portal_id: int, hubspot_user_id: int) -> str | None:
        return self.owners.get(hubspot_user_id)


@dataclass
class Rig:
    gw: Client
    twilio: TwilioApi
    twilio_url: str
    telnyx: TelnyxApi
    telnyx_url: str
    vonage: VonageApi
    vonage_url: str
    pbx: PbxMedia
    pbx_url: str
    hubspot: HubSpotCalls

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return await self.gw.http.post(path, content=body, headers=headers)

    async def ask_hubspot_link(self, external_id: str, **signing: Any) -> httpx.Response:
        return await ask_hubspot_link(self.gw, external_id, **signing)

    async def media_path(self, external_id: str) -> str:
        return await media_path(self.gw, external_id)


async def ask_hubspot_link(gw: Client, external_id: str, **signing: Any) -> httpx.Response:
    """HubSpot's GET of ``urlToRetrieveAuthedRecording`` with ``%s`` replaced."""
    path = "/hubspot/recordings/" + quote(external_id, safe="")
    headers = hubspot_headers("GET", PUBLIC_URL + path, **signing)
    return await gw.http.get(path, headers=headers)


async def media_path(gw: Client, external_id: str) -> str:
    response = await ask_hubspot_link(gw, external_id)
    assert response.status_code == 200, response.text
    url: str = response.json()["authenticatedUrl"]
    assert url.startswith(PUBLIC_URL + "/recordings/")
    return url.removeprefix(PUBLIC_URL)  # fetched through the loopback, as a proxy would


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    twilio, telnyx, vonage, pbx = TwilioApi(), TelnyxApi(), VonageApi(), PbxMedia()
    key_file = tmp_path / "vonage.key"
    key_file.write_bytes(private_key_pem(vonage.key))
    async with (
        twilio.running() as twilio_url,
        telnyx.running() as telnyx_url,
        vonage.running() as vonage_url,
        pbx.running() as pbx_url,
    ):
        recordings = {
            "100": {
                "url_template": pbx_url + "/rec/{call_id}.wav",
                "username": USERNAME,
                "password": PASSWORD,
            }
        }
        settings = make_settings(
            tmp_path,
            **webhook_settings(),
            twilio_account_sid=ACCOUNT_SID,
            twilio_api_url=twilio_url,
            telnyx_api_key=TELNYX_API_KEY,
            telnyx_connection_id=CONNECTION_ID,
            telnyx_api_url=telnyx_url,
            vonage_application_id=vonage.application_id,
            vonage_private_key_file=key_file,
            vonage_api_url=vonage_url,
            hubspot_client_secret=CLIENT_SECRET,
            extra={"recordings": recordings},
        )
        async with running_gateway(settings) as gw:
            hubspot = HubSpotCalls()
            service = gw.gateway.recordings
            assert service is not None
            service.announcer = DirectAnnouncer(hubspot)
            service.records = hubspot
            yield Rig(gw, twilio, twilio_url, telnyx, telnyx_url, vonage, vonage_url, pbx, pbx_url, hubspot)


# -- the providers' callbacks ---------------------------------------------------
async def twilio_call_with_recording(rig: Rig, sid: str = "CA" + "1" * 32) -> str:
    rig.twilio.media[TWILIO_MEDIA + ".wav"] = WAV
    answer = await rig.post("/webhooks/twilio/voice-status", *twilio_request(twilio_params(sid, "ringing")))
    assert answer.status_code == 200, answer.text
    answer = await rig.post("/webhooks/twilio/recording-status", *twilio_recording(rig.twilio_url, sid))
    assert answer.json() == {"recording": f"twilio:{sid}"}, answer.text
    return f"twilio:{sid}"


def telnyx_saved(rig: Rig, leg: str) -> bytes:
    """``call.recording.saved`` as Telnyx posts it: presigned recording_urls, no public ones."""
    return telnyx_body(
        "call.recording.saved",
        leg,
        recording_id="10cd86ac-fef8-4765-b203-0f7511f9fc75",
        channels="dual",
        recording_urls={"wav": f"{rig.telnyx_url}/recordings/{leg}.wav?{rig.telnyx.presigned}"},
        public_recording_urls={},
    )


def vonage_record_event(rig: Rig, uuid: str) -> bytes:
    """The record action's event as Vonage posts it to the action's eventUrl."""
    return json.dumps(
        {
            "start_time": "2026-12-01T10:00:00Z",
            "recording_url": f"{rig.vonage_url}/v1/files/file-{uuid}",
            "size": len(WAV),
            "recording_uuid": "rec-" + uuid,
            "end_time": "2026-12-01T10:00:01Z",
            "conversation_uuid": "CON-" + uuid,
            "timestamp": "2026-12-01T10:00:01.000Z",
        }
    ).encode()


async def test_a_twilio_recording_plays_whole_through_the_link_hubspot_is_given(rig: Rig) -> None:
    external_id = await twilio_call_with_recording(rig)
    answer = await rig.gw.http.get(await rig.media_path(external_id))
    assert answer.status_code == 200
    assert answer.content == WAV
    assert answer.headers["content-type"].startswith("audio/")
    assert answer.headers["accept-ranges"] == "bytes"
    # Twilio's media was fetched with the account's basic auth.
    assert rig.twilio.media_requests[-1]["authorization"].startswith("Basic ")


@pytest.mark.parametrize(
    ("range_header", "start", "end"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=1000-", 1000, len(WAV) - 1),
        ("bytes=-500", len(WAV) - 500, len(WAV) - 1),
    ],
)
@pytest.mark.parametrize("provider_honours_ranges", [True, False])
async def test_a_range_is_answered_206_with_its_bytes(
    rig: Rig, range_header: str, start: int, end: int, provider_honours_ranges: bool
) -> None:
    rig.twilio.honour_ranges = provider_honours_ranges
    path = await rig.media_path(await twilio_call_with_recording(rig))
    answer = await rig.gw.http.get(path, headers={"range": range_header})
    assert answer.status_code == 206
    assert answer.headers["content-range"] == f"bytes {start}-{end}/{len(WAV)}"
    assert answer.content == WAV[start : end + 1]
    assert int(answer.headers["content-length"]) == end - start + 1


@pytest.mark.parametrize("provider_honours_ranges", [True, False])
async def test_a_range_past_the_end_is_416(rig: Rig, provider_honours_ranges: bool) -> None:
    rig.twilio.honour_ranges = provider_honours_ranges
    path = await rig.media_path(await twilio_call_with_recording(rig))
    answer = await rig.gw.http.get(path, headers={"range": f"bytes={len(WAV)}-"})
    assert answer.status_code == 416
    assert answer.headers["content-range"] == f"bytes */{len(WAV)}"


async def test_a_telnyx_recording_is_fetched_from_a_presigned_url_with_no_credentials(rig: Rig) -> None:
    leg = "telnyx-leg-1"
    rig.telnyx.media[f"/recordings/{leg}.wav"] = WAV
    rig.telnyx.recordings["10cd86ac-fef8-4765-b203-0f7511f9fc75"] = f"/recordings/{leg}.wav"
    initiated = telnyx_body("call.initiated", leg, direction="incoming")
    assert (
        await rig.post("/webhooks/telnyx/call-events", initiated, telnyx_headers(initiated))
    ).status_code == 200
    saved = telnyx_saved(rig, leg)
    answer = await rig.post("/webhooks/telnyx/call-events", saved, telnyx_headers(saved))
    assert answer.json() == {"recording": f"telnyx:{leg}"}, answer.text
    media = await rig.gw.http.get(await rig.media_path(f"telnyx:{leg}"), headers={"range": "bytes=0-43"})
    assert media.status_code == 206
    assert media.content == WAV[:44]
    assert "authorization" not in rig.telnyx.media_requests[-1]


async def test_a_telnyx_recording_whose_presigned_url_expired_is_fetched_from_a_fresh_one(
    rig: Rig,
) -> None:
    leg = "telnyx-leg-3"
    rig.telnyx.media[f"/recordings/{leg}.wav"] = WAV
    rig.telnyx.recordings["rec-3"] = f"/recordings/{leg}.wav"
    initiated = telnyx_body("call.initiated", leg, direction="incoming")
    assert (
        await rig.post("/webhooks/telnyx/call-events", initiated, telnyx_headers(initiated))
    ).status_code == 200
    expired = f"{rig.telnyx_url}/recordings/{leg}.wav?X-Amz-Expires=600&X-Amz-Signature=expired"
    saved = telnyx_body(
        "call.recording.saved",
        leg,
        recording_id="rec-3",
        recording_urls={"wav": expired},
        public_recording_urls={},
    )
    assert (await rig.post("/webhooks/telnyx/call-events", saved, telnyx_headers(saved))).status_code == 200
    # The gateway has the Telnyx API key: it asks Telnyx for a fresh download URL.
    media = await rig.gw.http.get(await rig.media_path(f"telnyx:{leg}"))
    assert media.status_code == 200
    assert media.content == WAV


async def test_a_vonage_recording_is_found_by_its_conversation_and_fetched_with_the_application_jwt(
    rig: Rig,
) -> None:
    uuid = "vonage-call-1"
    rig.vonage.media[f"/v1/files/file-{uuid}"] = WAV
    started = vonage_body(uuid, "started")
    assert (
        await rig.post("/webhooks/vonage/voice-events", started, vonage_headers(started))
    ).status_code == 200
    event = vonage_record_event(rig, uuid)
    answer = await rig.post("/webhooks/vonage/recording-events", event, vonage_headers(event))
    assert answer.json() == {"recording": f"vonage:{uuid}"}, answer.text
    media = await rig.gw.http.get(await rig.media_path(f"vonage:{uuid}"))
    assert media.status_code == 200
    assert media.content == WAV
    assert rig.vonage.claims  # the stand-in verified an RS256 application JWT


async def test_a_pbx_recording_comes_from_the_tenants_url_template_with_its_basic_auth(rig: Rig) -> None:
    rig.pbx.media["/rec/pbx-call-1.wav"] = WAV
    assert (await rig.gw.ingest(signal("pbx-call-1", "ringing", source="pbx"))).status_code == 202
    media = await rig.gw.http.get(await rig.media_path("pbx:pbx-call-1"), headers={"range": "bytes=44-"})
    assert media.status_code == 206
    assert media.content == WAV[44:]
    assert rig.pbx.media_requests[-1]["authorization"].startswith("Basic ")


# -- refused callbacks -------------------------------------------------------------
async def test_a_twilio_recording_callback_with_a_bad_signature_is_refused(rig: Rig) -> None:
    body, headers = twilio_recording(rig.twilio_url, "CA" + "2" * 32, token="f" * 32)
    answer = await rig.post("/webhooks/twilio/recording-status", body, headers)
    assert answer.status_code == 403
    assert "X-Twilio-Signature" in answer.json()["error"]


async def test_a_telnyx_recording_event_with_a_bad_signature_is_refused(rig: Rig) -> None:
    saved = telnyx_saved(rig, "telnyx-leg-2")
    headers = telnyx_headers(saved)
    answer = await rig.post("/webhooks/telnyx/call-events", saved + b" ", headers)
    assert answer.status_code == 403


async def test_a_vonage_recording_event_with_a_bad_signature_is_refused(rig: Rig) -> None:
    event = vonage_record_event(rig, "vonage-call-2")
    answer = await rig.post(
        "/webhooks/vonage/recording-events", event, vonage_headers(event, secret="another-secret-0123456")
    )
    assert answer.status_code == 403


async def test_a_recording_not_yet_completed_is_ignored(rig: Rig) -> None:
    body, headers = twilio_recording(rig.twilio_url, "CA" + "3" * 32, RecordingStatus="in-progress")
    answer = await rig.post("/webhooks/twilio/recording-status", body, headers)
    assert answer.status_code == 200
    assert "in-progress" in answer.json()["ignored"]


async def test_a_recording_of_a_call_the_gateway_never_saw_is_ignored(rig: Rig) -> None:
    body, headers = twilio_recording(rig.twilio_url, "CA" + "4" * 32)
    answer = await rig.post("/webhooks/twilio/recording-status", body, headers)
    assert answer.status_code == 200
    assert "not one of the gateway's calls" in answer.json()["ignored"]


# -- HubSpot's request for the authed URL -----------------------------------------------
async def test_hubspots_request_with_a_stale_timestamp_is_refused_401(rig: Rig) -> None:
    external_id = await twilio_call_with_recording(rig)
    answer = await rig.ask_hubspot_link(external_id, timestamp_ms=int(time.time() * 1000) - 301_000)
    assert answer.status_code == 401
    assert "5 minutes" in answer.json()["error"]


async def test_a_request_signed_with_another_secret_is_refused_401(rig: Rig) -> None:
    external_id = await twilio_call_with_recording(rig)
    answer = await rig.ask_hubspot_link(external_id, secret="not-the-apps-client-secret")
    assert answer.status_code == 401
    assert "does not match" in answer.json()["error"]


async def test_a_request_without_hubspots_signature_is_refused_401(rig: Rig) -> None:
    external_id = await twilio_call_with_recording(rig)
    answer = await rig.gw.http.get("/hubspot/recordings/" + external_id)
    assert answer.status_code == 401
    assert "missing" in answer.json()["error"]


async def test_a_call_with_no_recording_is_404(rig: Rig) -> None:
    answer = await rig.ask_hubspot_link("twilio:CA" + "9" * 32)
    assert answer.status_code == 404


# -- the link --------------------------------------------------------------------------
async def test_an_expired_link_is_gone_410(rig: Rig) -> None:
    external_id = await twilio_call_with_recording(rig)
    link = LinkSigner.from_secret(TOKEN_SECRET).issue(external_id, int(time.time()) - 1)
    answer = await rig.gw.http.get("/recordings/" + link)
    assert answer.status_code == 410


async def test_a_forged_link_is_refused_403(rig: Rig) -> None:
    external_id = await twilio_call_with_recording(rig)
    link = LinkSigner.from_secret("some-other-secret-0123456789").issue(external_id, int(time.time()) + 60)
    answer = await rig.gw.http.get("/recordings/" + link)
    assert answer.status_code == 403


# -- telling HubSpot ---------------------------------------------------------------------
async def set_engagement(gw: Client, external_id: str, engagement_id: int, login: str = "alice") -> None:
    """The widget reports the engagement HubSpot created for the call."""
    token = await gw.login(login)
    answer = await gw.http.post(
        f"/api/calls/{external_id}/engagement",
        json={"engagementId": engagement_id},
        headers={"authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200, answer.text


async def test_hubspot_is_told_once_when_the_widgets_engagement_comes_after_the_recording(rig: Rig) -> None:
    external_id = await twilio_call_with_recording(rig)
    assert rig.hubspot.ready == []
    await set_engagement(rig.gw, external_id, 7001)
    body, headers = twilio_recording(rig.twilio_url, external_id.removeprefix("twilio:"))
    assert (await rig.post("/webhooks/twilio/recording-status", body, headers)).status_code == 200
    assert rig.hubspot.ready == [(100, "7001")]


async def test_hubspot_is_told_once_when_the_recording_comes_after_the_engagement(rig: Rig) -> None:
    sid = "CA" + "5" * 32
    rig.twilio.media[TWILIO_MEDIA + ".wav"] = WAV
    await rig.post("/webhooks/twilio/voice-status", *twilio_request(twilio_params(sid, "ringing", To=ALICE)))
    await set_engagement(rig.gw, f"twilio:{sid}", 7002)
    for _ in range(2):  # Twilio retries a callback it thinks failed
        assert (
            await rig.post("/webhooks/twilio/recording-status", *twilio_recording(rig.twilio_url, sid))
        ).status_code == 200
    assert rig.hubspot.ready == [(100, "7002")]


async def test_an_announcement_the_outbox_could_not_keep_is_made_by_the_providers_retry(rig: Rig) -> None:
    sid = "CA" + "6" * 32
    rig.twilio.media[TWILIO_MEDIA + ".wav"] = WAV
    await rig.post("/webhooks/twilio/voice-status", *twilio_request(twilio_params(sid, "ringing", To=ALICE)))
    await set_engagement(rig.gw, f"twilio:{sid}", 7006)
    service = rig.gw.gateway.recordings
    assert service is not None
    working = service.announcer
    service.announcer = StoreDown()
    refused = await rig.post("/webhooks/twilio/recording-status", *twilio_recording(rig.twilio_url, sid))
    assert refused.status_code == 503  # Twilio retries it
    service.announcer = working
    retried = await rig.post("/webhooks/twilio/recording-status", *twilio_recording(rig.twilio_url, sid))
    assert retried.status_code == 200
    assert rig.hubspot.ready == [(100, "7006")]


class StoreDown:
    """The outbox as it answers while its store cannot be written."""

    async def on_recording(self, portal_id: int, external_call_id: str, engagement_id: str) -> None:
        raise StoreUnavailable("outbox file var/outbox.sqlite3: disk I/O error")


async def test_an_engagement_reported_while_the_recording_is_being_kept_is_announced(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid = "CA" + "7" * 32
    service = rig.gw.gateway.recordings
    assert service is not None
    keep = service._store.keep

    async def keep_while_the_widget_reports(recording: Recording) -> None:
        # The engagement lands after the callback read the call, before the recording is kept.
        await set_engagement(rig.gw, f"twilio:{sid}", 7301)
        await keep(recording)

    monkeypatch.setattr(service._store, "keep", keep_while_the_widget_reports)
    await twilio_call_with_recording(rig, sid)
    assert rig.hubspot.ready == [(100, "7301")]


async def test_a_call_the_gateway_logged_itself_is_announced_with_that_engagement(rig: Rig) -> None:
    sid = "CA" + "6" * 32
    rig.hubspot.log("8001", f"twilio:{sid}", ALICE_OWNER)
    for status in ("ringing", "completed"):  # the gateway logs a call once it ended
        answer = await rig.post("/webhooks/twilio/voice-status", *twilio_request(twilio_params(sid, status)))
        assert answer.status_code == 200, answer.text
    await twilio_call_with_recording(rig, sid)
    assert rig.hubspot.ready == [(100, "8001")]


async def test_a_recording_of_a_call_two_users_rang_goes_to_the_gateways_engagement_of_the_one_who_answered(
    rig: Rig,
) -> None:
    sid = "CA" + "4" * 32
    await rings_alice_then_bob_who_answers(rig, sid)
    # The gateway logged each leg on an engagement of its own: one external id, two owners.
    rig.hubspot.log("8201", f"twilio:{sid}", ALICE_OWNER)
    rig.hubspot.log("8202", f"twilio:{sid}", BOB_OWNER)
    answer = await rig.post("/webhooks/twilio/recording-status", *twilio_recording(rig.twilio_url, sid))
    assert answer.json() == {"recording": f"twilio:{sid}"}, answer.text
    assert rig.hubspot.ready == [(100, "8202")]


async def rings_alice_then_bob_who_answers(rig: Rig, sid: str, start: int = 0) -> None:
    """One Twilio call reported for both users' legs: Alice's rang out from ``start`` (ms),
    then Bob's rang 20 s later and he answered."""
    rig.twilio.media[TWILIO_MEDIA + ".wav"] = WAV
    start = start or int(time.time() * 1000)
    legs = {
        "alice": (("ringing", start), ("ended", start + 20000)),
        "bob": (("ringing", start + 20000), ("answered", start + 22000), ("ended", start + 80000)),
    }
    for user, phases in legs.items():
        for phase, at in phases:
            body = signal(sid, phase, source="twilio", user=user, at=at)
            assert (await rig.gw.ingest(body)).status_code == 202


async def test_a_recording_of_a_call_two_users_without_an_owner_rang_goes_to_the_answering_users_engagement(
    rig: Rig,
) -> None:
    rig.hubspot.owners.clear()
    sid, start = "CA" + "1" * 32, int(time.time() * 1000)
    await rings_alice_then_bob_who_answers(rig, sid, start)
    # What the gateway logged of each leg tells them apart (docs/call-logging.md).
    alices = {"hs_timestamp": str(start), "hs_call_status": "NO_ANSWER"}
    bobs = {"hs_timestamp": str(start + 20000), "hs_call_status": "COMPLETED"}
    rig.hubspot.log("8501", f"twilio:{sid}", None, hs_call_direction="INBOUND", **alices)
    rig.hubspot.log("8502", f"twilio:{sid}", None, hs_call_direction="INBOUND", **bobs)
    answer = await rig.post("/webhooks/twilio/recording-status", *twilio_recording(rig.twilio_url, sid))
    assert answer.json() == {"recording": f"twilio:{sid}"}, answer.text
    assert rig.hubspot.ready == [(100, "8502")]


async def recorded_before_any_engagement(rig: Rig, sid: str) -> RecordingService:
    """Alice's leg rang out, Bob answered; Twilio's recording came before either leg's engagement."""
    await rings_alice_then_bob_who_answers(rig, sid)
    answer = await rig.post("/webhooks/twilio/recording-status", *twilio_recording(rig.twilio_url, sid))
    assert answer.status_code == 200 and rig.hubspot.ready == []
    service = rig.gw.gateway.recordings
    assert service is not None
    return service


async def test_an_engagement_the_gateway_logged_for_the_user_who_did_not_answer_gets_no_recording(
    rig: Rig,
) -> None:
    sid = "CA" + "3" * 32
    service = await recorded_before_any_engagement(rig, sid)
    # The call logger tells of each leg's engagement; neither could be kept with its leg's state.
    await service.on_engagement(100, "alice", f"twilio:{sid}", 8301)
    await service.on_engagement(100, "bob", f"twilio:{sid}", 8302)
    assert rig.hubspot.ready == [(100, "8302")]


async def test_once_the_calls_states_expired_a_recording_still_goes_only_to_the_answering_users_engagement(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid = "CA" + "2" * 32
    service = await recorded_before_any_engagement(rig, sid)
    # CALL_TTL_SECONDS later (a portal connected only days after the call): no leg's state is left
    # when the call logger, whose jobs waited, tells of each leg's engagement.
    monkeypatch.setattr(service, "_tracker", CallTracker(MemoryBroker(Settings()), Metrics()))
    await service.on_engagement(100, "alice", f"twilio:{sid}", 8401)
    await service.on_engagement(100, "bob", f"twilio:{sid}", 8402)
    assert rig.hubspot.ready == [(100, "8402")]


async def test_a_pbx_call_that_was_answered_is_announced_once_its_engagement_is_known(rig: Rig) -> None:
    for phase in ("ringing", "answered", "ended"):
        assert (await rig.gw.ingest(signal("pbx-call-2", phase, source="pbx"))).status_code == 202
    await set_engagement(rig.gw, "pbx:pbx-call-2", 7101)
    assert rig.hubspot.ready == [(100, "7101")]


async def test_a_pbx_recording_announced_still_plays_after_the_calls_state_expired(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig.pbx.media["/rec/pbx-call-5.wav"] = WAV
    for phase in ("ringing", "answered", "ended"):
        assert (await rig.gw.ingest(signal("pbx-call-5", phase, source="pbx"))).status_code == 202
    await set_engagement(rig.gw, "pbx:pbx-call-5", 7105)
    service = rig.gw.gateway.recordings
    assert service is not None
    # CALL_TTL_SECONDS later: no user's call has the key any more (a broker that knows no call).
    monkeypatch.setattr(service, "_tracker", CallTracker(MemoryBroker(Settings()), Metrics()))
    media = await rig.gw.http.get(await rig.media_path("pbx:pbx-call-5"))
    assert media.content == WAV


async def test_a_pbx_call_nobody_answered_is_not_announced_as_recorded(rig: Rig) -> None:
    # The tenant's template names a file for every call; the PBX records only talk.
    for phase in ("ringing", "ended"):
        assert (await rig.gw.ingest(signal("pbx-call-3", phase, source="pbx"))).status_code == 202
    await set_engagement(rig.gw, "pbx:pbx-call-3", 7102)
    assert rig.hubspot.ready == []


async def test_a_pbx_call_that_rang_two_users_is_announced_on_the_engagement_of_the_one_who_answered(
    rig: Rig,
) -> None:
    for phase in ("ringing", "ended"):
        assert (await rig.gw.ingest(signal("pbx-call-4", phase, source="pbx"))).status_code == 202
    for phase in ("ringing", "answered", "ended"):
        body = signal("pbx-call-4", phase, source="pbx", user="bob")
        assert (await rig.gw.ingest(body)).status_code == 202
    await set_engagement(rig.gw, "pbx:pbx-call-4", 7103)  # Alice's widget logged her missed leg
    await set_engagement(rig.gw, "pbx:pbx-call-4", 7104, login="bob")
    assert rig.hubspot.ready == [(100, "7104")]


async def test_no_link_credential_or_presigned_query_is_logged(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    leg = "telnyx-leg-4"
    rig.telnyx.media[f"/recordings/{leg}.wav"] = WAV
    rig.telnyx.recordings["rec-4"] = f"/recordings/{leg}.wav"
    initiated = telnyx_body("call.initiated", leg, direction="incoming")
    await rig.post("/webhooks/telnyx/call-events", initiated, telnyx_headers(initiated))
    saved = telnyx_body(
        "call.recording.saved",
        leg,
        recording_id="rec-4",
        recording_urls={"wav": f"{rig.telnyx_url}/recordings/{leg}.wav?{rig.telnyx.presigned}"},
    )
    await rig.post("/webhooks/telnyx/call-events", saved, telnyx_headers(saved))
    telnyx_path = await rig.media_path(f"telnyx:{leg}")
    assert (await rig.gw.http.get(telnyx_path)).status_code == 200
    twilio_path = await rig.media_path(await twilio_call_with_recording(rig))
    assert (await rig.gw.http.get(twilio_path)).status_code == 200
    rig.pbx.media["/rec/pbx-call-4.wav"] = WAV
    await rig.gw.ingest(signal("pbx-call-4", "ringing", source="pbx"))
    pbx_path = await rig.media_path("pbx:pbx-call-4")
    assert (await rig.gw.http.get(pbx_path, headers={"range": "bytes=0-1"})).status_code == 206
    # What the gateway logged: every record but this test's own client's request lines.
    ours = [
        r.getMessage()
        for r in caplog.records
        if not (
            r.name == "httpx" and isinstance(r.args, tuple) and str(r.args[1]).startswith(rig.gw.base_url)
        )
    ]
    logged = "\n".join(ours)
    assert "HTTP Request: GET" in logged  # the gateway's fetches were logged by httpx, and are clean:
    secrets = ["X-Amz-Signature", TWILIO_TOKEN, PASSWORD, TELNYX_API_KEY, CLIENT_SECRET]
    secrets += [p.rpartition("/")[2] for p in (telnyx_path, twilio_path, pbx_path)]
    assert [s for s in secrets if s in logged] == []


async def test_recording_callbacks_are_counted_in_the_metrics(rig: Rig) -> None:
    await twilio_call_with_recording(rig)
    metrics = (await rig.gw.http.get("/metrics")).text
    assert 'gateway_recordings_total{outcome="accepted",provider="twilio"} 1.0' in metrics


async def test_with_redis_any_instance_serves_a_recording_another_received_and_hubspot_hears_once(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    twilio = TwilioApi()
    twilio.media[TWILIO_MEDIA + ".wav"] = WAV
    hubspot = HubSpotCalls()
    sid = "CA" + "8" * 32
    async with twilio.running() as twilio_url:
        settings = make_settings(
            tmp_path,
            **webhook_settings(),
            redis_url=redis_server.url,
            twilio_account_sid=ACCOUNT_SID,
            twilio_api_url=twilio_url,
            hubspot_client_secret=CLIENT_SECRET,
        )
        async with running_gateway(settings) as one, running_gateway(settings) as two:
            for gw in (one, two):
                service = gw.gateway.recordings
                assert service is not None
                service.announcer, service.records = DirectAnnouncer(hubspot), hubspot
            ringing, ring_headers = twilio_request(twilio_params(sid, "ringing"))
            await one.http.post("/webhooks/twilio/voice-status", content=ringing, headers=ring_headers)
            await set_engagement(two, f"twilio:{sid}", 9001)
            body, headers = twilio_recording(twilio_url, sid)
            answers = await asyncio.gather(
                one.http.post("/webhooks/twilio/recording-status", content=body, headers=headers),
                two.http.post("/webhooks/twilio/recording-status", content=body, headers=headers),
            )
            assert [a.status_code for a in answers] == [200, 200]
            media = await two.http.get(await media_path(two, f"twilio:{sid}"))
            assert media.content == WAV
    assert hubspot.ready == [(100, "9001")]
