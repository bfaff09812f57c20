"""What SIP instances share, for the embedded broker: one process, so it holds everything.

The interface is ``gateway.sources.sip.coordination.Coordination`` (the SIP
source's view); ``gateway.broker.redis_coordination`` is the shared one.
Here every lease is granted (there is nobody to share with) and the rest
lives in dictionaries, so that the single process answers PUBLISH refreshes
and removals by the same rules as a fleet on Redis.
"""

from __future__ import annotations

import itertools
import json
import secrets
import time
from collections.abc import Mapping
from typing import Any

MAX_PUBLICATIONS = 100_000


def merge_publication(current: str | None, new: str) -> str:
    """``new``'s record with the dialogs of ``current`` it does not name (both JSON)."""
    record: dict[str, Any] = json.loads(new)
    if current:
        kept: dict[str, Any] = json.loads(current).get("dialogs") or {}
        dialogs: dict[str, Any] = record.get("dialogs") or {}
        record["dialogs"] = {**kept, **dialogs}
    return json.dumps(record, separators=(",", ":"))


def etag_of(record: str) -> str:
    value = json.loads(record).get("etag")
    return value if isinstance(value, str) else ""


class LocalCoordination:
    """The embedded broker's: this process owns every subscription."""

    shared = False

    def __init__(self) -> None:
        self.instance_id = secrets.token_hex(6)
        self._tokens = itertools.count(1)
        # scope -> key -> call id, and when the scope's claims run out
        self._calls: dict[str, tuple[dict[str, str], float]] = {}
        # (entity, publication id) -> (record JSON, expires at ms)
        self._publications: dict[tuple[str, str], tuple[str, int]] = {}

    async def close(self) -> None:
        return None

    async def heartbeat(self, ttl_seconds: float) -> list[str]:
        return [self.instance_id]

    async def leave(self) -> None:
        return None

    async def acquire(self, name: str, ttl_seconds: float) -> int | None:
        return next(self._tokens)

    async def renew(self, leases: Mapping[str, int], ttl_seconds: float) -> list[str]:
        return []

    async def release(self, name: str, token: int) -> None:
        return None

    def _claims(self, scope: str) -> dict[str, str]:
        held = self._calls.get(scope)
        if held is None or held[1] <= time.monotonic():
            return {}
        return held[0]

    async def claim_call(self, scope: str, key: str, proposed: str, ttl_seconds: int) -> str:
        claims = self._claims(scope)
        if key in claims:
            return claims[key]
        claims[key] = proposed
        # As on Redis: the scope's claims live on while calls are being claimed in it.
        self._calls[scope] = (claims, time.monotonic() + ttl_seconds)
        return proposed

    async def end_call(self, scope: str, key: str, call_id: str) -> None:
        claims = self._claims(scope)
        if claims.get(key) == call_id:
            del claims[key]
            if not claims:
                self._calls.pop(scope, None)

    async def open_calls(self, scope: str) -> dict[str, str]:
        return dict(self._claims(scope))

    async def save_publication(
        self,
        entity: str,
        publication_id: str,
        expected_etag: str | None,
        record: str,
        expires_at_ms: int,
    ) -> bool:
        held = self._publications.get((entity, publication_id))
        if expected_etag is not None and (held is None or etag_of(held[0]) != expected_etag):
            return False
        merged = merge_publication(held[0] if held else None, record)
        self._publications[(entity, publication_id)] = (merged, expires_at_ms)
        while len(self._publications) > MAX_PUBLICATIONS:
            # A publisher that never removes: the oldest go (their calls end by their own documents).
            del self._publications[next(iter(self._publications))]
        return True

    async def remove_publication(self, entity: str, publication_id: str, etag: str) -> str | None:
        held = self._publications.get((entity, publication_id))
        if held is None or etag_of(held[0]) != etag:
            return None
        del self._publications[(entity, publication_id)]
        return held[0]

    async def take_expired_publications(self, now_ms: int, limit: int) -> list[str]:
        expired = [key for key, (_, until) in self._publications.items() if until <= now_ms][:limit]
        return [self._publications.pop(key)[0] for key in expired]
