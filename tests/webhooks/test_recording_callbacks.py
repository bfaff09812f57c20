"""Each provider's recording callback read into a recording (sans-I/O), per its documentation."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.sources.webhooks import dialled, telnyx, twilio, vonage
from gateway.sources.webhooks.common import DialTag, Ignored, WebhookError
from gateway.sources.webhooks.recording import RecordingEvent
from tests.support.cpaas import telnyx_body

TWILIO_URL = "https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE1"


def twilio_params(**extra: str) -> dict[str, str]:
    params = {
        "CallSid": "CA1",
        "RecordingSid": "RE1",
        "RecordingUrl": TWILIO_URL,
        "RecordingStatus": "completed",
        "RecordingChannels": "2",
    }
    params.update(extra)
    return params


def test_a_completed_twilio_recording_is_its_wav() -> None:
    assert twilio.recording(twilio_params()) == RecordingEvent(
        "twilio", "CA1", "RE1", TWILIO_URL + ".wav", "audio/wav", channels=2
    )


def test_a_twilio_recording_url_with_its_extension_is_kept_as_it_is() -> None:
    event = twilio.recording(twilio_params(RecordingUrl=TWILIO_URL + ".mp3"))
    assert isinstance(event, RecordingEvent)
    assert (event.media_url, event.content_type) == (TWILIO_URL + ".mp3", "audio/mpeg")


@pytest.mark.parametrize("status", ["in-progress", "absent", "failed", ""])
def test_a_twilio_recording_that_is_not_completed_is_ignored(status: str) -> None:
    assert isinstance(twilio.recording(twilio_params(RecordingStatus=status)), Ignored)


@pytest.mark.parametrize("url", ["", "ftp://x/y", "https://api.twilio.com/a b", "/relative"])
def test_a_twilio_recording_url_that_is_no_url_is_refused(url: str) -> None:
    with pytest.raises(WebhookError) as refused:
        twilio.recording(twilio_params(RecordingUrl=url))
    assert refused.value.status == 400


def saved(**payload: Any) -> bytes:
    base: dict[str, Any] = {
        "recording_id": "rec-1",
        "channels": "dual",
        "recording_urls": {"mp3": "https://s3.example/r.mp3?sig", "wav": "https://s3.example/r.wav?sig"},
        "public_recording_urls": {},
    }
    base.update(payload)
    return telnyx_body("call.recording.saved", "leg-1", **base)


def test_a_telnyx_recording_prefers_its_wav() -> None:
    event = telnyx.recording(saved())
    assert event == RecordingEvent(
        "telnyx", "leg-1", "rec-1", "https://s3.example/r.wav?sig", "audio/wav", channels=2
    )


def test_a_telnyx_public_recording_url_is_kept_before_the_presigned_one() -> None:
    event = telnyx.recording(saved(public_recording_urls={"mp3": "https://public.example/r.mp3"}))
    assert isinstance(event, RecordingEvent)
    assert (event.media_url, event.content_type) == ("https://public.example/r.mp3", "audio/mpeg")


def test_a_telnyx_recording_of_a_dialled_leg_belongs_to_the_dial() -> None:
    tag = DialTag("0123456789abcdef", dialled.TARGET_LEG)
    event = telnyx.recording(saved(client_state=dialled.client_state(tag)))
    assert isinstance(event, RecordingEvent)
    assert event.call_key == "dial:0123456789abcdef"


def test_a_telnyx_recording_without_urls_is_refused() -> None:
    with pytest.raises(WebhookError):
        telnyx.recording(saved(recording_urls={}, public_recording_urls=None))


def test_only_call_recording_saved_is_taken_for_a_recording() -> None:
    hangup = telnyx_body("call.hangup", "leg-1")
    assert telnyx.is_recording(saved()) and not telnyx.is_recording(hangup)
    assert not telnyx.is_recording(b"\xff")
    assert isinstance(telnyx.recording(hangup), Ignored)


def record_event(**extra: object) -> bytes:
    doc: dict[str, object] = {
        "recording_url": "https://api.nexmo.com/v1/files/f-1",
        "recording_uuid": "rec-1",
        "conversation_uuid": "CON-1",
        "start_time": "2026-12-01T10:00:00Z",
        "end_time": "2026-12-01T10:00:01Z",
        "size": 100,
    }
    doc.update(extra)
    return json.dumps(doc).encode()


def test_a_vonage_record_event_names_its_conversation() -> None:
    assert vonage.recording(record_event()) == RecordingEvent(
        "vonage", "", "rec-1", "https://api.nexmo.com/v1/files/f-1", "audio/mpeg", conversation_id="CON-1"
    )


def test_a_vonage_event_without_a_recording_url_is_ignored() -> None:
    assert isinstance(vonage.recording(json.dumps({"status": "completed"}).encode()), Ignored)


@pytest.mark.parametrize(
    "body", [b"[]", b"{", record_event(recording_url="x"), record_event(conversation_uuid=5)]
)
def test_a_malformed_vonage_record_event_is_refused(body: bytes) -> None:
    with pytest.raises(WebhookError):
        vonage.recording(body)


def test_a_vonage_status_event_pairs_its_leg_and_conversation() -> None:
    assert vonage.conversation(json.dumps({"uuid": "leg-1", "conversation_uuid": "CON-1"}).encode()) == (
        "leg-1",
        "CON-1",
    )
    assert vonage.conversation(json.dumps({"uuid": "leg-1"}).encode()) is None


@pytest.mark.parametrize(("given", "channels"), [(None, None), ("1", 1), ("2", 2), ("x", None), ("12", None)])
def test_twilio_recording_channels_are_read_when_they_are_one_digit(
    given: str | None, channels: int | None
) -> None:
    params = twilio_params()
    del params["RecordingChannels"]
    if given is not None:
        params["RecordingChannels"] = given
    event = twilio.recording(params)
    assert isinstance(event, RecordingEvent)
    assert event.channels == channels


@pytest.mark.parametrize("field", ["CallSid", "RecordingSid"])
def test_a_twilio_recording_without_its_ids_is_refused(field: str) -> None:
    params = twilio_params()
    del params[field]
    with pytest.raises(WebhookError):
        twilio.recording(params)


def test_a_single_channel_telnyx_recording_says_so() -> None:
    event = telnyx.recording(saved(channels="single"))
    assert isinstance(event, RecordingEvent)
    assert event.channels == 1


def test_a_telnyx_recording_without_its_id_is_named_by_the_event() -> None:
    doc = json.loads(saved())
    del doc["data"]["payload"]["recording_id"]
    event = telnyx.recording(json.dumps(doc).encode())
    assert isinstance(event, RecordingEvent)
    assert event.recording_id == doc["data"]["id"]


def test_a_telnyx_recording_without_a_leg_id_is_named_by_its_control_id() -> None:
    doc = json.loads(saved())
    del doc["data"]["payload"]["call_leg_id"]
    event = telnyx.recording(json.dumps(doc).encode())
    assert isinstance(event, RecordingEvent)
    assert event.call_id == "v3:leg-1"


def test_a_telnyx_recording_with_only_an_mp3_is_its_mp3() -> None:
    event = telnyx.recording(saved(recording_urls={"wav": "", "mp3": "https://s3.example/r.mp3?sig"}))
    assert isinstance(event, RecordingEvent)
    assert (event.media_url, event.content_type) == ("https://s3.example/r.mp3?sig", "audio/mpeg")


@pytest.mark.parametrize("body", [b"[]", b'{"data": []}', b'{"data": {"event_type": "call.hangup"}}'])
def test_a_telnyx_delivery_that_is_no_recording_event_is_not_taken_for_one(body: bytes) -> None:
    assert not telnyx.is_recording(body)
    assert isinstance(telnyx.recording(body), Ignored)


@pytest.mark.parametrize("body", [b"{", b'{"data": {"event_type": "call.recording.saved"}}'])
def test_a_malformed_telnyx_recording_event_is_refused(body: bytes) -> None:
    with pytest.raises(WebhookError) as refused:
        telnyx.recording(body)
    assert refused.value.status == 400


def test_a_vonage_record_event_with_the_legs_uuid_names_the_leg() -> None:
    event = vonage.recording(record_event(uuid="leg-1"))
    assert isinstance(event, RecordingEvent)
    assert (event.call_id, event.call_key) == ("leg-1", "vonage:leg-1")


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"[]",
        json.dumps({"uuid": "leg 1", "conversation_uuid": "CON-1"}).encode(),
        json.dumps({"uuid": 1, "conversation_uuid": "CON-1"}).encode(),
    ],
)
def test_a_vonage_status_event_without_a_clean_pair_gives_none(body: bytes) -> None:
    assert vonage.conversation(body) is None


def test_a_twilio_callback_without_a_status_is_ignored_saying_so() -> None:
    params = twilio_params()
    del params["RecordingStatus"]
    ignored = twilio.recording(params)
    assert isinstance(ignored, Ignored)
    assert ignored.reason == "RecordingStatus '' is not a completed recording"


def test_a_twilio_wav_url_is_not_given_a_second_extension() -> None:
    event = twilio.recording(twilio_params(RecordingUrl=TWILIO_URL + ".wav"))
    assert isinstance(event, RecordingEvent)
    assert event.media_url == TWILIO_URL + ".wav"


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("RecordingUrl", "RecordingUrl must be an absolute http(s) URL"),
        ("CallSid", "CallSid must be 1-128 printable characters"),
        ("RecordingSid", "RecordingSid must be 1-128 printable characters"),
    ],
)
def test_a_twilio_refusal_names_the_field(field: str, message: str) -> None:
    with pytest.raises(WebhookError) as refused:
        twilio.recording(twilio_params(**{field: ""}))
    assert (refused.value.status, refused.value.message) == (400, message)


def test_telnyx_recording_detection_answers_true_or_false() -> None:
    assert telnyx.is_recording(saved()) is True
    assert telnyx.is_recording(b"[]") is False
    assert telnyx.is_recording(b"{") is False


def test_a_telnyx_delivery_of_another_event_is_ignored_saying_so() -> None:
    ignored = telnyx.recording(telnyx_body("call.hangup", "leg-1"))
    assert isinstance(ignored, Ignored)
    assert ignored.reason == "not a call.recording.saved event"


def test_a_telnyx_recording_with_no_public_urls_at_all_uses_the_presigned_ones() -> None:
    event = telnyx.recording(saved(public_recording_urls=None))
    assert isinstance(event, RecordingEvent)
    assert event.media_url == "https://s3.example/r.wav?sig"


def test_a_telnyx_recording_without_urls_is_a_400_saying_so() -> None:
    with pytest.raises(WebhookError) as refused:
        telnyx.recording(saved(recording_urls={}, public_recording_urls={}))
    assert refused.value.status == 400
    assert refused.value.message == "neither recording_urls nor public_recording_urls has a wav or mp3"


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("call_leg_id", "call_leg_id must be 1-128 printable characters"),
        ("recording_id", "recording_id must be 1-128 printable characters"),
    ],
)
def test_a_telnyx_refusal_names_the_field(field: str, message: str) -> None:
    doc = json.loads(saved())
    payload = doc["data"]["payload"]
    payload[field] = " "
    payload.pop("call_control_id")
    doc["data"].pop("id")
    with pytest.raises(WebhookError) as refused:
        telnyx.recording(json.dumps(doc).encode())
    assert refused.value.message == message


def test_a_vonage_event_that_is_no_recording_is_ignored_saying_so() -> None:
    ignored = vonage.recording(json.dumps({"status": "completed"}).encode())
    assert isinstance(ignored, Ignored)
    assert ignored.reason == "not a recording event (no recording_url)"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[]", "body must be a JSON object"),
        (record_event(recording_url="x"), "recording_url must be an absolute http(s) URL"),
        (record_event(recording_uuid=""), "recording_uuid must be 1-128 printable characters"),
        (record_event(conversation_uuid=""), "conversation_uuid must be 1-128 printable characters"),
        (record_event(uuid=""), "uuid must be 1-128 printable characters"),
    ],
)
def test_a_vonage_refusal_names_the_field(body: bytes, message: str) -> None:
    with pytest.raises(WebhookError) as refused:
        vonage.recording(body)
    assert (refused.value.status, refused.value.message) == (400, message)


@pytest.mark.parametrize(
    "doc",
    [
        {"uuid": "leg-1", "conversation_uuid": 5},
        {"conversation_uuid": "CON-1"},
        {"uuid": "leg-1", "conversation_uuid": ""},
    ],
)
def test_a_vonage_status_event_missing_half_the_pair_gives_none(doc: dict[str, object]) -> None:
    assert vonage.conversation(json.dumps(doc).encode()) is None


def test_a_vonage_record_event_that_is_not_json_is_a_400() -> None:
    with pytest.raises(WebhookError) as refused:
        vonage.recording(b"{")
    assert refused.value.status == 400
