"""The dial service on real brokers: one call from the click to the log.

What telephony reports joins the dialled call: by the pending-dial match or
an exact correlation, before or after the route returned, on another
instance, and on a retried request. Signals go through the real tracker and
broker (memory, and one redis-server shared by two instances).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gateway.assemble import dial_deadlines
from gateway.broker.base import Broker
from gateway.broker.memory import MemoryBroker
from gateway.broker.redis import RedisBroker
from gateway.broker.stream_queue import StreamQueue
from gateway.config import Settings
from gateway.dial.cpaas import RingsUserNumber
from gateway.dial.policy import DialPolicy
from gateway.dial.ratelimit import RateLimit
from gateway.dial.routes import DialPlan, DialRefused, Placed, Refusal, Routes
from gateway.dial.service import DialService
from gateway.dial.settings import DialSettings, TenantDial
from gateway.model import CallState, Direction, EndStatus, Phase, Signal
from gateway.ops.metrics import Metrics
from gateway.tracker import BrokerUnavailable, CallTracker
from gateway.users.directory import User
from tests.support.harness import make_settings
from tests.support.servers import RedisServer

ALICE = User("alice", "alice", 100, "x", numbers=("+15555550101",))
TARGET = "+12125550100"


@dataclass
class Route(RingsUserNumber):
    """A route as the CPaaS and SIP builders will write them, with telephony played by the test."""

    match_seconds: float = 30.0
    ring_seconds: float = 30.0
    name: str = "test"
    # False: a PBX's, which presents a caller id of its own to a user without a number.
    needs_caller_id: bool = True
    joins: tuple[str, ...] = ()
    refuse: str | None = None
    # Telephony that reports while the route is still placing the call.
    during: Callable[[DialPlan], Awaitable[None]] | None = None
    placed: list[DialPlan] = field(default_factory=list)

    def refusal_for(self, user: User) -> Refusal | None:
        # A PBX's route rings the user's extension, not a number of theirs.
        return None if not self.needs_caller_id else super().refusal_for(user)

    async def place(self, plan: DialPlan) -> Placed:
        self.placed.append(plan)
        if self.during is not None:
            await self.during(plan)
        if self.refuse is not None:
            raise DialRefused.by_route(self.refuse)
        return Placed(reference="P-1", joins=self.joins)


@dataclass
class Instance:
    broker: Broker
    tracker: CallTracker
    service: DialService
    metrics: Metrics

    async def report(
        self,
        call_id: str,
        phase: Phase,
        *,
        source: str = "sip",
        to: str = TARGET,
        direction: Direction = Direction.OUTBOUND,
        end: EndStatus | None = None,
        dial_key: str | None = None,
    ) -> None:
        """What a source hands the tracker when telephony reports the call."""
        signal = Signal(
            source=source,
            call_id=call_id,
            user_id=ALICE.id,
            direction=direction,
            phase=phase,
            at_ms=int(time.time() * 1000),
            from_number="1001" if direction is Direction.OUTBOUND else to,
            to_number=to if direction is Direction.OUTBOUND else "1001",
            end_status=end,
        )
        await self.tracker.observe(signal, dial_key=dial_key)

    async def call(self, key: str) -> CallState | None:
        return await self.tracker.get_call(ALICE.id, key)


async def _instance(
    broker: Broker, route: Route, policy: DialPolicy | None = None, on_redis: Settings | None = None
) -> Instance:
    metrics = Metrics()
    tracker = CallTracker(broker, metrics)
    routes = Routes()
    routes.register(route)
    settings = DialSettings({100: TenantDial(route.name, policy or DialPolicy())})
    # On Redis the deadlines are shared, as assemble.py builds them.
    store = dial_deadlines(on_redis) if on_redis is not None else None
    # No margin beyond the route's ring time: the tests' routes set it short.
    service = DialService(
        tracker,
        routes,
        settings,
        metrics,
        deadline_margin_seconds=0.0,
        deadlines=store,
        deadline_poll_seconds=0.02,
    )
    await service.start()
    return Instance(broker, tracker, service, metrics)


@contextlib.asynccontextmanager
async def instances(
    kind: str, tmp_path: Path, redis: RedisServer | None, route: Route, count: int = 1
) -> AsyncIterator[list[Instance]]:
    if kind == "memory":
        assert count == 1
        broker: Broker = MemoryBroker(make_settings(tmp_path))
        made = [await _instance(broker, route)]
        try:
            yield made
        finally:
            await made[0].service.stop()
        return
    assert redis is not None
    settings = make_settings(tmp_path, redis_url=redis.url)
    brokers = [RedisBroker(settings) for _ in range(count)]
    for broker in brokers:
        await broker.start()
    for broker in brokers:
        await until_healthy(broker)
    made = [await _instance(broker, route, on_redis=settings) for broker in brokers]
    try:
        yield made
    finally:
        for instance in made:
            # Stopped before (as a test's instance that dies) is stopped again harmlessly.
            await instance.service.stop()
            await instance.broker.close()


async def until_healthy(broker: Broker, seconds: float = 10) -> None:
    """Poll the broker (nothing to await: its pub/sub link is only observable) until up."""
    for _ in range(int(seconds * 100)):
        if await broker.ping():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"redis broker not healthy after {seconds} s")


@pytest.fixture(params=["memory", "redis"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def redis(kind: str, request: pytest.FixtureRequest) -> RedisServer | None:
    if kind == "memory":
        return None
    server: RedisServer = request.getfixturevalue("redis_server")
    return server


DONE = ("outgoingCall", "callAnswered", "callEnded", "callCompleted")


async def test_the_call_exists_with_its_outgoing_call_before_the_route_is_asked(
    kind: str, tmp_path: Path, redis: RedisServer | None
) -> None:
    seen: list[CallState | None] = []

    async def look(plan: DialPlan) -> None:
        seen.append(await gw.call(plan.call_key))

    async with instances(kind, tmp_path, redis, Route(during=look)) as (gw,):
        dialled = await gw.service.dial(ALICE, "(212) 555-0100")
    assert (dialled.number, dialled.caller_id) == (TARGET, "+15555550101")
    assert seen[0] is not None and seen[0].emitted == ("outgoingCall",)
    assert seen[0].call_key == dialled.call_key


async def test_telephony_reporting_after_the_dial_joins_it_by_the_pending_match(
    kind: str, tmp_path: Path, redis: RedisServer | None
) -> None:
    async with instances(kind, tmp_path, redis, Route()) as (gw,):
        dialled = await gw.service.dial(ALICE, TARGET)
        await gw.report("pbx-1", Phase.RINGING)
        await gw.report("pbx-1", Phase.ENDED, end=EndStatus.BUSY)
        state = await gw.call(dialled.call_key)
        assert await gw.call("sip:pbx-1") is None
    assert state is not None
    assert state.emitted == ("outgoingCall", "callEnded", "callCompleted")
    assert state.end_status() is EndStatus.BUSY


async def test_telephony_reporting_before_the_route_returned_joins_the_dial(
    kind: str, tmp_path: Path, redis: RedisServer | None
) -> None:
    async def answer_at_once(plan: DialPlan) -> None:
        await gw.report("pbx-2", Phase.RINGING)
        await gw.report("pbx-2", Phase.ANSWERED)

    async with instances(kind, tmp_path, redis, Route(during=answer_at_once)) as (gw,):
        dialled = await gw.service.dial(ALICE, TARGET)
        await gw.report("pbx-2", Phase.ENDED, end=EndStatus.COMPLETED)
        state = await gw.call(dialled.call_key)
    assert state is not None and state.emitted == DONE
    assert state.end_status() is EndStatus.COMPLETED


async def test_a_source_naming_the_dialled_call_joins_it_exactly(
    kind: str, tmp_path: Path, redis: RedisServer | None
) -> None:
    async def webhook_first(plan: DialPlan) -> None:
        await gw.report("CA1", Phase.RINGING, source="twilio", dial_key=plan.call_key)

    route = Route(match_seconds=0, during=webhook_first)
    async with instances(kind, tmp_path, redis, route) as (gw,):
        dialled = await gw.service.dial(ALICE, TARGET)
        # Later reports need not name it again: the first one bound the call.
        await gw.report("CA1", Phase.ENDED, source="twilio", end=EndStatus.NO_ANSWER)
        state = await gw.call(dialled.call_key)
        assert await gw.call("twilio:CA1") is None
    assert state is not None and state.end_status() is EndStatus.NO_ANSWER
    assert state.emitted == ("outgoingCall", "callEnded", "callCompleted")


async def test_call_keys_the_route_returns_are_bound_to_the_dial(
    kind: str, tmp_path: Path, redis: RedisServer | None
) -> None:
    route = Route(match_seconds=0, joins=("telnyx:v3-abc",))
    async with instances(kind, tmp_path, redis, route) as (gw,):
        dialled = await gw.service.dial(ALICE, TARGET)
        await gw.report("v3-abc", Phase.ANSWERED, source="telnyx")
        state = await gw.call(dialled.call_key)
    assert state is not None and state.emitted == ("outgoingCall", "callAnswered")


async def test_a_name_of_a_call_that_does_not_exist_joins_nothing(
    kind: str, tmp_path: Path, redis: RedisServer | None
) -> None:
    async with instances(kind, tmp_path, redis, Route(match_seconds=0)) as (gw,):
        await gw.report("CA9", Phase.RINGING, source="twilio", dial_key="dial:forged")
        own = await gw.call("twilio:CA9")
        assert await gw.call("dial:forged") is None
    assert own is not None and own.emitted == ("outgoingCall",)


async def test_other_calls_of_the_user_keep_their_own_identity(
    kind: str, tmp_path: Path, redis: RedisServer | None
) -> None:
    async with instances(kind, tmp_path, redis, Route()) as (gw,):
        dialled = await gw.service.dial(ALICE, TARGET)
        await gw.report("in-1", Phase.RINGING, direction=Direction.INBOUND)
        await gw.report("out-other", Phase.RINGING, to="+12125550199")
        await gw.report("out-target", Phase.RINGING)
        assert (await gw.call("sip:in-1")) is not None
        assert (await gw.call("sip:out-other")) is not None
        assert (await gw.call("sip:out-target")) is None
        state = await gw.call(dialled.call_key)
    assert state is not None and state.emitted == ("outgoingCall",)


async def test_a_pending_dial_is_claimed_by_one_call_only(
    kind: str, tmp_path: Path, redis: RedisServer | None
) -> None:
    async with instances(kind, tmp_path, redis, Route()) as (gw,):
        await gw.service.dial(ALICE, TARGET)
        await gw.report("fork-a", Phase.RINGING)
        await gw.report("fork-b", Phase.RINGING)
        # The second call to the same number is a call of its own.
        assert await gw.call("sip:fork-a") is None
        assert await gw.call("sip:fork-b") is not None


async def test_the_pending_match_closes_after_its_window(
    kind: str, tmp_path: Path, redis: RedisServer | None
) -> None:
    async with instances(kind, tmp_path, redis, Route(match_seconds=0.05)) as (gw,):
        await gw.service.dial(ALICE, TARGET)
        await asyncio.sleep(0.2)  # a timer is what is tested: nothing to await instead
        await gw.report("late", Phase.RINGING)
        assert await gw.call("sip:late") is not None


async def test_a_retried_request_returns_the_same_call_and_places_it_once(
    kind: str, tmp_path: Path, redis: RedisServer | None
) -> None:
    route = Route()
    async with instances(kind, tmp_path, redis, route) as (gw,):
        first = await gw.service.dial(ALICE, TARGET, request_key="click-1")
        again = await gw.service.dial(ALICE, "212 555 0100", request_key="click-1")
        other = await gw.service.dial(ALICE, TARGET, request_key="click-2")
        metrics = gw.metrics.render().decode()
    assert again == first
    assert other.call_key != first.call_key
    assert len(route.placed) == 2
    assert 'gateway_dials_total{outcome="repeat",route="test"} 1.0' in metrics
    assert 'gateway_dials_total{outcome="placed",route="test"} 2.0' in metrics


@pytest.mark.parametrize("refuse", [None, "the exchange said no"], ids=["placed", "refused"])
async def test_a_key_used_again_for_another_number_or_caller_id_is_refused_and_places_nothing(
    kind: str, tmp_path: Path, redis: RedisServer | None, refuse: str | None
) -> None:
    alice = User("alice", "alice", 100, "x", numbers=("+15555550101", "+15555550109"))
    route = Route(refuse=refuse)
    async with instances(kind, tmp_path, redis, route) as (gw,):
        with contextlib.suppress(DialRefused):
            await gw.service.dial(alice, TARGET, request_key="click-1")
        refusals = []
        for number, caller_id in (("+12125550199", None), (TARGET, "+15555550109")):
            with pytest.raises(DialRefused) as refused:
                await gw.service.dial(alice, number, request_key="click-1", caller_id=caller_id)
            refusals.append(refused.value.refusal)
    assert [(r.status, r.reason) for r in refusals] == [(409, "key-reused")] * 2
    assert refusals[0].message == (
        "this idempotencyKey was used for a dial to +12125550100 from +15555550101; "
        "a new dial needs a new key"
    )
    assert len(route.placed) == 1


# Alice as a user with a phone on the PBX but no number of her own.
NUMBERLESS = User("alice", "alice", 100, "x", aors=("sip:1001@pbx.test",))


async def test_a_retried_request_of_a_user_without_a_number_returns_the_same_call_without_caller_id(
    kind: str, tmp_path: Path, redis: RedisServer | None
) -> None:
    route = Route(needs_caller_id=False)
    async with instances(kind, tmp_path, redis, route) as (gw,):
        first = await gw.service.dial(NUMBERLESS, TARGET, request_key="click-1")
        again = await gw.service.dial(NUMBERLESS, TARGET, request_key="click-1")
    assert first.caller_id is None
    assert again == first
    assert [plan.caller_id for plan in route.placed] == [None]


def service_on(broker: Broker, route: Route, rate: RateLimit | None = None) -> DialService:
    """The service on a broker the test shapes, its deadlines kept in this process."""
    metrics = Metrics()
    routes = Routes()
    routes.register(route)
    settings = DialSettings({100: TenantDial(route.name, rate=rate or RateLimit())})
    return DialService(CallTracker(broker, metrics), routes, settings, metrics)


class SlowRateBroker(MemoryBroker):
    """A broker slow to count a dial (a loaded Redis), held at ``hold`` until ``go``."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.hold = False
        self.counting = asyncio.Event()
        self.go = asyncio.Event()

    async def take_slot(self, user_id: str, name: str, limit: int, seconds: float) -> float | None:
        if self.hold:
            self.counting.set()
            await self.go.wait()
        return await super().take_slot(user_id, name, limit, seconds)


