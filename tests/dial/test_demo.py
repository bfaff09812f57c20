"""The demo route of ``./dev run``: each demo number plays its ending, as one dialled call."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from gateway.broker.memory import MemoryBroker
from gateway.dial import demo
from gateway.dial.policy import DialPolicy
from gateway.dial.routes import Routes
from gateway.dial.service import DialService
from gateway.dial.settings import DialSettings, TenantDial
from gateway.ops.metrics import Metrics
from gateway.tracker import CallTracker
from gateway.users.directory import User
from tests.support.harness import make_settings

ALICE = User("alice", "alice", 100, "x", numbers=("+15555550101",))


@pytest.mark.parametrize(
    ("number", "ending"),
    [
        (demo.DEMO_BUSY, "BUSY"),
        (demo.DEMO_NO_ANSWER, "NO_ANSWER"),
        (demo.DEMO_CANCELED, "CANCELED"),
        ("+12125550100", "COMPLETED"),
    ],
)
async def test_a_demo_number_ends_as_its_table_says(
    number: str, ending: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "DIAL_TIMING", {"ring": 0.05, "talk": 0.05, "no_answer": 0.05})
    broker = MemoryBroker(make_settings(tmp_path))
    metrics = Metrics()
    tracker = CallTracker(broker, metrics)
    route = demo.DemoDialler(tracker)
    routes = Routes()
    routes.register(route)
    service = DialService(tracker, routes, DialSettings({100: TenantDial("demo", DialPolicy())}), metrics)
    stream = await broker.subscribe(ALICE.id, None)
    try:
        dialled = await service.dial(ALICE, number)
        seen: list[dict[str, object]] = []
        async with asyncio.timeout(10):
            while not seen or seen[-1]["type"] != "callCompleted":
                seen.extend(json.loads(e.data) for e in await stream.wait(10))
    finally:
        await route.stop()
        await service.stop()
    ended = [e for e in seen if e["type"] == "callEnded"]
    assert {e["externalCallId"] for e in seen} == {dialled.call_key}
    assert [e["payload"] for e in ended] == [{"externalCallId": dialled.call_key, "callEndStatus": ending}]
