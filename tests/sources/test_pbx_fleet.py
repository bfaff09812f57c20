"""Several gateway processes on one Redis keep one connection per PBX (docs/pbx.md#several-instances).

Real ``gateway serve`` processes (so that one can be SIGKILLed or
SIGSTOPped), a real redis-server, the AMI and event socket stand-ins
(which count the sessions logged in), short ownership timings (heartbeat
0.2 s, TTL 1 s). Tenant 100 is an Asterisk box (AMI), tenant 200 a
FreeSWITCH box (ESL); alice has extension 1001 on the first, erin on the
second.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.dial.test_pbx_routes import ami_play, esl_play, late_play, users_phone_hung_up
from tests.support import ami_calls, esl_calls
from tests.support.fake_ami import FakeAmi, Fields
from tests.support.fake_esl import FakeEsl, Headers, create
from tests.support.fleet import TAKEOVER_LIMIT, Fleet, Instance, calls_of, fleet, password_hash
from tests.support.pbx_rig import TARGET
from tests.support.servers import RedisServer
from tests.support.sse import SseEvent, SseStream, summary


def users() -> list[dict[str, Any]]:
    return [
        {
            "id": login,
            "login": login,
            "tenant": tenant,
            "password_hash": password_hash(),
            "extension": "1001",
            "numbers": [number],
        }
        for login, tenant, number in (("alice", 100, "+15555550101"), ("erin", 200, "+15555550201"))
    ]


def tables(ami: FakeAmi, esl: FakeEsl) -> str:
    return (
        "[ami.100]\n"
        f'host = "127.0.0.1"\nport = {ami.port}\nusername = "{ami.username}"\nsecret = "{ami.secret}"\n'
        "retry_min_seconds = 0.05\nretry_max_seconds = 0.5\n"
        "[esl.200]\n"
        f'host = "127.0.0.1"\nport = {esl.port}\npassword = "{esl.password}"\n'
        "retry_min_seconds = 0.05\nretry_max_seconds = 0.5\n"
        '[dial.100]\nroute = "ami"\n[dial.200]\nroute = "esl"\n'
    )


@dataclass
class Pbx:
    """One of the two stand-ins, seen the same way: sessions now, most at once, logins so far."""

    label: str  # as /readyz names the connection
    user: str
    server: FakeAmi | FakeEsl

    def now(self) -> int:
        return self.server.logged_in

    def most(self) -> int:
        return self.server.most_logged_in

    def logins(self) -> int:
        return self.server.logins

    def listings(self) -> int:
        """How often the calls in progress were asked for (once per session that follows the calls)."""
        if isinstance(self.server, FakeAmi):
            return sum(1 for a in self.server.actions if a.get("Action") == "CoreShowChannels")
        return self.server.commands.count("api show channels as json")

    async def until(self, done: Callable[[], bool], timeout: float = 10.0) -> None:
        await self.server.until(done, timeout)

    def followed_again(self) -> Callable[[], bool]:
        """Whether a session after now logged in and asked for the calls in progress."""
        logins, listings = self.logins(), self.listings()
        return lambda: self.logins() > logins and self.listings() > listings

    def call(self) -> tuple[list[Fields] | list[Headers], list[Fields] | list[Headers]]:
        """An inbound call to the user's extension, answered: (until it rings, the rest)."""
        if isinstance(self.server, FakeAmi):
            script: list[Fields] | list[Headers] = ami_calls.inbound_answered()
            return script[:5], script[5:]
        script = esl_calls.inbound_answered()
        return script[:2], script[2:]

    def next_call(self) -> list[Fields] | list[Headers]:
        """The ring of another call to the same extension."""
        if isinstance(self.server, FakeAmi):
            trunk = ami_calls.trunk_in(11)
            return ami_calls.rings(trunk, ami_calls.phone("1001", 12, trunk.linkedid))[:1]
        other = "c3c3c3c3-0000-4000-8000-000000000003"
        return [create(esl_calls.phone("1001", 7, call=other))]

    async def emit(self, events: list[Fields] | list[Headers]) -> None:
        await self.server.emit(*events)


@contextlib.asynccontextmanager
async def pbx_fleet(
    tmp_path: Path,
    redis_server: RedisServer,
    count: int = 3,
    stand_ins: tuple[FakeAmi, FakeEsl] | None = None,
) -> AsyncIterator[tuple[Fleet, dict[str, Pbx]]]:
    """The fleet against the two stand-ins (``stand_ins``; by default each playing dials to the end)."""
    first, second = stand_ins or (ami_play(), esl_play())
    async with first.running() as ami, second.running() as esl:
        pbxes = {"ami": Pbx("ami 100", "alice", ami), "esl": Pbx("esl 200", "erin", esl)}
        async with fleet(tmp_path, redis_server, 0, users(), tables(ami, esl)) as group:
            await group.add(count)
            await settled(group, pbxes)
            yield group, pbxes