async def test_a_retry_before_the_first_request_made_its_call_is_told_so_not_given_a_call(
    tmp_path: Path,
) -> None:
    broker = SlowRateBroker(make_settings(tmp_path))
    route = Route()
    service = service_on(broker, route, RateLimit(dials=1))
    await service.dial(ALICE, TARGET, request_key="click-0")
    broker.hold = True
    first = asyncio.create_task(service.dial(ALICE, TARGET, request_key="click-1"))
    async with asyncio.timeout(10):
        await broker.counting.wait()
    with pytest.raises(DialRefused) as retry:
        await service.dial(ALICE, TARGET, request_key="click-1")
    broker.go.set()
    with pytest.raises(DialRefused) as limited:
        await first
    await service.stop()
    # The first request was refused by the rate: no call of it exists, and the
    # retry, which answered first, must not have named one.
    assert (limited.value.refusal.status, limited.value.refusal.reason) == (429, "rate")
    assert (retry.value.refusal.status, retry.value.refusal.reason) == (409, "in-progress")
    assert len(route.placed) == 1


def read_as_the_previous_release(raw: str) -> tuple[int, str] | tuple[str, str, str]:
    """How a request key's record is read by release ad29390 (no "pending"): a refusal, or a call.

    A call is its ``Dialled``: the call, the number and the caller id, each as text.
    """
    data = json.loads(raw)
    refused = data.get("refused")
    if refused is not None:
        return int(refused["status"]), str(refused["reason"])
    return str(data["call"]), str(data["number"]), str(data["callerId"])


