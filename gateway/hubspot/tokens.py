"""A portal's OAuth tokens and what they say about the connection (pure).

The tokens never show in a repr or a log line: ``repr=False`` keeps them
out of every dataclass repr, and only ``to_json`` (which the store
encrypts) ever writes them out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CONNECTED = "connected"
EXPIRING = "expiring"  # past its refresh time: the refresh is failing or late
BROKEN = "broken"  # the grant was revoked or refused: an admin must reinstall


@dataclass(frozen=True)
class TokenGrant:
    """What HubSpot's token endpoint answered."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: float
    hub_id: int | None = None
    scopes: tuple[str, ...] = ()


@dataclass(frozen=True)
class PortalTokens:
    portal_id: int
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: float  # epoch seconds
    scopes: tuple[str, ...] = ()
    # Why the grant stopped working; empty while it works.
    broken: str = ""

    @classmethod
    def from_grant(cls, portal_id: int, grant: TokenGrant, now: float) -> PortalTokens:
        return cls(portal_id, grant.access_token, grant.refresh_token, now + grant.expires_in, grant.scopes)

    def refreshed(self, grant: TokenGrant, now: float) -> PortalTokens:
        # HubSpot may or may not hand out a new refresh token; keep the old one if not.
        return PortalTokens(
            self.portal_id,
            grant.access_token,
            grant.refresh_token or self.refresh_token,
            now + grant.expires_in,
            grant.scopes or self.scopes,
        )

    def state(self, now: float, margin: float) -> str:
        if self.broken:
            return BROKEN
        return EXPIRING if now >= self.expires_at - margin / 2 else CONNECTED

    def to_json(self) -> dict[str, Any]:
        return {
            "portal_id": self.portal_id,
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_at": self.expires_at,
            "scopes": list(self.scopes),
            "broken": self.broken,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PortalTokens:
        return cls(
            portal_id=int(data["portal_id"]),
            access_token=str(data["access_token"]),
            refresh_token=str(data["refresh_token"]),
            expires_at=float(data["expires_at"]),
            scopes=tuple(str(s) for s in data.get("scopes", ())),
            broken=str(data.get("broken", "")),
        )
