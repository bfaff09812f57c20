"""The call logger's outbox jobs, run against HubSpot through ``CallRecords``.

- ``settle`` (due when the grace period after a call's end is over):
  decides, on the call's state, to log or to update (``decision``), and
  enqueues that job with everything it needs, so it still runs when the
  call's state has expired (a portal disconnected for days).
- ``log``: finds the call in HubSpot by its external id among the calls of
  the owner ``settle`` looked up (a retry after a create that timed out but
  happened must not create a second), else creates it, associated with the
  first contact or company with the other party's number, owned by that owner.
  The owner is kept with the call too (``owners``): the recordings search
  for the engagement with it (``logged_leg``).
- ``update``: sets on the widget's engagement what the gateway knows.
- ``recording_ready``: tells HubSpot an engagement's recording can be
  fetched (``gateway.recordings`` decides when; the outbox retries it).

Whoever must know the engagement the gateway made or found (the
recordings) is told through ``engagement_listeners``.

Every step may run twice (an instance dying mid-job, a lease running out);
each is written so that running it again changes nothing more.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from prometheus_client import Counter

from gateway.calllog.decision import Decision, claim_logging, decide, record_created
from gateway.calllog.owners import LoggedOwners
from gateway.calllog.properties import create_properties, remote_number, update_properties, widget_update
from gateway.calllog.settings import CallLogSettings
from gateway.hubspot.crm import CallRecords, Leg
from gateway.hubspot.errors import Rejected, Transient
from gateway.model import LOGGED_BY_GATEWAY, CallState
from gateway.ops.metrics import Metrics
from gateway.outbox.jobs import Job, NotBefore, job_key
from gateway.outbox.worker import Handler, Outbox
from gateway.parsing import parse_decimal
from gateway.tracker import CallTracker, UnknownCall

T = TypeVar("T")

log = logging.getLogger("gateway.calllog")

SETTLE, LOG, UPDATE, RECORDING_READY = "settle", "log", "update", "recording_ready"
# (portal, user id, external call id, engagement id): told when the gateway
# made or found the engagement of a user's leg of a call.
EngagementListener = Callable[[int, str, str, int], Awaitable[None]]
# HubSpot's search finds a call only some seconds after its create (search is
# served from an index; vendors document waiting about 10 s): a log job whose
# create may have happened searches again no sooner than this.
SEARCH_SETTLE_SECONDS = 30.0


def log_details(state: CallState, portal_id: int, app_id: str) -> dict[str, Any]:
    """What a ``log`` job writes of an ended call: the other party's number and the properties."""
    return {"remote": remote_number(state), "properties": create_properties(state, portal_id, app_id)}


