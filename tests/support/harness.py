"""A running gateway for integration tests, and what a client does with it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import httpx

from gateway.assemble import build_app, build_gateway
from gateway.auth.ingest_signature import sign
from gateway.auth.passwords import hash_password
from gateway.config import Settings
from gateway.http.server import server_config
from gateway.hubspot.crm import CallRecords
from gateway.runtime import Gateway
from tests.support.logcheck import LogWatch
from tests.support.servers import serve, write_users
from tests.support.sse import SseStream

INGEST_SECRET = "ingest-secret-for-tests-0123456789"
TOKEN_SECRET = "token-secret-for-tests-0123456789"
PASSWORDS = {"alice": "alice-password", "bob": "bob-password"}


@cache
def _hash(password: str) -> str:
    return hash_password(password)


def test_users() -> list[dict[str, Any]]:
    return [
        {
            "login": "alice",
            "tenant": 100,
            "hubspot_user_id": 501,
            "display_name": "Alice Example",
            "password_hash": _hash(PASSWORDS["alice"]),
            "aors": ["sip:1001@pbx.test"],
            "numbers": ["+15555550101"],
        },
        {
            "login": "bob",
            "tenant": 100,
            "hubspot_user_id": 502,
            "password_hash": _hash(PASSWORDS["bob"]),
            "aors": ["sip:1002@pbx.test"],
            "numbers": ["+15555550102"],
        },
    ]


def make_settings(tmp: Path, **overrides: Any) -> Settings:
    users_file = tmp / "users.json"
    if not users_file.exists():
        write_users(users_file, test_users())
    base = Settings(
        users_file=users_file,
        secret=TOKEN_SECRET,
        ingest_secret=INGEST_SECRET,
        heartbeat_seconds=1.0,
        # The page logs a call this long after it ended when nobody wraps it
        # up; tests that wait for CALL_COMPLETED should not wait two minutes.
        wrap_up_seconds=1,
    )
    return replace(base, **overrides)


class Client:
    """What a browser or a PBX script does against one running gateway."""

    def __init__(self, base_url: str, gateway: Gateway) -> None:
        self.base_url = base_url
        self.gateway = gateway
        self.http = httpx.AsyncClient(base_url=base_url, timeout=10)

    async def login(self, login: str, password: str | None = None, **extra: Any) -> str:
        response = await self.http.post(
            "/api/login", json={"login": login, "password": password or PASSWORDS[login], **extra}
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["token"]
        return token

    async def ingest(
        self,
        payload: Any,
        *,
        secret: str = INGEST_SECRET,
        timestamp: int | None = None,
        raw: bytes | None = None,
    ) -> httpx.Response:
        body = raw if raw is not None else json.dumps(payload).encode()
        ts = int(time.time()) if timestamp is None else timestamp
        return await self.http.post(
            "/api/ingest",
            content=body,
            headers={
                "content-type": "application/json",
                "x-gateway-timestamp": str(ts),
                "x-gateway-signature": sign(secret, ts, body),
            },
        )

    def stream(self, token: str | None, last_event_id: str | None = None, query: str = "") -> SseStream:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        if last_event_id:
            headers["last-event-id"] = last_event_id
        return SseStream(self.http, "/api/stream" + query, headers)

    async def stream_ticket(self, token: str) -> str:
        response = await self.http.post("/api/stream-ticket", headers={"authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        ticket: str = response.json()["ticket"]
        return ticket

    async def open_stream(self, query: str) -> tuple[int, dict[str, Any]]:
        """How GET /api/stream answers (the error when refused); a stream that opens is closed at once."""
        async with self.http.stream("GET", "/api/stream" + query) as response:
            if response.status_code == 200:
                return 200, {}
            await response.aread()
            body: dict[str, Any] = response.json()
            return response.status_code, body

    async def until_ready(self, seconds: float = 10) -> None:
        """Poll /readyz (nothing to await: readiness is only observable) until 200."""
        for _ in range(int(seconds * 10)):
            if (await self.http.get("/readyz")).status_code == 200:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"gateway not ready after {seconds} s")

    async def aclose(self) -> None:
        await self.http.aclose()


@contextlib.asynccontextmanager
async def running_gateway(
    settings: Settings, call_records: CallRecords | None = None
) -> AsyncIterator[Client]:
    """The gateway served as `gateway serve` serves it, on a free loopback port.

    ``call_records`` is HubSpot's CRM for the call logger (with a ``[hubspot]`` table).

    When it stops, the test fails if it logged a traceback or an ERROR
    that the test did not declare (``tests.support.logcheck.expect_log``).
    """
    gw = build_gateway(settings, call_records=call_records)
    app = build_app(settings, gw)
    config = server_config(app, settings, host="127.0.0.1", port=0, log_level="warning", graceful_seconds=1)
    watch = LogWatch()
    with watch.installed():
        async with serve(config) as base_url:
            client = Client(base_url, gw)
            try:
                yield client
            finally:
                await client.aclose()
    # Not reached when the test failed already: that failure says more.
    watch.check()


def signal(
    call_id: str, phase: str, *, user: str = "alice", direction: str = "inbound", **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"callId": call_id, "user": user, "direction": direction, "phase": phase}
    if phase == "ringing" and direction == "inbound":
        body.setdefault("from", "+15555550199")
        body.setdefault("to", "+15555550101")
    body.update(extra)
    return body
