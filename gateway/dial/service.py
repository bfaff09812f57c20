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
from gateway.dial.watchdog import MARGIN_SECONDS, DialWatchdog
from gateway.model import EndStatus, Phase
from gateway.ops.metrics import Metrics
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
    caller_id: str

    def to_json(self) -> str:
        return json.dumps({"call": self.call_key, "number": self.number, "callerId": self.caller_id})


def _from_record(raw: str) -> Dialled | Refusal:
    data = json.loads(raw)
    refused = data.get("refused")
    if refused is not None:
        return Refusal(int(refused["status"]), str(refused["reason"]), str(refused["message"]))
    return Dialled(str(data["call"]), str(data["number"]), str(data["callerId"]))


def _refusal_record(refusal: Refusal) -> str:
    return json.dumps(
        {"refused": {"status": refusal.status, "reason": refusal.reason, "message": refusal.message}}
    )


class DialService:
    def __init__(
        self,
        tracker: CallTracker,
        routes: Routes,
        settings: DialSettings,
        metrics: Metrics,
        deadline_margin_seconds: float = MARGIN_SECONDS,
    ) -> None:
        self.tracker = tracker
        self.routes = routes
        self.settings = settings
        self.watchdog = DialWatchdog(tracker, deadline_margin_seconds)
        self.dials = Counter(
            "gateway_dials_total",
            "Dial requests, by route and outcome (placed, repeat, or why refused)",
            ["route", "outcome"],
            registry=metrics.registry,
        )

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        """Drop the deadlines this process keeps (a dial then ends by its telephony or expires)."""
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
            request = DialRequest(user.id, user.tenant, number, user.numbers, caller_id)
            plan = plan_dial(request, tenant.policy, tenant.route, secrets.token_hex(8))
            if isinstance(plan, Refusal):
                raise DialRefused(plan)
            dialled = Dialled(plan.call_key, plan.target, plan.caller_id)
            if request_key is not None:
                held = await self.tracker.claim_request(
                    user.id, request_key, dialled.to_json(), REQUEST_SECONDS
                )
                if held is not None:
                    return self._repeat(user, number, route, _from_record(held))
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
        try:
            await self.tracker.observe(plan.signal(Phase.RINGING, _now_ms()))
            if match_seconds > 0:
                await self.tracker.expect_dial(user.id, plan.target, plan.call_key, match_seconds)
        except BrokerUnavailable:
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
        except Exception as exc:  # a route's bug must not leave a ringing call behind
            log.warning("dial route %s failed: %s: %s", plan.route, type(exc).__name__, exc)
            refusal = Refusal(
                502, "route-error", f"the dialling route {plan.route!r} failed to place the call"
            )
        else:
            # Armed before the binds, which may fail: the call exists and must end.
            self.watchdog.arm(plan, dialler.ring_seconds, match_seconds)
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
                    plan.user_id, request_key, _refusal_record(refusal), REQUEST_SECONDS
                )
            )

    def _repeat(self, user: User, number: str, route: str, held: Dialled | Refusal) -> Dialled:
        if isinstance(held, Refusal):
            raise DialRefused(held)
        self._count(user, number, route, "repeat", held.call_key)
        return held

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
