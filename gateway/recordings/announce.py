"""Telling HubSpot a call's recording is ready: the hook, and its direct form.

HubSpot's recording flow ends with the app posting the engagement's id to
``/crm/extensions/calling/2026-03/recordings/ready`` (``CallRecords.recording_ready``).
``RecordingService`` calls a ``RecordingAnnouncer`` once per recording, when
the recording and the call's engagement are both known, whichever came
first. ``DirectAnnouncer`` calls HubSpot at once and logs a failure; the
durable outbox (``gateway.outbox``) takes its place to retry with backoff.
"""

from __future__ import annotations

import logging
from typing import Protocol

from gateway.hubspot.crm import CallRecords
from gateway.hubspot.errors import HubSpotError

log = logging.getLogger("gateway.recordings")


class RecordingAnnouncer(Protocol):
    async def on_recording(self, portal_id: int, external_call_id: str, engagement_id: str) -> None:
        """HubSpot must be told that the engagement's recording can be fetched now."""
        ...


class DirectAnnouncer:
    """``recording_ready`` right away; a failure is logged, not retried (the outbox retries)."""

    def __init__(self, records: CallRecords) -> None:
        self._records = records

    async def on_recording(self, portal_id: int, external_call_id: str, engagement_id: str) -> None:
        try:
            await self._records.recording_ready(portal_id, engagement_id)
        except HubSpotError as exc:
            log.warning(
                "telling HubSpot portal %s that call %s has a recording failed (%s): %s",
                portal_id,
                external_call_id,
                exc.reason,
                exc,
            )
