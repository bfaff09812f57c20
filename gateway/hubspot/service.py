"""The gateway's HubSpot connection as one component: its parts, started and stopped together.

Built by ``gateway.assemble`` from the ``[hubspot]`` settings; the web
layer reads the OAuth pieces from it, the call logger its ``crm``.
"""

from __future__ import annotations

import time

from gateway.hubspot.calling_settings import CallingSettings
from gateway.hubspot.client import HubSpotClient, http_client
from gateway.hubspot.connections import Connections
from gateway.hubspot.crm_client import HubSpotCrm
from gateway.hubspot.install_state import InstallState
from gateway.hubspot.oauth import OAuth
from gateway.hubspot.ratelimit import Pacer, Pacing
from gateway.hubspot.refresher import Refresher
from gateway.hubspot.settings import HubSpotSettings
from gateway.hubspot.store import TokenStore
from gateway.hubspot.tokens import BROKEN, CONNECTED, EXPIRING

CALLBACK_PATH = "/hubspot/oauth/callback"
INSTALL_PATH = "/hubspot/install"


class HubSpotService:
    def __init__(self, settings: HubSpotSettings, store: TokenStore, pacer: Pacing | None = None) -> None:
        self.settings = settings
        self.http = http_client(settings.timeout_seconds)
        self.oauth = OAuth(settings, self.http)
        self.install_state = InstallState(settings.client_secret)
        self.connections = Connections(store, self.oauth, settings.refresh_margin_seconds)
        self.client = HubSpotClient(settings.api_base, self.http, self.connections, pacer or Pacer())
        self.crm = HubSpotCrm(self.client)
        self.calling_settings = CallingSettings(
            settings.api_base, settings.app_id, settings.developer_api_key, self.http
        )
        self._refresher = Refresher(self.connections)

    def __repr__(self) -> str:
        return f"HubSpotService(app {self.settings.app_id}, {self.settings.api_base})"

    async def start(self) -> None:
        # A store that cannot be read now (Redis down) is read again later: start anyway.
        await self.connections.sync()
        await self._refresher.start()

    async def stop(self) -> None:
        await self._refresher.stop()
        await self.http.aclose()
        await self.client.pacer.close()
        await self.connections.store.close()

    async def readiness(self) -> tuple[bool, str]:
        """Ready unless a portal is broken: its calls cannot be logged until an admin reinstalls."""
        statuses = self.connections.statuses()
        if not statuses:
            return True, "no portal connected"
        words = ", ".join(f"portal {s.portal_id} {s.state}" for s in statuses)
        return all(s.state != BROKEN for s in statuses), words

    def portal_gauge(self) -> dict[tuple[str, ...], float]:
        """``gateway_hubspot_portals{state}``: how many portals in each state."""
        counts = {CONNECTED: 0.0, EXPIRING: 0.0, BROKEN: 0.0}
        for status in self.connections.statuses():
            counts[status.state] += 1
        return {(state,): n for state, n in counts.items()}


def describe_expiry(expires_at: float, now: float | None = None) -> str:
    left = expires_at - (time.time() if now is None else now)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires_at))
    return f"{stamp} ({'in' if left >= 0 else 'expired'} {abs(int(left))} s{'' if left >= 0 else ' ago'})"