async def settled(group: Fleet, pbxes: dict[str, Pbx]) -> None:
    """Until every instance sees the others and each PBX has one session, held by one of them."""

    def one_session_each(details: list[str]) -> bool:
        held = {p.label: sum(f"{p.label}: logged in" in d for d in details) for p in pbxes.values()}
        return set(held.values()) == {1} and all(p.now() == 1 for p in pbxes.values())

    await group.shared("pbx", one_session_each, lambda: {k: p.now() for k, p in pbxes.items()})


async def holder(group: Fleet, pbx: Pbx) -> Instance:
    details = await group.details("pbx")
    (found,) = [i for i, d in zip(group.running(), details, strict=True) if f"{pbx.label}: logged in" in d]
    return found


@dataclass
class Ringing:
    holder: Instance  # of the PBX's connection
    stream: SseStream  # the user's, on another instance
    first: SseEvent  # incomingCall
    rest: list[Fields] | list[Headers]  # what the PBX says of the call after it rang


@contextlib.asynccontextmanager
async def ringing(group: Fleet, pbx: Pbx) -> AsyncIterator[Ringing]:
    """A call to the PBX's user rings, watched on an instance that does not hold the connection."""
    held_by = await holder(group, pbx)
    ring, rest = pbx.call()
    async with group.other_than(held_by).stream(pbx.user) as stream:
        await pbx.emit(ring)
        yield Ringing(held_by, stream, await stream.next(), rest)


