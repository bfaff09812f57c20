"""What a provider's webhook may join: only a dial of the user its own numbers name.

The dial's tag comes back from the provider (Twilio signs it in the URL;
Telnyx in the body; Vonage's query is beside its signed body), and is
believed only as far as the signed event agrees: another user's dial, or a
target leg calling another number, joins nothing. Telnyx's transfer on
answer is made once, and its refusal fails the dial.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlencode

import pytest

from gateway.sources.webhooks import dialled
from gateway.sources.webhooks.common import DialTag
from tests.support.cpaas import BOB, TWILIO_TOKEN, TWILIO_URL, twilio_params, twilio_sign
from tests.support.dial_loop import TARGET, dial_and_watch, dial_loop
from tests.support.sse import summary
from tests.support.standin import Script, StandIn
from tests.support.telnyx_api import TelnyxApi


async def forged_target_leg(api: StandIn, call_id: str, src: str, dst: str) -> tuple[int, object]:
    """A genuine, signed Twilio callback whose URL names ``call_id``'s dial."""
    url = f"{TWILIO_URL}?{dialled.query(DialTag(call_id, dialled.TARGET_LEG))}"
    params = twilio_params("CA" + "f" * 32, "ringing", direction="outbound-dial")
    params.update(From=src, To=dst, Caller=src, Called=dst)
    delivery = await api.deliver(
        url,
        urlencode(params).encode(),
        {
            "content-type": "application/x-www-form-urlencoded",
            "x-twilio-signature": twilio_sign(TWILIO_TOKEN, url, params),
        },
    )
    return delivery.status, delivery.body


async def test_a_webhook_naming_another_users_dial_joins_nothing(tmp_path: Path) -> None:
    async with dial_loop(tmp_path, "twilio") as loop:
        response, _ = await dial_and_watch(loop, 4)
        call_id = response.json()["externalCallId"].removeprefix("dial:")
        status, body = await forged_target_leg(loop.api, call_id, BOB, TARGET)
        assert await loop.gw.gateway.tracker.get_call("bob", "twilio:CA" + "f" * 32) is None
    assert (status, body) == (200, {"ignored": f"dial {call_id} is not a call bob dialled"})


async def test_a_target_leg_calling_another_number_joins_nothing(tmp_path: Path) -> None:
    async with dial_loop(tmp_path, "twilio") as loop:
        loop.api.scripts[TARGET] = Script(user="no-answer")
        response, _ = await dial_and_watch(loop, 3)
        call_id = response.json()["externalCallId"].removeprefix("dial:")
        status, body = await forged_target_leg(loop.api, call_id, "+15555550101", "+12125550199")
    assert (status, body) == (200, {"ignored": f"the target leg of dial {call_id} does not call {TARGET}"})


async def test_a_refused_transfer_fails_the_dial_and_hangs_up_the_users_phone(tmp_path: Path) -> None:
    async with dial_loop(tmp_path, "telnyx") as loop:
        loop.api.scripts[TARGET] = Script(connect_api=422)
        _, events = await dial_and_watch(loop, 3)
        assert isinstance(loop.api, TelnyxApi)
        actions = [action for action, _ in loop.api.commands]
    assert summary(events) == ["outgoingCall", "callEnded:FAILED", "callCompleted"]
    assert actions == ["transfer", "hangup"]


async def test_a_redelivered_answer_transfers_once(tmp_path: Path) -> None:
    async with dial_loop(tmp_path, "telnyx") as loop:
        _, events = await dial_and_watch(loop, 4)
        api = loop.api
        assert isinstance(api, TelnyxApi)
        user_leg = next(iter(api.legs.values()))
        await api.event(user_leg, "call.answered")
        await api.idle()
        transfers = [body for action, body in api.commands if action == "transfer"]
    assert summary(events) == ["outgoingCall", "callAnswered", "callEnded:COMPLETED", "callCompleted"]
    assert len(transfers) == 2 and transfers[0]["command_id"] == transfers[1]["command_id"]
    # The stand-in, as Telnyx does, ignored the repeated command: one target leg only.
    assert len(api.legs) == 2


async def test_no_credential_is_logged_when_the_provider_refuses_them(
    tmp_path: Path, provider: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with dial_loop(tmp_path, provider, wrong_credentials=True) as loop:
        await dial_and_watch(loop, 3)
        settings = loop.gw.gateway.settings
    secrets = [settings.twilio_auth_token, settings.telnyx_api_key]
    assert "refused the gateway's credentials" in caplog.text
    assert [s for s in secrets if s and s in caplog.text] == []
