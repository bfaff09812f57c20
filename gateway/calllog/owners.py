"""The owner a user's leg of a call is logged with, kept with the call once it is looked up.

``settle`` looks the owner up once and the ``log`` job writes and searches
with that one on every attempt; the recordings search for the same
engagement, so they must ask for the same owner, not the user's current one
(reassigned meanwhile, the search would miss). Kept over the broker (memory,
or Redis shared by every instance) for as long as any call's state may be
kept, so a recording that comes while the call is known finds it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from gateway.broker.base import Broker

# The longest CALL_TTL_SECONDS allowed: the recordings search only for a call
# whose state is still kept.
KEEP_SECONDS = 30 * 86400


@dataclass(frozen=True)
class LoggedOwner:
    """The owner the leg is logged with; ``owner_id`` None: logged without one."""

    owner_id: str | None


class LoggedOwners:
    def __init__(self, broker: Broker) -> None:
        self._broker = broker

    async def keep(self, user_id: str, call_key: str, owner_id: str | None) -> None:
        await self._broker.put_value(_key(user_id, call_key), json.dumps({"owner": owner_id}), KEEP_SECONDS)

    async def find(self, user_id: str, call_key: str) -> LoggedOwner | None:
        """The owner kept for the leg; None when none was (not settled yet, or by an older version)."""
        raw = await self._broker.get_value(_key(user_id, call_key))
        if raw is None:
            return None
        try:
            owner = json.loads(raw).get("owner")
        except (ValueError, AttributeError):
            return None  # not a form this version wrote: as if none was kept
        return LoggedOwner(owner if isinstance(owner, str) else None)


def _key(user_id: str, call_key: str) -> str:
    return f"call-log-owner:{user_id}:{call_key}"