async def test_a_dial_being_placed_reads_as_in_progress_to_an_instance_of_the_previous_release(
    tmp_path: Path,
) -> None:
    """During a rolling upgrade a retry may reach an instance that knows only calls and refusals."""
    broker = SlowRateBroker(make_settings(tmp_path))
    route = Route()
    service = service_on(broker, route)
    broker.hold = True
    first = asyncio.create_task(service.dial(ALICE, TARGET, request_key="click-1"))
    async with asyncio.timeout(10):
        await broker.counting.wait()
    held = await broker.claim_request(ALICE.id, "click-1", "{}", 60)
    broker.go.set()
    dialled = await first
    settled = await broker.claim_request(ALICE.id, "click-1", "{}", 60)
    await service.stop()
    assert held is not None and read_as_the_previous_release(held) == (409, "in-progress")
    assert settled is not None
    assert read_as_the_previous_release(settled) == (dialled.call_key, TARGET, "+15555550101")


async def test_a_dial_without_a_caller_id_reads_as_none_to_an_instance_of_the_previous_release(
    tmp_path: Path,
) -> None:
    """Its answer to a retry names the record's caller id, which its page shows as the number dialled from."""
    broker = MemoryBroker(make_settings(tmp_path))
    service = service_on(broker, Route(needs_caller_id=False))
    dialled = await service.dial(NUMBERLESS, TARGET, request_key="click-1")
    kept = await broker.claim_request(NUMBERLESS.id, "click-1", "{}", 60)
    await service.stop()
    assert kept is not None and read_as_the_previous_release(kept) == (dialled.call_key, TARGET, "")


