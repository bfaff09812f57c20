"""What SIP instances share: who holds which subscription, call identities, publications.

The SIP source never talks to the broker (``tests/test_layers.py``); it is
given an object with these methods, built by ``gateway.assemble`` from the
broker settings: ``gateway.broker.coordination.LocalCoordination`` for the
embedded broker (one process owns everything) and
``gateway.broker.redis_coordination.RedisCoordination`` with Redis. The
scaling model they implement is described in docs/scaling.md.

Names (``name``, ``scope``, ``entity``) are addresses of record; each
implementation keeps everything of one AOR together (one Redis Cluster slot).
"""

from __future__ import annotations

from typing import Protocol

from gateway.sources.ownership import Leases


class Coordination(Leases, Protocol):
    """The leases (``gateway.sources.ownership.Leases``), shared with the PBX sources, and SIP's own."""

    async def close(self) -> None:
        """Let go of connections (the SIP service's stop)."""
        ...

    # -- call identity for PBXes that name no call-id ------------------------------------
    async def claim_call(self, scope: str, key: str, proposed: str, ttl_seconds: int) -> str:
        """The call id of the PBX call ``key`` under ``scope``: ``proposed`` if first, else the one held."""
        ...

    async def end_call(self, scope: str, key: str, call_id: str) -> None:
        """The call ended: the next call with the same key is another call."""
        ...

    async def open_calls(self, scope: str) -> dict[str, str]:
        """The calls claimed under ``scope`` and not ended: key -> call id."""
        ...

    # -- PUBLISH state (RFC 3903) ----------------------------------------------------------
    async def save_publication(
        self,
        entity: str,
        publication_id: str,
        expected_etag: str | None,
        record: str,
        expires_at_ms: int,
    ) -> bool:
        """Store a publication's record (JSON: etag, user, dialogs) until ``expires_at_ms``.

        ``expected_etag`` None creates it; otherwise only while that is still
        its current entity tag (a refresh or modification), and the dialogs
        already recorded are kept beside the record's. False: no such
        publication or another tag is current (412).
        """
        ...

    async def remove_publication(self, entity: str, publication_id: str, etag: str) -> str | None:
        """Remove it if ``etag`` is its current tag; its record, else None."""
        ...

    async def take_expired_publications(self, now_ms: int, limit: int) -> list[str]:
        """Records of publications expired by ``now_ms``, each handed to one instance only."""
        ...
