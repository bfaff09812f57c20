"""A gateway against a PBX stand-in, for AMI and the event socket alike: a connection's life.

Connecting, logging in, learning the calls in progress, reconnecting with
a back-off, stopping: ``gateway.sources.pbxlink`` does it for both kinds,
so each test runs against the AMI stand-in (tests/support/fake_ami.py) and
the event socket's (fake_esl.py); tests/support/pbx_kinds.py gives what
differs. What each protocol does alone is in tests/sources/ami/ and esl/.
Every test watches alice's page (her SSE stream), so what is asserted is
what HubSpot would be told.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.sources.pbxlink import Backoff
from tests.support.logcheck import expect_log
from tests.support.pbx_kinds import KINDS, PbxKind
from tests.support.pbx_rig import Rig, synced
from tests.support.pbx_rig import rig as pbx_rig
from tests.support.servers import RedisServer
from tests.support.sse import SseEvent, summary

ANSWERED = ["incomingCall", "callAnswered", "callEnded:COMPLETED", "callCompleted"]


@pytest.fixture(params=KINDS, ids=repr)
def kind(request: pytest.FixtureRequest) -> PbxKind[Any]:
    found: PbxKind[Any] = request.param
    return found


@contextlib.asynccontextmanager
async def rig(
    tmp_path: Path, kind: PbxKind[Any], pbx: Any = None, *, late: bool = False, **extra: Any
) -> AsyncIterator[Rig[Any]]:
    """The rig (tests/support/pbx_rig.py) with the kind's stand-in, unless the test brings its own."""
    async with pbx_rig(tmp_path, pbx or kind.stand_in(), late=late, **extra) as r:
        yield r


async def test_an_inbound_call_reaches_the_users_page_with_the_caller(
    tmp_path: Path, kind: PbxKind[Any]
) -> None:
    async with rig(tmp_path, kind) as r:
        await synced(r.conn, 1)
        await r.pbx.emit(*kind.answered())
        events = await r.stream.take(4)
    assert summary(events) == ANSWERED
    assert events[0].json["payload"]["fromNumber"] == kind.caller


async def test_a_call_in_progress_when_connecting_is_learnt(tmp_path: Path, kind: PbxKind[Any]) -> None:
    pbx = kind.stand_in()
    script = kind.answered()
    await pbx.emit(*script[:-2])  # nobody listens yet: the PBX just has the channels
    async with rig(tmp_path, kind, pbx, late=True) as r:
        events = await r.stream.take(2)
        await r.pbx.emit(*script[-2:])
        events += await r.stream.take(2)
    assert summary(events) == ANSWERED


async def across(
    r: Rig[Any], kind: PbxKind[Any], break_off: Callable[[], Awaitable[None]]
) -> tuple[list[SseEvent], list[SseEvent]]:
    """Alice's call answered, the session broken off, the call hung up in the next one.

    What her page was told, and anything told after.
    """
    script = kind.answered()
    await synced(r.conn, 1)
    await r.pbx.emit(*script[:-2])
    events = await r.stream.take(2)
    await break_off()
    await synced(r.conn, 2)
    await r.pbx.emit(*script[-2:])
    events += await r.stream.take(2)
    await asyncio.sleep(0)
    return events, r.stream.drain()


async def test_a_reconnect_mid_call_tells_nothing_twice(tmp_path: Path, kind: PbxKind[Any]) -> None:
    async with rig(tmp_path, kind) as r:
        events, rest = await across(r, kind, r.pbx.drop)
    assert summary(events) == ANSWERED
    assert (rest, r.pbx.logins) == ([], 2)


async def test_a_call_that_ended_while_disconnected_ends_on_reconnect(
    tmp_path: Path, kind: PbxKind[Any]
) -> None:
    script = kind.answered()
    async with rig(tmp_path, kind, retry_min_seconds=0.3, retry_max_seconds=0.5) as r:
        await synced(r.conn, 1)
        await r.pbx.emit(*script[:-2])
        events = await r.stream.take(2)
        await r.pbx.drop()
        await r.pbx.emit(*script[-2:])  # hung up while the gateway was away
        await synced(r.conn, 2)
        events += await r.stream.take(2)
    assert summary(events) == ANSWERED