async def test_three_instances_keep_one_session_with_each_pbx(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with pbx_fleet(tmp_path, redis_server) as (group, pbxes):
        details = await group.details("pbx")
    # Never two at once, also while they sorted it out (the first to start
    # takes both, then hands over those the hashing gives to another).
    assert [p.most() for p in pbxes.values()] == [1, 1]
    assert sum(d.startswith("0/2") for d in details) >= 1  # the others hold nothing


def assert_one_call_then_the_next(events: list[SseEvent], marker: SseEvent) -> None:
    """The call's four events under one id, each once; the next call is another."""
    assert summary(events) == ["incomingCall", "callAnswered", "callEnded:COMPLETED", "callCompleted"]
    assert len(calls_of(events)) == 1
    assert marker.json["type"] == "incomingCall" and calls_of([marker]) != calls_of(events)


@pytest.mark.parametrize("source", ["ami", "esl"])
async def test_when_the_holder_is_killed_another_connects_within_15_s_and_the_call_stays_one(
    tmp_path: Path, redis_server: RedisServer, source: str
) -> None:
    async with pbx_fleet(tmp_path, redis_server) as (group, pbxes):
        pbx = pbxes[source]
        async with ringing(group, pbx) as call:
            followed = pbx.followed_again()
            killed = group.kill(call.holder)
            await pbx.until(followed, TAKEOVER_LIMIT)
            took = time.monotonic() - killed
            await pbx.emit(call.rest)
            events = [call.first, *await call.stream.take(3)]
            await pbx.emit(pbx.next_call())  # a new call, and nothing came in between
            marker = await call.stream.next()
        new = await holder(group, pbx)
    print(f"{source}: connected again {took:.2f} s after the SIGKILL of its holder")
    assert took < TAKEOVER_LIMIT and new is not call.holder
    assert_one_call_then_the_next(events, marker)
    assert pbx.most() == 1


@pytest.mark.parametrize("source", ["ami", "esl"])
async def test_a_paused_holder_and_its_successor_both_connected_still_make_one_call_with_each_event_once(
    tmp_path: Path, redis_server: RedisServer, source: str
) -> None:
    async with pbx_fleet(tmp_path, redis_server) as (group, pbxes):
        pbx = pbxes[source]
        async with ringing(group, pbx) as call:
            followed = pbx.followed_again()
            call.holder.pause()  # its lease runs out while its session stays open
            try:
                await pbx.until(followed, TAKEOVER_LIMIT)
                assert pbx.now() == 2  # both sessions see what follows
                await pbx.emit(call.rest[:1])
            finally:
                call.holder.resume()  # it reads the events it missed, then learns it lost the lease
            await pbx.emit(call.rest[1:])
            events = [call.first, *await call.stream.take(3)]
            await pbx.until(lambda: pbx.now() == 1, TAKEOVER_LIMIT)
            await pbx.emit(pbx.next_call())
            marker = await call.stream.next()
    assert_one_call_then_the_next(events, marker)


async def test_a_stopped_holder_disconnects_and_another_connects_at_once(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with pbx_fleet(tmp_path, redis_server) as (group, pbxes):
        pbx = pbxes["ami"]
        leaving = await holder(group, pbx)
        logins = pbx.logins()
        stopped = time.monotonic()
        await leaving.stop()  # SIGTERM
        await pbx.until(lambda: pbx.logins() > logins and pbx.now() == 1)
        took = time.monotonic() - stopped
        await settled(group, pbxes)
    print(f"ami: connected again {took:.2f} s after SIGTERM of its holder")
    assert pbx.most() == 1  # the leaving one hung up before the next logged in
    assert took < 5


@pytest.mark.parametrize("source", ["ami", "esl"])
async def test_a_dial_from_an_instance_that_does_not_hold_the_pbx_is_one_call_followed_by_the_holder(
    tmp_path: Path, redis_server: RedisServer, source: str
) -> None:
    async with pbx_fleet(tmp_path, redis_server) as (group, pbxes):
        pbx = pbxes[source]
        held_by = await holder(group, pbx)
        elsewhere = group.other_than(held_by)
        assert elsewhere.http is not None
        async with elsewhere.stream(pbx.user) as stream:
            logins, listings = pbx.logins(), pbx.listings()
            response = await elsewhere.http.post(
                "/api/dial", json={"number": TARGET}, headers=await elsewhere.login(pbx.user)
            )
            events = await stream.take(4)
            # The dial's own session ends once the PBX said the user's phone answered.
            await pbx.until(lambda: pbx.now() == 1)
    assert response.status_code == 202, response.text
    assert summary(events) == ["outgoingCall", "callAnswered", "callEnded:COMPLETED", "callCompleted"]
    assert calls_of(events) == {response.json()["externalCallId"]}
    # One session more, for the dial, and it did not ask for the calls in progress.
    assert (pbx.logins(), pbx.listings()) == (logins + 1, listings)


@pytest.mark.parametrize("source", ["ami", "esl"])
async def test_a_dial_from_an_instance_that_does_not_hold_the_pbx_accepted_too_late_is_hung_up(
    tmp_path: Path, redis_server: RedisServer, source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The holder knows nothing of the dial: the dialling instance itself hangs the late call up."""
    monkeypatch.setenv("GATEWAY_DIAL_API_TIMEOUT_SECONDS", "3")
    pick_up = asyncio.Event()
    called: list[str] = []
    ami, esl = late_play("ami", pick_up, called), late_play("esl", pick_up, called)
    assert isinstance(ami, FakeAmi) and isinstance(esl, FakeEsl)
    async with pbx_fleet(tmp_path, redis_server, 2, (ami, esl)) as (group, pbxes):
        server = pbxes[source].server
        server.slow = asyncio.Event()
        elsewhere = group.other_than(await holder(group, pbxes[source]))
        assert elsewhere.http is not None
        async with elsewhere.stream(pbxes[source].user) as stream:
            response = await elsewhere.http.post(
                "/api/dial", json={"number": TARGET}, headers=await elsewhere.login(pbxes[source].user)
            )
            failed = await stream.take(3)
            server.slow.set()
            await server.until(lambda: users_phone_hung_up(server))
            pick_up.set()  # too late: the phone no longer rings
            await server.until(lambda: server.played == 1)
    assert response.status_code == 504, response.text
    assert summary(failed) == ["outgoingCall", "callEnded:FAILED", "callCompleted"]
    assert called == []


@pytest.mark.parametrize("source", ["ami", "esl"])
async def test_a_call_that_ends_while_no_instance_is_connected_is_ended_by_the_next_holder(
    tmp_path: Path, redis_server: RedisServer, source: str
) -> None:
    async with pbx_fleet(tmp_path, redis_server) as (group, pbxes):
        pbx = pbxes[source]
        async with ringing(group, pbx) as call:
            logins = pbx.logins()
            group.kill(call.holder)
            await pbx.until(lambda: pbx.now() == 0)
            await pbx.emit(call.rest)  # answered and hung up: nobody reads it
            assert pbx.logins() == logins  # still nobody connected
            events = [call.first, *await call.stream.take(2, timeout=TAKEOVER_LIMIT)]
    # Nobody saw the answer: ended with no cause, as a ring nobody took.
    assert summary(events) == ["incomingCall", "callEnded:MISSED", "callCompleted"]
    assert len(calls_of(events)) == 1