class CallLogJobs:
    def __init__(
        self, settings: CallLogSettings, tracker: CallTracker, records: CallRecords, metrics: Metrics
    ) -> None:
        self.settings = settings
        self.tracker = tracker
        self.records = records
        self.owners = LoggedOwners(tracker.broker)
        self.outbox: Outbox | None = None  # set once the outbox that runs these jobs exists
        self.engagement_listeners: list[EngagementListener] = []
        self.logged = Counter(
            "gateway_calls_logged_total",
            "Calls written to HubSpot by the gateway: created (gateway) or updated (widget)",
            ["by"],
            registry=metrics.registry,
        )

    def handlers(self) -> Mapping[str, Handler]:
        return {
            SETTLE: self.settle,
            LOG: self.log,
            UPDATE: self.update,
            RECORDING_READY: self.recording_ready,
        }

    async def _change(
        self, user_id: str, call_key: str, change: Callable[[CallState], CallState]
    ) -> CallState | None:
        try:
            return await self.tracker.change(user_id, call_key, change)
        except UnknownCall:
            return None  # expired: the job's own payload still says what to write

    # -- settle: the grace period is over ------------------------------------------
    async def settle(self, job: Job) -> None:
        assert self.outbox is not None
        user_id, call_key, portal = job.payload["user"], job.payload["call"], int(job.payload["portal"])
        state = await self._change(user_id, call_key, claim_logging)
        base: dict[str, Any] = {"user": user_id, "call": call_key, "portal": portal}
        if state is None:
            # The state is gone (the memory broker restarted): log the call as
            # it was when it ended. Nothing is lost; a widget's engagement,
            # gone with the state, would not be known (docs/call-logging.md).
            if "properties" not in job.payload:
                return
            what = {"remote": job.payload.get("remote"), "properties": job.payload["properties"]}
        else:
            decision = decide(state)
            if decision is Decision.NOTHING:
                return
            if decision is Decision.UPDATE:
                base["engagement"] = str(state.engagement_id)
                base["properties"] = update_properties(state, portal, self.settings.app_id)
                await self.outbox.enqueue(UPDATE, job_key(UPDATE, user_id, call_key), base)
                return
            what = log_details(state, portal, self.settings.app_id)
        # Looked up once: every attempt of the log job searches for and writes
        # this owner, so a retry finds what an earlier attempt created even if
        # the user's owner changed meanwhile (or another instance's owner
        # listing says otherwise). A repeat of this job enqueues nothing.
        base["owner"] = await self._settled_owner(
            portal, job.payload.get("hubspot_user_id"), user_id, call_key
        )
        await self.outbox.enqueue(LOG, job_key(LOG, user_id, call_key), {**base, **what})

    async def _settled_owner(
        self, portal: int, hubspot_user: object, user_id: str, call_key: str
    ) -> str | None:
        """The owner kept with the user's leg of the call, else the one looked up now, kept from now on."""
        kept = await self.owners.find(user_id, call_key)
        if kept is not None:
            return kept.owner_id
        owner = await self._owner(portal, hubspot_user, call_key)
        await self.owners.keep(user_id, call_key, owner)
        return owner

    async def logged_leg(self, user_id: str, call_key: str, properties: Mapping[str, object]) -> Leg | None:
        """The leg the log job searches and writes for the user's call; None before it is settled.

        ``properties`` are the leg's as the log writes them (``LEG_IDENTITY``).
        """
        kept = await self.owners.find(user_id, call_key)
        return None if kept is None else Leg.of(kept.owner_id, properties)

    async def _owner(self, portal: int, hubspot_user: object, call_key: str) -> str | None:
        if not isinstance(hubspot_user, int):
            return None
        return await optional(self.records.owner_id(portal, hubspot_user), "its owner", call_key)

    # -- log: the gateway creates the engagement --------------------------------
    async def log(self, job: Job) -> None:
        payload = job.payload
        user_id, call_key, portal = payload["user"], payload["call"], int(payload["portal"])
        properties: dict[str, str] = dict(payload["properties"])
        state = await self.tracker.get_call(user_id, call_key)
        if state is not None and state.engagement_id is not None:
            # Ours from an attempt whose completion was lost, or the widget's,
            # reported after the gateway took the call over: that one it is.
            if state.logged_by == LOGGED_BY_GATEWAY:
                await self.records.update_call(portal, str(state.engagement_id), properties)
            else:
                await self.records.update_call(portal, str(state.engagement_id), widget_update(properties))
                self.logged.labels("widget").inc()
            return
        if "owner" in payload:
            owner = payload["owner"]
            # Kept again for a job settled before the owner was kept with the
            # call (the recordings would otherwise ask for the current one).
            await self.owners.keep(user_id, call_key, owner)
        else:
            # A job enqueued before ``settle`` fixed owners names the user only:
            # its first attempt looks the owner up, later ones keep to it.
            owner = await self._settled_owner(portal, payload.get("hubspot_user_id"), user_id, call_key)
        if owner is not None:
            properties["hubspot_owner_id"] = owner
        # Each user rung by a call has an engagement of their own under the
        # call's one external id: only this user's is this job's. Without an
        # owner, what this leg wrote of itself tells it apart (a widget's
        # engagement, which has its user's owner, is not found then either).
        engagement = await self.records.find_owned_call(portal, call_key, Leg.of(owner, properties))
        if engagement is not None:
            # An earlier attempt's create whose answer was lost: it is this call.
            await self.records.update_call(portal, engagement, properties)
        else:
            remote = payload.get("remote")
            records = []
            if remote:
                found = await optional(
                    self.records.find_records_by_phone(portal, remote), "its contact", call_key
                )
                records = found or []
            try:
                engagement = await self.records.create_call(portal, properties, records[:1])
            except Transient as exc:
                # A timeout or a 5xx may come after HubSpot made the call: the
                # retry's search must come late enough to find it (docs/call-logging.md).
                raise NotBefore(exc, SEARCH_SETTLE_SECONDS) from exc
        self.logged.labels("gateway").inc()
        number = parse_decimal(engagement, 20)
        if number is None:
            # The call is logged; only the gateway's note of it is missing.
            log.warning(
                "call %s logged, but HubSpot's engagement id %r is not a number; not kept",
                call_key,
                engagement[:40],
            )
            return
        log.info("call %s logged in HubSpot portal %s as engagement %s", call_key, portal, number)
        try:
            await self._change(user_id, call_key, lambda state: record_created(state, number))
        except Exception as exc:
            # The call is in HubSpot: failing the job now would retry it, and
            # a retry sooner than the search lag would create a second one.
            log.warning(
                "call %s logged as engagement %s, but its state could not keep the id (%s)",
                call_key,
                number,
                type(exc).__name__,
            )
        for listener in self.engagement_listeners:
            try:
                await listener(portal, user_id, call_key, number)
            except Exception:
                # The call is logged; a listener's failure must not retry the job.
                log.exception("call %s: a listener of its engagement %s failed", call_key, number)

    # -- update: the widget made it; the gateway completes it ------------------------
    async def update(self, job: Job) -> None:
        payload = job.payload
        await self.records.update_call(
            int(payload["portal"]), str(payload["engagement"]), payload["properties"]
        )
        if not payload.get("wrap_up"):
            self.logged.labels("widget").inc()  # a user's wrap-up logs no call: counted already

    # -- recording_ready: HubSpot may fetch the call's recording now ------------------
    async def on_recording(self, portal_id: int, external_call_id: str, engagement_id: str) -> None:
        """``RecordingAnnouncer`` (gateway.recordings): a durable job, retried like the others."""
        assert self.outbox is not None
        await self.outbox.enqueue(
            RECORDING_READY,
            job_key(RECORDING_READY, str(portal_id), external_call_id),
            {"portal": portal_id, "engagement": engagement_id},
        )

    async def recording_ready(self, job: Job) -> None:
        await self.records.recording_ready(int(job.payload["portal"]), str(job.payload["engagement"]))


async def optional(lookup: Awaitable[T], what: str, call_key: str) -> T | None:
    """A lookup the call can be logged without: HubSpot refusing it (a 403 for a
    scope the install lacks, say) leaves it out instead of burying the call."""
    try:
        return await lookup
    except Rejected as exc:
        log.warning("call %s: logged without %s, HubSpot refused the lookup: %s", call_key, what, exc)
        return None