async def test_a_record_of_a_dial_without_a_caller_id_written_as_null_reads_as_none(tmp_path: Path) -> None:
    """As this release wrote it before "" (a retry of such a dial after an upgrade)."""
    broker = MemoryBroker(make_settings(tmp_path))
    route = Route(needs_caller_id=False)
    service = service_on(broker, route)
    record = {"call": "dial:0123456789abcdef", "number": TARGET, "callerId": None}
    await broker.claim_request(NUMBERLESS.id, "click-1", json.dumps(record), 60)
    again = await service.dial(NUMBERLESS, TARGET, request_key="click-1")
    await service.stop()
    assert (again.call_key, again.caller_id) == ("dial:0123456789abcdef", None)
    assert route.placed == []


class LostAfterTheCall(MemoryBroker):
    """A broker that goes away right after the call was created (Redis failing over)."""

    async def expect_dial(self, user_id: str, remote: str, dial_key: str, seconds: float) -> None:
        raise BrokerUnavailable("the broker went away")


async def test_a_call_created_before_the_broker_went_away_is_ended_failed_not_left_ringing(
    tmp_path: Path,
) -> None:
    broker = LostAfterTheCall(make_settings(tmp_path))
    route = Route()
    service = service_on(broker, route)
    stream = await broker.subscribe(ALICE.id, None)
    with pytest.raises(BrokerUnavailable):
        await service.dial(ALICE, TARGET, request_key="click-1")
    events = await events_until_completed(stream)
    assert [e["type"] for e in events] == ["outgoingCall", "callEnded", "callCompleted"]
    assert route.placed == []