async def test_calls_in_progress_the_pbx_will_not_list_stay_known_and_end_as_they_do(
    tmp_path: Path, kind: PbxKind[Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Not listed is not ended: the call ends BUSY as the PBX says, not as missed at the reconnect."""
    ring, rest = kind.busy_after_ringing()
    async with rig(tmp_path, kind) as r:
        await synced(r.conn, 1)
        await r.pbx.emit(*ring)
        events = await r.stream.take(1)
        r.pbx.refuse_listing = True
        await r.pbx.drop()
        await synced(r.conn, 2)
        await r.pbx.emit(*rest)
        events += await r.stream.take(2)
    assert summary(events) == ["incomingCall", "callEnded:BUSY", "callCompleted"]
    assert [rec for rec in caplog.records if "calls in progress unknown" in rec.getMessage()]


@contextlib.contextmanager
def logged(logger: str, text: str) -> Iterator[asyncio.Event]:
    """Set once ``logger`` logs a line holding ``text``: what the gateway did, where nothing else shows it."""
    seen = asyncio.Event()

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if text in record.getMessage():
                seen.set()

    watch = Watch()
    logging.getLogger(logger).addHandler(watch)
    try:
        yield seen
    finally:
        logging.getLogger(logger).removeHandler(watch)


async def test_a_call_event_the_broker_could_not_take_reaches_the_page_when_the_connection_is_back(
    tmp_path: Path, kind: PbxKind[Any], redis_server: RedisServer
) -> None:
    """Kept while Redis was down, sent with the next session's list of calls, before the call's next event."""
    ring, rest = kind.busy_after_ringing()
    async with rig(tmp_path, kind, settings={"redis_url": redis_server.url}) as r:
        await synced(r.conn, 1)
        redis_server.stop()
        with logged(kind.logger, "signals kept for later") as kept:
            await r.pbx.emit(*ring)
            await asyncio.wait_for(kept.wait(), 10)
        redis_server.start()
        await r.gw.until_ready()
        token = await r.gw.login("alice")
        async with r.gw.stream(token) as stream:  # as the browser does: a new stream
            sessions = r.conn.sessions
            await r.pbx.drop()
            await synced(r.conn, sessions + 1)
            events = await stream.take(1)
            await r.pbx.emit(*rest)
            events += await stream.take(2)
            await asyncio.sleep(0)
            again = stream.drain()
    assert summary(events) == ["incomingCall", "callEnded:BUSY", "callCompleted"]
    assert again == []


async def test_a_pbx_restart_is_survived_by_connecting_again_with_back_off(
    tmp_path: Path, kind: PbxKind[Any]
) -> None:
    async with rig(tmp_path, kind) as r:
        await synced(r.conn, 1)
        port = r.pbx.port
        await r.pbx.stop()
        await asyncio.wait_for(r.conn.until_failed(3), 10)  # the PBX is down: attempts fail
        await r.pbx.start()
        assert r.pbx.port == port
        await synced(r.conn, 2)
        await r.pbx.emit(*kind.busy())
        events = await r.stream.take(3)
    assert summary(events) == ["incomingCall", "callEnded:BUSY", "callCompleted"]


def test_the_back_off_doubles_to_its_ceiling_and_starts_over_after_a_session() -> None:
    backoff = Backoff(0.5, 3.0)
    waits = [backoff.next() for _ in range(5)]
    backoff.reset()
    assert (waits, backoff.next()) == ([0.5, 1.0, 2.0, 3.0, 3.0], 0.5)


async def test_a_refused_login_is_logged_and_tried_again(tmp_path: Path, kind: PbxKind[Any]) -> None:
    with expect_log(kind.logger, kind.refused):
        wrong: dict[str, Any] = {kind.secret: "not-what-the-pbx-has"}
        async with rig(tmp_path, kind, **wrong) as r:
            await r.pbx.until(lambda: r.pbx.refused_logins >= 2)
    assert r.conn.sessions == 0


async def test_garbage_is_skipped_and_the_next_call_still_arrives(tmp_path: Path, kind: PbxKind[Any]) -> None:
    async with rig(tmp_path, kind) as r:
        await synced(r.conn, 1)
        await r.pbx.send_raw(kind.garbage)
        await r.pbx.emit(*kind.cancelled())
        events = await r.stream.take(3)
    assert summary(events) == ["incomingCall", "callEnded:MISSED", "callCompleted"]
    assert r.conn.malformed == 2 and r.pbx.logins == 1


async def test_bytes_past_the_limits_drop_the_connection_which_is_made_again(
    tmp_path: Path, kind: PbxKind[Any]
) -> None:
    async with rig(tmp_path, kind) as r:
        await synced(r.conn, 1)
        await r.pbx.send_raw(kind.oversized)
        await synced(r.conn, 2)
        await r.pbx.emit(*kind.cancelled())
        events = await r.stream.take(3)
    assert summary(events) == ["incomingCall", "callEnded:MISSED", "callCompleted"]


async def test_the_connection_shows_in_the_metrics_while_logged_in(
    tmp_path: Path, kind: PbxKind[Any]
) -> None:
    async with rig(tmp_path, kind) as r:
        await synced(r.conn, 1)
        up = (await r.gw.http.get("/metrics")).text
        await r.pbx.stop()
        await asyncio.wait_for(r.conn.until_failed(1), 10)
        down = (await r.gw.http.get("/metrics")).text
    assert f'gateway_pbx_connected{{source="{kind.name}",tenant="100"}} 1.0' in up
    assert f'gateway_pbx_connected{{source="{kind.name}",tenant="100"}} 0.0' in down


async def test_the_secret_is_in_no_log_line(
    tmp_path: Path, kind: PbxKind[Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with expect_log(kind.logger, kind.refused):
        plain: dict[str, Any] = {**kind.plain, kind.secret: "the-secret-never-logged"}
        async with rig(tmp_path, kind, **plain) as r:
            await asyncio.wait_for(r.conn.until_failed(1), 10)  # the refusal logged
    assert kind.secrets_sent(r.pbx)[:1] == ["the-secret-never-logged"]
    assert not [rec for rec in caplog.records if "the-secret-never-logged" in rec.getMessage()]


async def test_a_connection_stopped_and_started_again_tells_nothing_twice(
    tmp_path: Path, kind: PbxKind[Any]
) -> None:
    """What ownership per tenant does when this instance gives a PBX up and takes it back."""

    async def stop_and_start() -> None:
        await r.conn.stop()
        assert not r.conn.connected.is_set()
        await r.conn.start()

    async with rig(tmp_path, kind) as r:
        events, rest = await across(r, kind, stop_and_start)
    assert summary(events) == ANSWERED
    assert rest == []


async def test_a_stop_lost_in_a_failed_attempt_still_stops_the_connection(
    tmp_path: Path, kind: PbxKind[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python 3.11's wait_for can swallow a cancel when what it waited for fails at that moment."""

    async def attempt_failing_as_it_is_stopped() -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0)  # the cancel delivered, and swallowed as wait_for does
        raise ConnectionRefusedError("the PBX refused the login")

    async with rig(tmp_path, kind) as r:
        await synced(r.conn, 1)
        await r.conn.stop()
        monkeypatch.setattr(r.conn, "_session", attempt_failing_as_it_is_stopped)
        await r.conn.start()
        running = r.conn._task
        assert running is not None
        await asyncio.wait([running], timeout=5)
        stopped = running.done() and running.cancelled()
        monkeypatch.undo()  # a connection that did not stop connects for real, and stops
    assert stopped
