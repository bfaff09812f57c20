"""Redis losing its data mid-call costs no wrong call log.

A real redis-server without persistence is SIGKILLed and restarted empty on
the same port while calls ring and talk on two gateway instances; the calls
then go on. Each user's page (a stream that reconnects with
``Last-Event-ID``, as the browser's EventSource does) must see every SDK
event of a call once, and each call end with the status it earned.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from gateway.broker.redis import RedisBroker, recovery
from tests.support.harness import make_settings, running_gateway, signal
from tests.support.resuming import Page, pages, send
from tests.support.servers import RedisServer
from tests.support.slow_link import SlowLink


def duplicates(page: Page) -> int:
    """SDK events the page got more than once for one call (by type)."""
    return sum(len(events) - len({e["type"] for e in events}) for events in page.calls().values())


@pytest.mark.parametrize("comes_back", ["empty", "behind"])
async def test_redis_losing_data_mid_call_neither_re_announces_nor_mislabels_a_call(
    tmp_path: Path, redis_server: RedisServer, comes_back: str
) -> None:
    """``empty``: restarted without persistence. ``behind``: restarted from a
    snapshot taken before the answers, as a failover to a replica that
    lagged (the epoch key is there, Redis's run id is new)."""
    settings = make_settings(tmp_path, redis_url=redis_server.url)
    async with running_gateway(settings) as one, running_gateway(settings) as two:
        instances = (one, two)
        users = ("alice", "bob")
        alice = Page(one, await one.login("alice"))
        bob = Page(two, await two.login("bob"))
        by_user = {"alice": alice, "bob": bob}
        # Twelve calls, six per user, each signal entering through the other
        # instance than the one before: c0-c5 answered before the loss, the
        # rest still ringing.
        calls = [f"c{n}" for n in range(12)]

        def user(n: int) -> str:
            return users[n % 2]

        async with pages(alice, bob):
            for n, call in enumerate(calls):
                await send(instances[n % 2], signal(call, "ringing", user=user(n)))
            if comes_back == "behind":
                admin = aioredis.Redis.from_url(redis_server.url)
                await admin.save()  # dump.rdb, loaded again at the restart
                await admin.aclose()
            for n, call in enumerate(calls[:6]):
                await send(instances[(n + 1) % 2], signal(call, "answered", user=user(n)))
            for page in by_user.values():
                # Six calls each, three of them answered.
                await page.until(lambda p: len(p.events) == 6 + 3)

            redis_server.stop()  # SIGKILL: whatever was not in dump.rdb is gone
            redis_server.start()

            # After the loss: c0-c5 end (through the other instance again),
            # c6-c8 are answered and end, c9-c11 end unanswered.
            for n, call in enumerate(calls[:6]):
                await send(instances[n % 2], signal(call, "ended", user=user(n)))
            for n, call in enumerate(calls[6:9], start=6):
                await send(instances[(n + 1) % 2], signal(call, "answered", user=user(n)))
                await send(instances[n % 2], signal(call, "ended", user=user(n)))
            for n, call in enumerate(calls[9:], start=9):
                await send(instances[(n + 1) % 2], signal(call, "ended", user=user(n)))
            # A last call per user: once the page has it, it has everything before.
            for name in users:
                await send(one, signal(f"last-{name}", "ringing", user=name))
            for name, page in by_user.items():
                await page.until_call(f"ingest:last-{name}")

    expected = {f"ingest:{c}": "COMPLETED" if n < 9 else "MISSED" for n, c in enumerate(calls)}
    ended: dict[str, list[str]] = {}
    for page in (alice, bob):
        for call, events in page.calls().items():
            ended.setdefault(call, []).extend(
                e["payload"]["callEndStatus"] for e in events if e["type"] == "callEnded"
            )
    wrong = {c: ended.get(c) for c, status in expected.items() if ended.get(c) != [status]}
    counts = (duplicates(alice) + duplicates(bob), len(wrong))
    assert counts == (0, 0), f"duplicate SDK events, wrong end statuses: {counts}; {wrong}"
    # Resumed with an id from before the loss: what followed it there can
    # no longer be replayed, and the page is told so.
    assert alice.gaps >= 1 and bob.gaps >= 1


async def test_calls_wait_for_an_instance_whose_write_back_outlasts_the_window(
    tmp_path: Path,
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The window is a guess at how long the slowest instance takes to write
    # back; one that takes longer (a slow link to Redis here: at least 0.1 s
    # a pipeline, 40 of them) announces more time, and the other's calls
    # wait for it.
    monkeypatch.setattr(recovery, "_RECOVERY_SECONDS", 2.0)
    monkeypatch.setattr(recovery, "_RESTORE_BATCH", 1)
    async with (
        SlowLink(redis_server.port).running() as link,
        running_gateway(make_settings(tmp_path, redis_url=link.url)) as slow,
        running_gateway(make_settings(tmp_path, redis_url=redis_server.url)) as fast,
    ):
        for n in range(40):
            assert (await slow.ingest(signal(f"w{n}", "ringing"))).status_code == 202
        broker = fast.gateway.broker
        assert isinstance(broker, RedisBroker)
        epoch = broker._epoch
        link.delay = 0.05
        with caplog.at_level("WARNING", "gateway.broker.redis"):
            redis_server.stop()  # SIGKILL, then back empty
            redis_server.start()
            async with asyncio.timeout(10):
                while broker._epoch == epoch:  # noqa: ASYNC110  (found by the pub/sub task)
                    await asyncio.sleep(0.01)
            answer = await fast.ingest(signal("after", "ringing", user="bob"))
            written = [r.getMessage() for r in caplog.records if "40 calls remembered here" in r.getMessage()]
    assert answer.status_code == 202
    assert written, "a call advanced before the slow instance had written back"