async def test_a_refusal_by_the_route_ends_the_call_failed_and_leaves_nothing_open(
    kind: str, tmp_path: Path, redis: RedisServer | None
) -> None:
    route = Route(refuse="the provider said 21215: account not authorised")
    async with instances(kind, tmp_path, redis, route) as (gw,):
        with pytest.raises(DialRefused) as refused:
            await gw.service.dial(ALICE, TARGET, request_key="k")
        assert refused.value.refusal.status == 502
        assert refused.value.refusal.message == "the provider said 21215: account not authorised"
        call_key = route.placed[0].call_key
        state = await gw.call(call_key)
        # The match was withdrawn: a later call to the number is its own.
        await gw.report("after", Phase.RINGING)
        assert await gw.call("sip:after") is not None
        # A retry gets the same answer, and nothing is placed again.
        with pytest.raises(DialRefused) as again:
            await gw.service.dial(ALICE, TARGET, request_key="k")
    assert state is not None and state.emitted == ("outgoingCall", "callEnded", "callCompleted")
    assert state.end_status() is EndStatus.FAILED
    assert again.value.refusal == refused.value.refusal
    assert len(route.placed) == 1


async def test_a_route_that_breaks_is_a_refusal_too(tmp_path: Path) -> None:
    class Broken(Route):
        async def place(self, plan: DialPlan) -> Placed:
            self.placed.append(plan)
            raise ConnectionResetError("peer went away")

    route = Broken()
    async with instances("memory", tmp_path, None, route) as (gw,):
        with pytest.raises(DialRefused) as refused:
            await gw.service.dial(ALICE, TARGET)
        state = await gw.call(route.placed[0].call_key)
    assert (refused.value.refusal.status, refused.value.refusal.reason) == (502, "route-error")
    assert state is not None and state.end_status() is EndStatus.FAILED


async def test_the_rate_limit_refuses_with_429_and_counts_no_retry(tmp_path: Path) -> None:
    async with instances("memory", tmp_path, None, Route()) as (gw,):
        for n in range(10):
            await gw.service.dial(ALICE, TARGET, request_key=f"r{n}")
        await gw.service.dial(ALICE, TARGET, request_key="r9")  # a retry is no new dial
        with pytest.raises(DialRefused) as refused:
            await gw.service.dial(ALICE, TARGET, request_key="r10")
        # The refused request's key is free again for a later try.
        assert await gw.tracker.claim_request(ALICE.id, "r10", "probe", 10) is None
    refusal = refused.value.refusal
    assert (refusal.status, refusal.reason) == (429, "rate")
    assert refusal.retry_after_seconds is not None and 1 <= refusal.retry_after_seconds <= 60


async def test_every_dial_is_one_log_line_with_who_what_and_the_outcome(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "gateway.dial")
    async with instances("memory", tmp_path, None, Route()) as (gw,):
        dialled = await gw.service.dial(ALICE, "(212) 555-0100")
        with pytest.raises(DialRefused):
            await gw.service.dial(ALICE, "+1 900 555 0100")
    lines = [r.getMessage() for r in caplog.records if r.name == "gateway.dial"]
    assert lines == [
        f"dial user=alice number='(212) 555-0100' route=test outcome=placed: {dialled.call_key} P-1",
        "dial user=alice number='+1 900 555 0100' route=test outcome=premium: "
        "+19005550100 is a premium-rate number, which your portal may not dial",
    ]


