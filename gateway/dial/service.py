"""The dial service: a click in HubSpot becomes one call, created first, then placed.

Order matters: the policy and rate checks refuse before anything exists;
then the call is created in the model (an outbound RINGING signal, so the
page gets ``outgoingCall`` at once) and the pending-dial match is opened;
only then is the route asked. If the route refuses, the call ends FAILED
and the match is withdrawn: nothing is left half-created. A placed dial
gets a deadline (``watchdog.py``), so one its telephony never ends does
not ring forever. Each dial makes one log line and one count in
``gateway_dials_total``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable
from dataclasses import dataclass

from prometheus_client import Counter

from gateway.dial.policy import DialRequest, plan_dial
from gateway.dial.ratelimit import retry_after_seconds
from gateway.dial.routes import Dialler, DialPlan, DialRefused, Placed, Refusal, Routes
from gateway.dial.settings import DialSettings
from gateway.dial.watchdog import MARGIN_SECONDS, POLL_SECONDS, DialWatchdog
from gateway.model import CallState, EndStatus, Phase
from gateway.ops.metrics import Metrics
from gateway.outbox.store import JobStore
from gateway.tracker import BrokerUnavailable, CallTracker
from gateway.users.directory import User

log = logging.getLogger("gateway.dial")

# A retried request within this time gets the first one's answer.
REQUEST_SECONDS = 600.0
_REQUEST_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,128}\Z")


def request_key_valid(key: str) -> bool:
    return bool(_REQUEST_KEY.match(key))


@dataclass(frozen=True)
class Dialled:
    """The call a dial request made (or, for a retried request, made before)."""

    call_key: str  # the SDK's externalCallId
    number: str  # E.164
    caller_id: str | None  # None: the PBX presents the caller id it gives the user's phone

    def to_json(self) -> str:
        # No caller id is "": the previous release reads the field as text, and
        # null would be "None" there, shown on its page as the number dialled from.
        return json.dumps({"call": self.call_key, "number": self.number, "callerId": self.caller_id or ""})


# What a request key was first used for: (number, caller id), both E.164
# (the caller id None when the PBX presents its own); None in a refusal
# kept by an older version, which did not say.
Asked = tuple[str, str | None] | None


def _caller_id(raw: object) -> str | None:
    """A record's caller id: "" (``Dialled.to_json``) or null (as written before) is none."""
    return None if raw is None or raw == "" else str(raw)


def _from_record(raw: str) -> tuple[Dialled | Refusal | None, Asked]:
    """A request key's record: the call, the refusal, or None while the first request has no call yet."""
    data = json.loads(raw)
    pending = data.get("pending")
    if isinstance(pending, list):
        return None, (str(pending[0]), _caller_id(pending[1]))
    refused = data.get("refused")
    if refused is not None:
        refusal = Refusal(int(refused["status"]), str(refused["reason"]), str(refused["message"]))
        asked = data.get("asked")
        return refusal, (str(asked[0]), _caller_id(asked[1])) if isinstance(asked, list) else None
    dialled = Dialled(str(data["call"]), str(data["number"]), _caller_id(data["callerId"]))
    return dialled, (dialled.number, dialled.caller_id)


IN_PROGRESS = Refusal(409, "in-progress", "this dial is already being placed; wait for its call to show")


def _pending_record(plan: DialPlan) -> str:
    # "refused" is for an instance of the previous release during a rolling
    # upgrade: it knows no "pending" and reads the retry's answer from it.
    refused = {"status": IN_PROGRESS.status, "reason": IN_PROGRESS.reason, "message": IN_PROGRESS.message}
    return json.dumps({"pending": [plan.target, plan.caller_id], "refused": refused})


def _refusal_record(plan: DialPlan, refusal: Refusal) -> str:
    return json.dumps(
        {
            "refused": {"status": refusal.status, "reason": refusal.reason, "message": refusal.message},
            "asked": [plan.target, plan.caller_id],
        }
    )


