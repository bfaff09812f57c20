"""The call logger as a component: an outbox, its jobs, and the tracker's word that a call ended.

Built by ``gateway.assemble`` when the settings have a ``[hubspot]`` table
and a ``CallRecords`` (the HubSpot client) is given; without either, the
gateway logs nothing itself and calls reach HubSpot through the widget only.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable

from gateway.broker.base import BrokerUnavailable
from gateway.calllog.jobs import SETTLE, UPDATE, CallLogJobs, log_details
from gateway.calllog.settings import CallLogSettings
from gateway.config import Settings
from gateway.hubspot.crm import CallRecords
from gateway.model import CallState
from gateway.ops.metrics import Metrics
from gateway.outbox.jobs import encode_payload, job_key
from gateway.outbox.redis import RedisStore
from gateway.outbox.sqlite import SqliteStore
from gateway.outbox.store import JobStore, StoreUnavailable
from gateway.outbox.worker import POLL_SECONDS, Outbox
from gateway.tracker import CallTracker
from gateway.users.directory import Directory

log = logging.getLogger("gateway.calllog")


def make_store(settings: Settings, calllog: CallLogSettings) -> JobStore:
    """Redis when the gateway runs on Redis (every instance shares the jobs), else the SQLite file."""
    if settings.redis_url:
        return RedisStore(settings.redis_url, settings.key_prefix, done_seconds=settings.call_ttl_seconds)
    return SqliteStore(calllog.outbox_file, done_seconds=settings.call_ttl_seconds)


class CallLogger:
    def __init__(
        self,
        settings: CallLogSettings,
        store: JobStore,
        tracker: CallTracker,
        records: CallRecords,
        directory: Callable[[], Directory],
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.time,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.settings = settings
        self.directory = directory
        self.jobs = CallLogJobs(settings, tracker, records, metrics)
        self.outbox = Outbox(store, self.jobs.handlers(), metrics, clock=clock, poll_seconds=poll_seconds)
        self.jobs.outbox = self.outbox
        tracker.ended_listeners.append(self.call_ended)

    async def start(self) -> None:
        await self.outbox.start()

    async def stop(self) -> None:
        await self.outbox.stop()

    async def call_ended(self, state: CallState) -> None:
        """A signal ended the call (maybe again): settle it once the grace period is over.

        Called for every end signal, so a source that retries its signal
        also retries this; the job's key makes the repeats one job.
        """
        user = self.directory().by_id(state.user_id)
        if user is None:
            log.warning("call %s ended for user %s, who is gone: not logged", state.call_key, state.user_id)
            return
        payload: dict[str, object] = {
            "user": state.user_id,
            "call": state.call_key,
            "portal": user.tenant,
            "hubspot_user_id": user.hubspot_user_id,
        }
        if state.end_status() is not None:
            # What to write if the call's state is gone when the grace period
            # is over (the memory broker after a restart): the job still logs it.
            payload.update(log_details(state, user.tenant, self.settings.app_id))
        try:
            await self.outbox.enqueue(
                SETTLE, job_key(SETTLE, state.user_id, state.call_key), payload, self.settings.grace_seconds
            )
        except StoreUnavailable as exc:
            # The source keeps or resends its signal (as for a broker outage),
            # which enqueues again.
            raise BrokerUnavailable(str(exc)) from exc

    async def wrap_up(
        self, portal_id: int, user_id: str, call_key: str, engagement_id: int, properties: dict[str, str]
    ) -> bool:
        """The user's wrap-up of a call already completed: an ``update`` of its engagement, durable.

        Saving the same wrap-up again is the same job (its key holds the
        properties' digest); a changed one is a new job. Raises
        StoreUnavailable when the outbox cannot keep it.
        """
        digest = hashlib.sha256(encode_payload(properties).encode()).hexdigest()[:16]
        payload = {
            "user": user_id,
            "call": call_key,
            "portal": portal_id,
            "engagement": str(engagement_id),
            "properties": properties,
            "wrap_up": True,
        }
        return await self.outbox.enqueue(
            UPDATE, job_key(UPDATE, user_id, f"{call_key}#wrap-up:{digest}"), payload
        )
