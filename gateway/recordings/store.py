"""Recordings kept per call (its external id) over the broker, for a while.

In memory on the embedded broker, in Redis when shared: every instance can
answer HubSpot for any call's recording. Each entry lives ``keep_seconds``
(``[recordings] keep_seconds``); HubSpot asks for the authed URL when a user
plays the recording, so this bounds how long after the call that works
(a PBX template's recording is kept here too once its call's engagement is
known: the call's state, through which the template finds it, expires sooner).
"""

from __future__ import annotations

from gateway.broker.base import Broker
from gateway.recordings.location import Recording, decode, encode


class RecordingStore:
    def __init__(self, broker: Broker, keep_seconds: int) -> None:
        self._broker = broker
        self._keep = keep_seconds

    async def keep(self, recording: Recording) -> None:
        await self._broker.put_value(f"recording:{recording.external_id}", encode(recording), self._keep)

    async def find(self, external_id: str) -> Recording | None:
        raw = await self._broker.get_value(f"recording:{external_id}")
        return None if raw is None else decode(raw)

    async def first_announcement(self, recording: Recording) -> bool:
        """True once per recording, whichever instance asks: HubSpot is told once."""
        return await self._broker.burn(_announced(recording), self._keep)

    async def announcement_failed(self, recording: Recording) -> None:
        """The announcement could not be handed on: the next callback makes it."""
        await self._broker.unburn(_announced(recording))

    # Vonage's recording event names the conversation; its status events name both.
    async def remember_conversation(self, conversation_id: str, leg_id: str) -> None:
        await self._broker.put_value(f"vonage-conversation:{conversation_id}", leg_id, self._keep)

    async def leg_of(self, conversation_id: str) -> str | None:
        return await self._broker.get_value(f"vonage-conversation:{conversation_id}")


def _announced(recording: Recording) -> str:
    return f"recording-ready:{recording.external_id}:{recording.recording_id}"
