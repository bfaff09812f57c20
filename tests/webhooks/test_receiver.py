"""The webhook receiver on its own: a delivery's bytes to the tracker, no web framework."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gateway.broker.memory import MemoryBroker
from gateway.config import Settings
from gateway.ops.metrics import Metrics
from gateway.sources.context import SourceContext
from gateway.sources.webhooks.common import WebhookError
from gateway.sources.webhooks.receiver import Delivery, WebhookReceiver
from gateway.tracker import CallTracker
from gateway.users.directory import Directory
from tests.support.cpaas import (
    ALICE,
    BOB,
    TWILIO_URL,
    telnyx_body,
    telnyx_headers,
    twilio_params,
    twilio_request,
    users_directory,
    webhook_settings,
)


def receiver_with(directory: Directory, **settings: object) -> tuple[WebhookReceiver, CallTracker]:
    merged = replace(Settings(), **{**webhook_settings(), **settings})
    metrics = Metrics()
    tracker = CallTracker(MemoryBroker(merged), metrics)
    return WebhookReceiver(SourceContext(merged, tracker, metrics, lambda: directory)), tracker


def twilio_delivery(params: dict[str, str]) -> Delivery:
    body, headers = twilio_request(params)
    return Delivery(TWILIO_URL, headers, body)


async def test_a_signed_delivery_reaches_the_tracker_as_the_users_call() -> None:
    receiver, tracker = receiver_with(users_directory())
    outcome = await receiver.receive("twilio", twilio_delivery(twilio_params("CA1", "ringing")))
    assert (outcome.accepted, len(outcome.event_ids), outcome.ignored) == (1, 1, None)
    state = await tracker.get_call("alice", "twilio:CA1")
    assert state is not None and state.emitted == ("incomingCall",)


async def test_a_forged_delivery_is_refused_and_nothing_reaches_the_tracker() -> None:
    receiver, tracker = receiver_with(users_directory())
    params = twilio_params("CA1", "ringing")
    body, headers = twilio_request(params, token="not-the-account-token")
    with pytest.raises(WebhookError) as refused:
        await receiver.receive("twilio", Delivery(TWILIO_URL, headers, body))
    assert refused.value.status == 403
    assert await tracker.get_call("alice", "twilio:CA1") is None


async def test_a_delivery_for_nobodys_number_is_ignored_not_refused() -> None:
    receiver, _ = receiver_with(Directory())
    outcome = await receiver.receive("twilio", twilio_delivery(twilio_params("CA1", "ringing")))
    assert outcome.accepted == 0 and outcome.ignored is not None and ALICE in outcome.ignored


async def test_an_unconfigured_provider_says_which_setting_turns_it_on() -> None:
    receiver, _ = receiver_with(users_directory(), twilio_auth_token="")
    assert receiver.disabled_reason("twilio") == (
        "twilio webhooks are not configured: set GATEWAY_TWILIO_AUTH_TOKEN"
    )
    with pytest.raises(WebhookError) as refused:
        await receiver.receive("twilio", twilio_delivery(twilio_params("CA1", "ringing")))
    assert refused.value.status == 404


async def test_an_undirected_event_between_two_users_stays_with_the_user_holding_the_leg() -> None:
    receiver, tracker = receiver_with(users_directory())
    started = telnyx_body("call.initiated", "leg-1", src=ALICE, dst=BOB, direction="outgoing")
    await receiver.receive("telnyx", Delivery("", telnyx_headers(started), started))
    answered = telnyx_body("call.answered", "leg-1", src=ALICE, dst=BOB)
    await receiver.receive("telnyx", Delivery("", telnyx_headers(answered), answered))
    alice = await tracker.get_call("alice", "telnyx:leg-1")
    assert alice is not None and alice.emitted == ("outgoingCall", "callAnswered")
    assert await tracker.get_call("bob", "telnyx:leg-1") is None