class DialService:
    def __init__(
        self,
        tracker: CallTracker,
        routes: Routes,
        settings: DialSettings,
        metrics: Metrics,
        deadline_margin_seconds: float = MARGIN_SECONDS,
        deadlines: JobStore | None = None,
        deadline_poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.tracker = tracker
        self.routes = routes
        self.settings = settings
        # ``deadlines``: where placed dials' deadlines are shared by every instance
        # (the gateway on Redis); without it, this process keeps them.
        self.watchdog = DialWatchdog(
            tracker, deadline_margin_seconds, deadlines, poll_seconds=deadline_poll_seconds
        )
        self.dials = Counter(
            "gateway_dials_total",
            "Dial requests, by route and outcome (placed, repeat, or why refused)",
            ["route", "outcome"],
            registry=metrics.registry,
        )
        self.ends = Counter(
            "gateway_dial_ends_total",
            "Dialled calls ended, by how (the end status HubSpot gets)",
            ["status"],
            registry=metrics.registry,
        )
        tracker.ended_listeners.append(self._ended)

    async def start(self) -> None:
        await self.watchdog.start()

    async def stop(self) -> None:
        """Stop keeping deadlines here: shared ones are kept by the other instances; without
        sharing, a dial then ends by its telephony or expires."""
        await self.watchdog.stop()

    async def dial(
        self, user: User, number: str, *, request_key: str | None = None, caller_id: str | None = None
    ) -> Dialled:
        """Place a call from ``user`` to ``number``; raises ``DialRefused`` with the reason.

        ``BrokerUnavailable`` passes through when the call could not be
        created (nothing was placed; the caller answers 503).
        """
        tenant = self.settings.for_tenant(user.tenant)
        route = tenant.route if tenant else "none"
        try:
            if tenant is None:
                raise DialRefused(
                    Refusal(
                        404, "no-route", f"no dialling route is configured for HubSpot portal {user.tenant}"
                    )
                )
            dialler = self.routes.get(tenant.route)
            if dialler is None:
                raise DialRefused(
                    Refusal(
                        409,
                        "route-unavailable",
                        f"the dialling route {tenant.route!r} of HubSpot portal {user.tenant} "
                        "is not available on this gateway",
                    )
                )
            unready = dialler.refusal_for(user)
            if unready is not None:
                raise DialRefused(unready)
            request = DialRequest(user.id, user.tenant, number, user.numbers, caller_id)
            plan = plan_dial(
                request,
                tenant.policy,
                tenant.route,
                secrets.token_hex(8),
                chooses_caller_id=dialler.chooses_caller_id,
                needs_caller_id=dialler.needs_caller_id,
            )
            if isinstance(plan, Refusal):
                raise DialRefused(plan)
            if request_key is not None:
                # Pending until the call exists: a retry meanwhile must not be
                # answered with a call the rate limit may yet refuse.
                held = await self.tracker.claim_request(
                    user.id, request_key, _pending_record(plan), REQUEST_SECONDS
                )
                if held is not None:
                    return self._repeat(user, number, route, plan, _from_record(held))
            try:
                waited = await self.tracker.take_dial_slot(user.id, tenant.rate.dials, tenant.rate.seconds)
            except BrokerUnavailable:
                if request_key is not None:
                    await _quietly(self.tracker.settle_request(user.id, request_key, None, REQUEST_SECONDS))
                self._count(user, number, route, "broker-down", "the rate window could not be read")
                raise
            if waited is not None:
                wait = retry_after_seconds(waited)
                if request_key is not None:
                    await self.tracker.settle_request(user.id, request_key, None, REQUEST_SECONDS)
                raise DialRefused(
                    Refusal(
                        429,
                        "rate",
                        f"you dialled {tenant.rate.dials} times in {tenant.rate.seconds:g} seconds; "
                        f"try again in {wait} s",
                        retry_after_seconds=wait,
                    )
                )
        except DialRefused as exc:
            self._count(user, number, route, exc.refusal.reason, exc.refusal.message)
            raise
        return await self._place(user, number, plan, dialler, request_key)

    async def _place(
        self,
        user: User,
        number: str,
        plan: DialPlan,
        dialler: Dialler,
        request_key: str | None,
    ) -> Dialled:
        match_seconds = dialler.match_seconds
        dialled = Dialled(plan.call_key, plan.target, plan.caller_id)
        created = False
        try:
            await self.tracker.observe(plan.signal(Phase.RINGING, _now_ms()))
            created = True
            if match_seconds > 0:
                await self.tracker.expect_dial(user.id, plan.target, plan.call_key, match_seconds)
            if request_key is not None:
                await self.tracker.settle_request(user.id, request_key, dialled.to_json(), REQUEST_SECONDS)
        except BrokerUnavailable:
            if created:
                # Nothing was placed and no deadline kept: the call must not ring on.
                await _quietly(self.tracker.observe(plan.signal(Phase.ENDED, _now_ms(), EndStatus.FAILED)))
            if request_key is not None:
                await _quietly(self.tracker.settle_request(user.id, request_key, None, REQUEST_SECONDS))
            self._count(user, number, plan.route, "broker-down", "the call could not be created")
            raise
        try:
            placed: object = await dialler.place(plan)
            if not isinstance(placed, Placed):
                raise TypeError(f"route {plan.route} returned {type(placed).__name__}, not Placed")
        except DialRefused as exc:
            refusal = exc.refusal
        except asyncio.CancelledError:
            # Stopped mid-request (a shutdown, a dropped connection): the route
            # may have placed the call, so it keeps its deadline, which ends
            # it if telephony never does.
            await _quietly(self.watchdog.arm(plan, dialler.ring_seconds, match_seconds))
            raise
        except Exception as exc:  # a route's bug must not leave a ringing call behind
            log.warning("dial route %s failed: %s: %s", plan.route, type(exc).__name__, exc)
            refusal = Refusal(
                502, "route-error", f"the dialling route {plan.route!r} failed to place the call"
            )
        else:
            # Armed before the binds, which may fail: the call exists and must end.
            await self.watchdog.arm(plan, dialler.ring_seconds, match_seconds)
            for call_key in placed.joins:
                await self.tracker.bind_call(user.id, call_key, plan.call_key)
            self._count(user, number, plan.route, "placed", f"{plan.call_key} {placed.reference}".strip())
            return dialled
        await self._undo(plan, refusal, request_key, match_seconds)
        self._count(user, number, plan.route, refusal.reason, refusal.message)
        raise DialRefused(refusal)

    async def _undo(
        self, plan: DialPlan, refusal: Refusal, request_key: str | None, match_seconds: float
    ) -> None:
        """The route refused: end the call FAILED and withdraw what was opened for it."""
        if match_seconds > 0:
            await _quietly(self.tracker.forget_dial(plan.user_id, plan.target, plan.call_key))
        await _quietly(self.tracker.observe(plan.signal(Phase.ENDED, _now_ms(), EndStatus.FAILED)))
        if request_key is not None:
            await _quietly(
                self.tracker.settle_request(
                    plan.user_id, request_key, _refusal_record(plan, refusal), REQUEST_SECONDS
                )
            )

    def _repeat(
        self,
        user: User,
        number: str,
        route: str,
        plan: DialPlan,
        held: tuple[Dialled | Refusal | None, Asked],
    ) -> Dialled:
        answer, asked = held
        if asked is not None and asked != (plan.target, plan.caller_id):
            # A key is one click: the same key for another call is a page's
            # bug, and answering with the first call would hide it.
            raise DialRefused(
                Refusal(
                    409,
                    "key-reused",
                    f"this idempotencyKey was used for a dial to {asked[0]} "
                    f"from {asked[1] or 'the caller id your PBX gives your phone'}; "
                    "a new dial needs a new key",
                )
            )
        if answer is None:
            raise DialRefused(IN_PROGRESS)
        if isinstance(answer, Refusal):
            raise DialRefused(answer)
        self._count(user, number, route, "repeat", answer.call_key)
        return answer

    async def _ended(self, state: CallState) -> None:
        """A dialled call ended: its outcome logged and counted once, by whichever instance saw it first.

        Every end signal comes here (a repeated one too, on any instance):
        the first claim of the call's end in the broker is the one counted.
        """
        if not state.call_key.startswith("dial:"):
            return
        status = state.end_status()
        how = status.value if status is not None else "ENDED"
        try:
            # "/" is not allowed in a client's idempotency key: no request key collides.
            held = await self.tracker.claim_request(state.user_id, f"ended/{state.call_key}", how, 3600)
        except BrokerUnavailable as exc:
            log.warning("dial %s ended %s; not counted (%s)", state.call_key, how, exc)
            return
        if held is None:
            self.ends.labels(how).inc()
            log.info("dial %s of user %s ended: %s", state.call_key, state.user_id, how)

    def _count(self, user: User, number: str, route: str, outcome: str, detail: str) -> None:
        self.dials.labels(route, outcome).inc()
        log.info("dial user=%s number=%r route=%s outcome=%s: %s", user.login, number, route, outcome, detail)


async def _quietly(step: Awaitable[object]) -> None:
    """Clean-up after a refusal: a broker outage then costs a log line, not the answer."""
    try:
        await step
    except BrokerUnavailable as exc:
        log.warning("dial clean-up incomplete: %s", exc)


def _now_ms() -> int:
    return int(time.time() * 1000)