def ends_counted(*gws: Instance) -> dict[str, float]:
    """gateway_dial_ends_total by status, summed over the instances' /metrics."""
    counted: dict[str, float] = {}
    for gw in gws:
        for metric in gw.metrics.registry.collect():
            for sample in metric.samples:
                if sample.name == "gateway_dial_ends_total":
                    status = sample.labels["status"]
                    counted[status] = counted.get(status, 0.0) + sample.value
    return {status: n for status, n in counted.items() if n}


async def test_how_a_dialled_call_ended_is_logged_and_counted_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "gateway.dial")
    async with instances("memory", tmp_path, None, Route()) as (gw,):
        dialled = await gw.service.dial(ALICE, TARGET)
        await gw.report("pbx-e", Phase.RINGING)
        await gw.report("pbx-e", Phase.ENDED, end=EndStatus.BUSY)
        # The telephony says it again (a repeated webhook, a late sipfrag).
        await gw.report("pbx-e", Phase.ENDED, end=EndStatus.NO_ANSWER)
        counted = ends_counted(gw)
    lines = [r.getMessage() for r in caplog.records if "ended" in r.getMessage()]
    assert lines == [f"dial {dialled.call_key} of user alice ended: BUSY"]
    assert counted == {"BUSY": 1.0}


async def test_a_refused_dial_is_counted_as_ended_failed(tmp_path: Path) -> None:
    async with instances("memory", tmp_path, None, Route(refuse="the exchange said no")) as (gw,):
        with pytest.raises(DialRefused):
            await gw.service.dial(ALICE, TARGET)
        assert ends_counted(gw) == {"FAILED": 1.0}


async def test_a_tenant_without_a_route_or_with_an_unknown_one_is_refused(tmp_path: Path) -> None:
    async with instances("memory", tmp_path, None, Route()) as (gw,):
        elsewhere = User("eve", "eve", 200, "x", numbers=("+15555550177",))
        with pytest.raises(DialRefused) as none:
            await gw.service.dial(elsewhere, TARGET)
        gw.service.settings = DialSettings({100: TenantDial("vonage")})
        with pytest.raises(DialRefused) as unknown:
            await gw.service.dial(ALICE, TARGET)
        metrics = gw.metrics.render().decode()
    assert (none.value.refusal.status, none.value.refusal.reason) == (404, "no-route")
    assert (unknown.value.refusal.status, unknown.value.refusal.reason) == (409, "route-unavailable")
    assert 'gateway_dials_total{outcome="no-route",route="none"} 1.0' in metrics


# -- the deadline of a placed dial ----------------------------------------------


async def events_until_completed(stream: StreamQueue) -> list[dict[str, object]]:
    """The SDK events the user's stream gets, up to the first callCompleted."""
    seen: list[dict[str, object]] = []
    async with asyncio.timeout(10):
        while not seen or seen[-1]["type"] != "callCompleted":
            seen.extend(json.loads(e.data) for e in await stream.wait(10))
    return seen


async def past_deadline(key: str, *gws: Instance) -> None:
    """Until one of the instances handled the dial's deadline (on Redis any of them may)."""
    waits = [asyncio.ensure_future(gw.service.watchdog.passed(key)) for gw in gws]
    try:
        async with asyncio.timeout(10):
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


async def test_a_dial_no_telephony_ever_reports_ends_canceled_at_its_deadline(
    kind: str, tmp_path: Path, redis: RedisServer | None
) -> None:
    async with instances(kind, tmp_path, redis, Route(ring_seconds=0.05)) as (gw,):
        stream = await gw.broker.subscribe(ALICE.id, None)
        dialled = await gw.service.dial(ALICE, TARGET)
        events = await events_until_completed(stream)
    assert [e["type"] for e in events] == ["outgoingCall", "callEnded", "callCompleted"]
    assert {e["externalCallId"] for e in events} == {dialled.call_key}
    assert events[1]["payload"] == {"externalCallId": dialled.call_key, "callEndStatus": "CANCELED"}


async def test_a_dial_request_cancelled_while_the_route_places_it_still_ends_at_its_deadline(
    kind: str, tmp_path: Path, redis: RedisServer | None
) -> None:
    placing = asyncio.Event()

    async def hang(plan: DialPlan) -> None:
        placing.set()
        await asyncio.Event().wait()  # the route never returns: the request is cancelled meanwhile

    async with instances(kind, tmp_path, redis, Route(ring_seconds=0.05, during=hang)) as (gw,):
        stream = await gw.broker.subscribe(ALICE.id, None)
        request = asyncio.create_task(gw.service.dial(ALICE, TARGET))
        async with asyncio.timeout(10):
            await placing.wait()
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        events = await events_until_completed(stream)
    assert [e["type"] for e in events] == ["outgoingCall", "callEnded", "callCompleted"]
    assert events[1]["payload"] == {
        "externalCallId": events[0]["externalCallId"],
        "callEndStatus": "CANCELED",
    }


