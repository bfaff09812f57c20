"""The whole dial loop against a CPaaS stand-in: the gateway, the provider's API, the user's stream.

``dial_loop`` starts a provider's stand-in (tests/support/*_api.py), then a
gateway whose route for tenant 100 is that provider, pointed at the
stand-in, and tells the stand-in where to deliver its webhooks.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.cpaas import webhook_settings
from tests.support.harness import Client, make_settings, running_gateway
from tests.support.sse import SseEvent
from tests.support.standin import StandIn
from tests.support.telnyx_api import TelnyxApi
from tests.support.twilio_api import TwilioApi
from tests.support.vonage_api import VonageApi, private_key_pem

TARGET = "+12125550100"
ALICE_PHONE = "+15555550101"


@dataclass
class Loop:
    gw: Client
    api: StandIn
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}


def twilio_settings(api: StandIn, url: str, wrong: bool, tmp: Path) -> dict[str, Any]:
    assert isinstance(api, TwilioApi)
    return {
        "twilio_account_sid": api.account_sid,
        "twilio_api_url": url,
        **({"twilio_auth_token": "f" * 32} if wrong else {}),
    }


def telnyx_settings(api: StandIn, url: str, wrong: bool, tmp: Path) -> dict[str, Any]:
    assert isinstance(api, TelnyxApi)
    return {
        "telnyx_api_key": "KEYwrong" if wrong else api.api_key,
        "telnyx_connection_id": api.connection_id,
        "telnyx_api_url": url,
    }


def vonage_settings(api: StandIn, url: str, wrong: bool, tmp: Path) -> dict[str, Any]:
    assert isinstance(api, VonageApi)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if wrong else api.key
    path = tmp / "vonage-private.key"
    path.write_bytes(private_key_pem(key))
    return {
        "vonage_application_id": api.application_id,
        "vonage_private_key_file": path,
        "vonage_api_url": url,
    }


PROVIDERS: dict[str, tuple[Callable[[], StandIn], Callable[[StandIn, str, bool, Path], dict[str, Any]]]] = {
    "twilio": (TwilioApi, twilio_settings),
    "telnyx": (TelnyxApi, telnyx_settings),
    "vonage": (VonageApi, vonage_settings),
}


@contextlib.asynccontextmanager
async def dial_loop(tmp_path: Path, provider: str, *, wrong_credentials: bool = False) -> AsyncIterator[Loop]:
    make_api, route_settings = PROVIDERS[provider]
    api = make_api()
    async with api.running() as url:
        settings = make_settings(
            tmp_path,
            **{**webhook_settings(), **route_settings(api, url, wrong_credentials, tmp_path)},
            dial_api_timeout_seconds=1.0,
            extra={"dial": {"100": {"route": provider}}},
        )
        async with running_gateway(settings) as gw:
            api.gateway_url = gw.base_url
            yield Loop(gw, api, await gw.login("alice"))
            # The provider finishes its calls while the gateway still listens.
            await api.idle()


async def dial_and_watch(loop: Loop, count: int, number: str = TARGET) -> tuple[Any, list[SseEvent]]:
    """Dial, take ``count`` events, let the provider finish the call; nothing more may come."""
    async with loop.gw.stream(loop.token) as stream:
        response = await loop.gw.http.post("/api/dial", json={"number": number}, headers=loop.auth)
        events = await stream.take(count)
        await loop.api.idle()
        assert stream.drain() == []
    assert [d.status for d in loop.api.delivered] == [200] * len(loop.api.delivered)
    return response, events
