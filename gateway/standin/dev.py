"""``./dev run``'s HubSpot: the stand-in under ``/dev/hubspot``, a demo portal connected.

The dev gateway's HubSpot settings point at the stand-in, whose page at
``/dev/hubspot/`` lists the calls logged there; the demo portal (the demo
user's tenant) is connected at start-up with tokens the stand-in issued,
so calls are logged with no install and no widget open.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from gateway.config import Settings
from gateway.hubspot.service import HubSpotService
from gateway.hubspot.settings import HubSpotSettings
from gateway.hubspot.store import MemoryTokenStore
from gateway.hubspot.tokens import TokenGrant
from gateway.standin.hubspot import HubSpotStandIn

MOUNT = "/dev/hubspot"
DEMO_PORTAL = 1  # the demo user's tenant (gateway.cli)
DEMO_CALLER = "+15555550123"  # the number the dev banner's example call comes from


def fresh_outbox_file(settings: Settings) -> Path:
    """The dev call logger's job file, emptied: the stand-in forgot the last run's portal and calls.

    Kept apart from the default ``var/outbox.sqlite3``; without emptying it, a
    call id sent again in a new run (the banner's ``demo-1``) would count as
    logged already and never reach the new stand-in.
    """
    path = settings.users_file.parent / "dev-outbox.sqlite3"
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        stale.unlink(missing_ok=True)
    return path


def dev_hubspot(settings: Settings) -> tuple[HubSpotService, HubSpotStandIn]:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    base = (settings.public_url or f"http://{host}:{settings.port}") + MOUNT
    standin = HubSpotStandIn(default_portal=DEMO_PORTAL)
    standin.add_contact(DEMO_PORTAL, firstname="Dana", lastname="Caller", phone=DEMO_CALLER)
    standin.add_company(DEMO_PORTAL, name="Example Corp", phone="+15555550199")
    hubspot = HubSpotSettings(
        app_id=standin.app_id,
        client_id=standin.client_id,
        client_secret=standin.client_secret,
        token_key=secrets.token_urlsafe(24),
        developer_api_key=standin.developer_api_key,
        api_base=base,
        auth_base=base,
    )
    return HubSpotService(hubspot, MemoryTokenStore()), standin


class DemoPortal:
    """Connects the demo portal once the HubSpot service has loaded its (empty) store."""

    def __init__(self, service: HubSpotService, standin: HubSpotStandIn) -> None:
        self._service = service
        self._standin = standin

    async def start(self) -> None:
        issued = self._standin.issue_tokens(DEMO_PORTAL)
        grant = TokenGrant(
            issued["access_token"], issued["refresh_token"], float(issued["expires_in"]), DEMO_PORTAL
        )
        await self._service.connections.connect(grant)

    async def stop(self) -> None:
        return None