async def test_a_dial_without_caller_id_ended_at_its_deadline_still_has_none(
    kind: str, tmp_path: Path, redis: RedisServer | None
) -> None:
    # On Redis the deadline's plan goes through the shared job store and back.
    async with instances(kind, tmp_path, redis, Route(ring_seconds=0.05, needs_caller_id=False)) as (gw,):
        stream = await gw.broker.subscribe(ALICE.id, None)
        dialled = await gw.service.dial(NUMBERLESS, TARGET)
        events = await events_until_completed(stream)
    assert [e["type"] for e in events] == ["outgoingCall", "callEnded", "callCompleted"]
    assert {e["externalCallId"] for e in events} == {dialled.call_key}
    started, completed = events[0]["payload"], events[-1]["payload"]
    assert isinstance(started, dict) and "fromNumber" not in started
    assert isinstance(completed, dict) and "hs_call_from_number" not in completed["engagementProperties"]
    call = events[-1]["call"]
    assert isinstance(call, dict) and call["fromNumber"] is None


async def test_the_deadline_withdraws_the_pending_match(
    kind: str, tmp_path: Path, redis: RedisServer | None
) -> None:
    async with instances(kind, tmp_path, redis, Route(ring_seconds=0.05, match_seconds=60)) as (gw,):
        dialled = await gw.service.dial(ALICE, TARGET)
        await past_deadline(dialled.call_key, gw)
        await gw.report("too-late", Phase.RINGING)
        assert await gw.call("sip:too-late") is not None


async def test_an_answered_dial_keeps_talking_past_its_deadline(
    kind: str, tmp_path: Path, redis: RedisServer | None
) -> None:
    async def answer(plan: DialPlan) -> None:
        await gw.report("pbx-a", Phase.RINGING)
        await gw.report("pbx-a", Phase.ANSWERED)

    async with instances(kind, tmp_path, redis, Route(ring_seconds=0.05, during=answer)) as (gw,):
        dialled = await gw.service.dial(ALICE, TARGET)
        await past_deadline(dialled.call_key, gw)
        state = await gw.call(dialled.call_key)
    assert state is not None and state.emitted == ("outgoingCall", "callAnswered")
    assert state.end is None


async def test_a_dial_its_telephony_ended_keeps_that_end_past_its_deadline(
    kind: str, tmp_path: Path, redis: RedisServer | None
) -> None:
    async with instances(kind, tmp_path, redis, Route(ring_seconds=0.2)) as (gw,):
        dialled = await gw.service.dial(ALICE, TARGET)
        await gw.report("pbx-b", Phase.RINGING)
        await gw.report("pbx-b", Phase.ENDED, end=EndStatus.BUSY)
        await past_deadline(dialled.call_key, gw)
        state = await gw.call(dialled.call_key)
    assert state is not None and state.end_status() is EndStatus.BUSY
    assert state.emitted == ("outgoingCall", "callEnded", "callCompleted")


async def test_a_refused_dial_has_no_deadline(tmp_path: Path) -> None:
    async with instances("memory", tmp_path, None, Route(refuse="no")) as (gw,):
        with pytest.raises(DialRefused):
            await gw.service.dial(ALICE, TARGET)
        assert gw.service.watchdog.running() == ()


async def test_stopping_the_service_drops_its_deadlines(tmp_path: Path) -> None:
    async with instances("memory", tmp_path, None, Route(ring_seconds=60)) as (gw,):
        dialled = await gw.service.dial(ALICE, TARGET)
        kept = gw.service.watchdog.running()
        await gw.service.stop()
        state = await gw.call(dialled.call_key)
    assert len(kept) == 1 and all(task.cancelled() for task in kept)
    assert state is not None and state.end is None


# -- two instances on one redis-server -----------------------------------------


