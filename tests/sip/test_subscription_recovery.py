"""How a subscription recovers from what a PBX does wrong: paced, floored, and said in /readyz."""

from __future__ import annotations

import itertools
import logging
import time
from pathlib import Path

import pytest

from gateway.sources.sip.subscribe_rules import MIN_RESTART_SECONDS, backoff
from tests.support.fakepbx import FakePbx, FakeSubscription, dialog_info
from tests.support.sipkit import confirmed, ringing, sip_gateway, sip_table

# A document the gateway refuses every time: more dialogs than it accepts.
TOO_MANY_DIALOGS = [{"id": f"d{n}", "state": "confirmed"} for n in range(200)]


def _refused_every_time(sub: FakeSubscription) -> bytes:
    sub.version += 1
    return dialog_info(sub.aor, sub.version, TOO_MANY_DIALOGS)


async def test_a_body_refused_every_time_costs_one_refresh_per_backoff_step(tmp_path: Path) -> None:
    lo, hi, watched = 0.2, 0.8, 3.0
    async with FakePbx("udp") as pbx:
        pbx.notify_on_subscribe = _refused_every_time
        table = sip_table(pbx, retry_min_seconds=lo, retry_max_seconds=hi)
        async with sip_gateway(tmp_path, table):
            sub = await pbx.subscribed("1001")
            started = sub.accepted_at[0]
            # At least three refreshes, however slow a loaded machine makes them.
            while time.monotonic() - started < watched or len(sub.accepted_at) < 4:
                await pbx.subscribed("1001")
    refreshes = [at - started for at in sub.accepted_at[1:]]
    # The first refusal's refresh is prompt; each later one waits at least the
    # lower bound of one more backoff step (half its cap): 0.1, 0.2, 0.4, 0.4 s...
    floors = [backoff(n, lo, hi, rng=lambda: 0.0) for n in range(1, len(refreshes))]
    earliest = list(itertools.accumulate(floors, initial=0.0))
    assert all(at >= due for at, due in zip(refreshes, earliest, strict=True)), (refreshes, earliest)
    # Kept asking for full state, in steps; a storm is hundreds.
    assert len([at for at in refreshes if at <= watched]) <= 12


async def test_a_usable_document_makes_the_steps_short_again(tmp_path: Path) -> None:
    lo, hi = 0.1, 3.2
    async with FakePbx("udp") as pbx:
        pbx.notify_on_subscribe = _refused_every_time
        async with sip_gateway(tmp_path, sip_table(pbx, retry_min_seconds=lo, retry_max_seconds=hi)):
            sub = await pbx.subscribed("1001")
            for _ in range(3):  # the prompt refresh, then two steps
                await pbx.subscribed("1001")
            pbx.notify_on_subscribe = _usable  # for the refresh already due
            await pbx.subscribed("1001")
            for _ in range(5):
                assert (await pbx.auto_notify_answered()).status == 200
            pbx.notify_on_subscribe = _refused_every_time
            assert (await pbx.notify("1001", TOO_MANY_DIALOGS)).status == 200
            await pbx.subscribed("1001")  # when the step under way ends
            await pbx.subscribed("1001")
    # The first step again (0.05 to 0.1 s), not the fifth (0.8 s and more).
    assert sub.accepted_at[6] - sub.accepted_at[5] < 0.5  # 0: the first SUBSCRIBE; 5: the step under way


def _usable(sub: FakeSubscription) -> bytes:
    sub.version += 1
    return dialog_info(sub.aor, sub.version, [ringing("u1")])


async def test_a_dialog_listed_twice_in_a_notify_is_not_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakePbx("udp") as pbx, sip_gateway(tmp_path, sip_table(pbx)) as gw:
        token = await gw.login("alice")
        async with gw.stream(token) as stream:
            await pbx.subscribed("1001")
            with caplog.at_level(logging.WARNING, "gateway.sip"):
                assert (await pbx.notify("1001", [ringing("k1"), confirmed("k1")])).status == 200
            events = await stream.take(2)
        assert [(e.json["externalCallId"], e.json["type"]) for e in events] == [
            ("sip:k1", "incomingCall"),
            ("sip:k1", "callAnswered"),  # the later entry, confirmed, won
        ]
        assert not any("body refused" in r.getMessage() for r in caplog.records)


async def test_a_481_to_a_refresh_waits_the_restart_floor_before_subscribing_again(tmp_path: Path) -> None:
    async with FakePbx("udp") as pbx, sip_gateway(tmp_path, sip_table(pbx, pbx_extra={"expires": 1})):
        first = await pbx.subscribed("1001")
        pbx.restart()
        second = await pbx.subscribed("1001")
    refused_at = max(
        t for t, r in zip(pbx.request_times, pbx.requests, strict=True) if r.call_id == first.call_id
    )
    new_at = min(
        t for t, r in zip(pbx.request_times, pbx.requests, strict=True) if r.call_id == second.call_id
    )
    assert new_at - refused_at >= MIN_RESTART_SECONDS * 0.95


async def test_a_terminated_subscription_with_an_odd_retry_after_is_answered_200_and_backs_off(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakePbx("udp") as pbx, sip_gateway(tmp_path, sip_table(pbx)):
        first = await pbx.subscribed("1001")
        with caplog.at_level(logging.INFO):
            answer = await pbx.notify("1001", [], state="terminated;retry-after=\u00b2")
            assert answer.status == 200
            second = await pbx.subscribed("1001")
        assert second.call_id != first.call_id
        assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        ("terminated;reason=noresource", "terminated by the PBX (reason=noresource)"),
        ("terminated", "terminated by the PBX (reason=none given)"),
    ],
)
async def test_readyz_says_why_a_subscription_the_pbx_ended_is_down(
    tmp_path: Path, state: str, reason: str
) -> None:
    async with FakePbx("udp") as pbx, sip_gateway(tmp_path, sip_table(pbx)) as gw:
        await pbx.subscribed("1001")
        await pbx.subscribed("1002")
        assert (await pbx.notify("1001", [], state=state)).status == 200
        ready = await gw.http.get("/readyz")
    assert ready.status_code == 503
    detail = ready.json()["checks"]["sip"]["detail"]
    assert f"sip:1001@pbx.test: {reason}; subscribing again in " in detail, detail
