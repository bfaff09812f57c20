"""How a HubSpot request failed, sorted by what the caller should do next.

Every HubSpot call raises one of these and nothing else, so the outbox can
choose between waiting, retrying, refreshing and giving up without knowing
HTTP.
"""

from __future__ import annotations


class HubSpotError(Exception):
    """A HubSpot request that did not succeed. ``reason`` is a short metric label."""

    reason = "error"


class RateLimited(HubSpotError):
    """429: wait ``retry_after`` seconds (from HubSpot's headers) and try again."""

    reason = "rate_limited"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unauthorized(HubSpotError):
    """401 after a refresh was already tried, or the portal's grant was revoked."""

    reason = "unauthorized"


class NotConnected(HubSpotError):
    """No tokens for this portal: an admin has not installed the app there."""

    reason = "not_connected"


class Transient(HubSpotError):
    """5xx, a timeout or a dropped connection: retry later with backoff."""

    reason = "transient"


class Rejected(HubSpotError):
    """A 4xx other than 401 and 429: retrying the same request cannot help."""

    reason = "rejected"