async def test_an_answer_stored_by_another_instance_before_the_deadline_wins(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    route = Route(ring_seconds=0.2)
    async with instances("redis", tmp_path, redis_server, route, count=2) as (one, two):
        dialled = await one.service.dial(ALICE, TARGET)
        # Instance one last saw the call ringing; the answer lands on two.
        await two.report("pbx-c", Phase.RINGING)
        await two.report("pbx-c", Phase.ANSWERED)
        await past_deadline(dialled.call_key, one, two)
        state = await two.call(dialled.call_key)
    assert state is not None and state.emitted == ("outgoingCall", "callAnswered")
    assert state.end is None


async def test_a_dial_whose_placing_instance_stopped_is_ended_at_its_deadline_by_another(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with instances("redis", tmp_path, redis_server, Route(ring_seconds=0.3), count=2) as (one, two):
        stream = await two.broker.subscribe(ALICE.id, None)
        dialled = await one.service.dial(ALICE, TARGET)
        # The placing instance goes away before the deadline (its tasks and its store link with it).
        await one.service.stop()
        events = await events_until_completed(stream)
        await past_deadline(dialled.call_key, two)
    assert [e["type"] for e in events] == ["outgoingCall", "callEnded", "callCompleted"]
    assert events[1]["payload"] == {"externalCallId": dialled.call_key, "callEndStatus": "CANCELED"}


async def test_a_shared_deadline_is_run_by_one_instance(tmp_path: Path, redis_server: RedisServer) -> None:
    async with instances("redis", tmp_path, redis_server, Route(ring_seconds=0.05), count=2) as (one, two):
        dialled = await one.service.dial(ALICE, TARGET)
        await past_deadline(dialled.call_key, one, two)
        ran = [gw for gw in (one, two) if gw.service.watchdog.handled(dialled.call_key)]
        state = await two.call(dialled.call_key)
    assert len(ran) == 1
    assert state is not None and state.end_status() is EndStatus.CANCELED


async def test_an_end_reported_after_the_deadline_on_another_instance_changes_nothing(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with instances("redis", tmp_path, redis_server, Route(ring_seconds=0.05), count=2) as (one, two):
        stream = await two.broker.subscribe(ALICE.id, None)
        dialled = await one.service.dial(ALICE, TARGET)
        events = await events_until_completed(stream)
        await two.report("late-end", Phase.ENDED, end=EndStatus.NO_ANSWER, dial_key=dialled.call_key)
        state = await one.call(dialled.call_key)
    assert [e["type"] for e in events] == ["outgoingCall", "callEnded", "callCompleted"]
    assert state is not None and state.end_status() is EndStatus.CANCELED
    assert state.emitted == ("outgoingCall", "callEnded", "callCompleted")


# -- two instances on one redis-server -----------------------------------------


async def test_an_end_reported_on_two_instances_is_counted_once(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with instances("redis", tmp_path, redis_server, Route(), count=2) as (one, two):
        await one.service.dial(ALICE, TARGET)
        await one.report("pbx-f", Phase.RINGING)
        await one.report("pbx-f", Phase.ENDED, end=EndStatus.NO_ANSWER)
        await two.report("pbx-f", Phase.ENDED, end=EndStatus.NO_ANSWER)
        counted = ends_counted(one, two)
    assert counted == {"NO_ANSWER": 1.0}


async def test_telephony_on_another_instance_joins_the_dial(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with instances("redis", tmp_path, redis_server, Route(), count=2) as (one, two):
        dialled = await one.service.dial(ALICE, TARGET)
        await two.report("pbx-9", Phase.RINGING)
        await one.report("pbx-9", Phase.ANSWERED)
        await two.report("pbx-9", Phase.ENDED, end=EndStatus.COMPLETED)
        state = await one.call(dialled.call_key)
        assert await two.call("sip:pbx-9") is None
    assert state is not None and state.emitted == DONE


async def test_two_instances_racing_for_one_pending_dial_join_one_call(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with instances("redis", tmp_path, redis_server, Route(), count=2) as (one, two):
        await one.service.dial(ALICE, TARGET)
        await asyncio.gather(one.report("race-a", Phase.RINGING), two.report("race-b", Phase.RINGING))
        own = [await one.call("sip:race-a"), await one.call("sip:race-b")]
    assert sorted(state is None for state in own) == [False, True]


async def test_the_rate_limit_holds_across_instances(tmp_path: Path, redis_server: RedisServer) -> None:
    route = Route()
    async with instances("redis", tmp_path, redis_server, route, count=2) as (one, two):
        for n in range(10):
            await (one, two)[n % 2].service.dial(ALICE, TARGET)
        refused = []
        for gw in (one, two):
            with pytest.raises(DialRefused) as caught:
                await gw.service.dial(ALICE, TARGET)
            refused.append(caught.value.refusal)
    assert [(r.status, r.reason) for r in refused] == [(429, "rate"), (429, "rate")]
    assert len(route.placed) == 10


async def test_a_retry_on_another_instance_returns_the_same_call(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    route = Route()
    async with instances("redis", tmp_path, redis_server, route, count=2) as (one, two):
        first = await one.service.dial(ALICE, TARGET, request_key="click-x")
        again = await two.service.dial(ALICE, TARGET, request_key="click-x")
    assert again == first and len(route.placed) == 1
