"""The SIP dialling route: the user's own phone calls the number, asked by REFER.

``gateway.sources.sip.click_to_dial`` does the SIP (docs/dialling.md#the-sip-route);
this route gives it the user's phone and the tenant's PBX, and turns what
it reports after the phone rang into the dialled call's answer and end.
The phone's own call to the number reaches the dialled call through the
user's dialog events and the pending-dial match; the gateway's own leg to
the phone is screened out of those events by the SIP source.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from gateway.dial.routes import DialPlan, DialRefused, Placed, Refusal, no_phone
from gateway.model import Phase
from gateway.sources.sip.click_to_dial import REFER_SECONDS, ClickToDial, ClickToDialRefused, DialOrder
from gateway.sources.sip.click_to_dial_rules import Connected, Outcome
from gateway.sources.sip.settings import PbxSettings
from gateway.tracker import BrokerUnavailable, CallTracker
from gateway.users.directory import Directory, User

log = logging.getLogger("gateway.dial.sip")

NO_AOR = (
    "you have no phone (SIP address) for the gateway to ring first; "
    "ask your administrator to add it to your user"
)

# After the user's phone was answered, how long its call to the number may
# take to show up in the dialog events and join the dial.
MATCH_AFTER_RING_SECONDS = 30.0


class SipDialler:
    name = "sip"
    # The phone calls the number as itself: its PBX decides what the callee
    # sees. A REFER cannot ask for another caller id in a way PBXes honour
    # (headers in Refer-To reach the PBX only if the phone copies them, and
    # a PBX that believed a header from a phone would let anyone choose).
    chooses_caller_id = False
    # The PBX presents the phone's own caller id, so a user without a number can dial too.
    needs_caller_id = False

    def __init__(
        self,
        sip: ClickToDial,
        pbx: Mapping[int, PbxSettings],
        tracker: CallTracker,
        directory: Callable[[], Directory],
    ) -> None:
        self.sip = sip
        self.pbx = pbx
        self.tracker = tracker
        self.directory = directory

    @property
    def match_seconds(self) -> float:
        longest = max((pbx.ring_seconds for pbx in self.pbx.values()), default=30.0)
        return longest + MATCH_AFTER_RING_SECONDS

    @property
    def ring_seconds(self) -> float:
        # The user's phone rings, then its call to the number has until the
        # phone's last word on the REFER.
        longest = max((pbx.ring_seconds for pbx in self.pbx.values()), default=30.0)
        return longest + REFER_SECONDS

    def refusal_for(self, user: User) -> Refusal | None:
        if user.tenant not in self.pbx:
            return _unconfigured(user.tenant)
        return no_phone(NO_AOR) if not user.aors else None

    async def place(self, plan: DialPlan) -> Placed:
        pbx = self.pbx.get(plan.tenant)
        if pbx is None:
            raise DialRefused(_unconfigured(plan.tenant))
        user = self.directory().by_id(plan.user_id)
        if user is None or not user.aors:
            raise DialRefused(no_phone(NO_AOR))

        async def report(outcome: Outcome) -> None:
            await self._report(plan, outcome)

        order = DialOrder(plan.user_id, user.aors[0], plan.target, pbx, report)
        try:
            leg = await self.sip.start(order)
        except ClickToDialRefused as exc:
            raise DialRefused.by_route(exc.message, status=exc.status) from None
        return Placed(reference=leg)

    async def _report(self, plan: DialPlan, outcome: Outcome) -> None:
        if isinstance(outcome, Connected):
            await self.tracker.observe(plan.signal(Phase.ANSWERED, _now_ms()))
            return
        # Over before the phone's own call could join: a later call of the
        # user to the same number is a call of its own.
        try:
            await self.tracker.forget_dial(plan.user_id, plan.target, plan.call_key)
        except BrokerUnavailable as exc:
            log.warning("sip dial %s: pending match not withdrawn (%s)", plan.call_key, exc)
        await self.tracker.observe(plan.signal(Phase.ENDED, _now_ms(), outcome.status))


def _unconfigured(tenant: int) -> Refusal:
    return Refusal(409, "route-unavailable", f"no PBX is configured for HubSpot portal {tenant}")


def _now_ms() -> int:
    return int(time.time() * 1000)
