"""The connected portals: their current access tokens, refreshed ahead of expiry and on a 401.

A refresh refused by HubSpot (``invalid_grant``, 401: the app was
uninstalled or the grant revoked) marks the portal broken, kept in the
store with the reason, so that ``gateway hubspot status``, ``/readyz`` and
the metric show it; callers then get ``Unauthorized`` and keep their jobs
until an admin reinstalls. A refresh that fails transiently is tried again.

Several instances share the store (Redis): before refreshing, an instance
reloads the portal's tokens, and uses another instance's fresh token if
there is one. HubSpot keeps a portal's refresh token valid across
refreshes, so two instances refreshing at once both succeed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from gateway.hubspot.errors import NotConnected, Rejected, Transient, Unauthorized
from gateway.hubspot.oauth import OAuth
from gateway.hubspot.store import TokenStore
from gateway.hubspot.tokens import BROKEN, PortalTokens, TokenGrant

log = logging.getLogger("gateway.hubspot")

# How stale this instance's view of a missing or broken portal may be.
SYNC_SECONDS = 5.0


@dataclass(frozen=True)
class PortalStatus:
    portal_id: int
    state: str  # connected, expiring, broken
    expires_at: float
    reason: str = ""


class Connections:
    def __init__(
        self,
        store: TokenStore,
        oauth: OAuth,
        refresh_margin: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self._oauth = oauth
        self.margin = refresh_margin
        self._clock = clock
        self._tokens: dict[int, PortalTokens] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self._synced_at = 0.0
        # Set when a portal connects or refreshes: the refresher recomputes its wait.
        self.changed = asyncio.Event()
        # Told of each portal an install connected (the call logger runs its parked jobs).
        self.connected_listeners: list[Callable[[int], Awaitable[object]]] = []

    async def load(self) -> None:
        self._tokens = await self.store.load()
        self._synced_at = self._clock()
        self.changed.set()

    async def sync(self) -> None:
        """Rereads the store: another instance may have connected, refreshed or broken a portal."""
        try:
            await self.load()
        except Exception as exc:  # the store is down: keep what this instance knows
            log.warning("cannot reread the HubSpot tokens (%s): keeping this instance's", type(exc).__name__)

    async def connect(self, grant: TokenGrant) -> int:
        """Keeps the tokens of a completed install; returns the portal id."""
        portal = grant.hub_id if grant.hub_id is not None else await self._oauth.portal_of(grant.access_token)
        tokens = PortalTokens.from_grant(portal, grant, self._clock())
        await self.store.save(tokens)
        self._tokens[portal] = tokens
        self.changed.set()
        log.info("HubSpot portal %s connected", portal)
        for listener in self.connected_listeners:
            try:
                await listener(portal)
            except Exception as exc:  # the install succeeded; the jobs run at their parked time
                log.warning("after connecting portal %s: %s", portal, type(exc).__name__)
        return portal

    def statuses(self) -> list[PortalStatus]:
        now = self._clock()
        return [
            PortalStatus(t.portal_id, t.state(now, self.margin), t.expires_at, t.broken)
            for t in sorted(self._tokens.values(), key=lambda t: t.portal_id)
        ]

    def current(self, portal: int) -> PortalTokens:
        tokens = self._tokens.get(portal)
        if tokens is None:
            raise NotConnected(f"HubSpot portal {portal} is not connected: install the app there")
        if tokens.broken:
            raise Unauthorized(f"HubSpot portal {portal} is broken ({tokens.broken}): reinstall the app")
        return tokens

    async def access_token(self, portal: int) -> str:
        """A token good for the next request, refreshed first when it is about to expire."""
        known = self._tokens.get(portal)
        if (known is None or known.broken) and self._clock() - self._synced_at > SYNC_SECONDS:
            await self.sync()  # installed (again) through another instance?
        tokens = self.current(portal)
        if self._clock() < tokens.expires_at - self.margin / 2:
            return tokens.access_token
        return (await self.refresh(portal, tokens.access_token)).access_token

    async def refresh(self, portal: int, stale: str) -> PortalTokens:
        """New tokens for ``portal``, unless the ones in use are already newer than ``stale``."""
        async with self._locks.setdefault(portal, asyncio.Lock()):
            tokens = self.current(portal)
            if tokens.access_token != stale:
                return tokens  # refreshed meanwhile by another request
            stored = (await self.store.load()).get(portal)
            if stored is not None and stored.access_token != stale and not stored.broken:
                self._tokens[portal] = stored  # another instance refreshed
                return stored
            try:
                grant = await self._oauth.refresh(tokens.refresh_token)
            except Unauthorized as exc:
                await self._mark_broken(tokens, str(exc))
                raise
            except Rejected as exc:
                # Our side is wrong (e.g. invalid_client: a changed client
                # secret), not the grant: the portal is not broken, and the
                # callers keep their jobs as for a 401.
                log.warning("HubSpot refused to refresh portal %s's token: %s", portal, exc)
                raise Unauthorized(str(exc)) from None
            except Transient:
                raise
            fresh = tokens.refreshed(grant, self._clock())
            await self.store.save(fresh)
            self._tokens[portal] = fresh
            self.changed.set()
            return fresh

    async def _mark_broken(self, tokens: PortalTokens, reason: str) -> None:
        broken = replace(tokens, broken=reason or "refresh refused")
        self._tokens[tokens.portal_id] = broken
        self.changed.set()
        log.warning("HubSpot portal %s is %s: %s; reinstall the app there", tokens.portal_id, BROKEN, reason)
        try:
            await self.store.save(broken)
        except Exception as exc:  # the state in memory still shows it
            log.warning("could not store the broken state of portal %s: %s", tokens.portal_id, exc)

    def next_refresh(self, not_before: dict[int, float] | None = None) -> tuple[int, float] | None:
        """The working portal to refresh first and when (epoch seconds); ``not_before`` delays some."""
        later = not_before or {}
        due = [
            (max(t.expires_at - self.margin, later.get(t.portal_id, 0.0)), t.portal_id)
            for t in self._tokens.values()
            if not t.broken
        ]
        if not due:
            return None
        at, portal = min(due)
        return portal, at
