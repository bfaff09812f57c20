"""What the CPaaS routes share: the user's phone, one request to a provider, its refusals.

A provider that refuses a create-call request (bad credentials, a number
it will not call, its rate limit, its own outage) or does not answer in
time becomes ``DialRefused`` with one sentence; the dial service then ends
the call FAILED. The sentence names the provider's status and its own
short message, never a credential.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx

from gateway.dial.routes import DialPlan, DialRefused, Refusal, no_phone
from gateway.users.directory import Directory, User

log = logging.getLogger("gateway.dial")

# How long the user's own phone rings before the dial gives up on them.
USER_RING_SECONDS = 30
# The longest the dialled number rings at the providers' defaults (Vonage's
# connect: 60 s; Twilio's <Dial> and Telnyx's transfer: 30 s).
TARGET_RING_SECONDS = 60
# Both legs unanswered: the dial's deadline is this plus a margin.
RING_SECONDS = float(USER_RING_SECONDS + TARGET_RING_SECONDS)
# The provider's own words in a refusal, cut to this length.
_DETAIL_CHARS = 160

Detail = Callable[[Any], str | None]


NO_NUMBER = (
    "you have no phone number of your own for the gateway to ring first; "
    "ask your administrator to add your mobile number to your user"
)


class RingsUserNumber:
    """What the CPaaS routes share as ``Dialler``s: they ring the user's number and present the caller id."""

    chooses_caller_id = True
    needs_caller_id = True  # the provider presents no number of its own

    def refusal_for(self, user: User) -> Refusal | None:
        return no_phone(NO_NUMBER) if user.own_number is None else None


def user_phone(directory: Directory, plan: DialPlan) -> str:
    """The phone called first: the user's first number (their mobile, in E.164)."""
    user = directory.by_id(plan.user_id)
    if user is None or user.own_number is None:
        raise DialRefused(no_phone(NO_NUMBER))
    return user.own_number


def client(timeout_seconds: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=httpx.Timeout(timeout_seconds), follow_redirects=False)


async def send(
    http: httpx.AsyncClient, provider: str, request: httpx.Request, detail: Detail, credentials: str
) -> Any:
    """The provider's JSON answer to ``request``, or ``DialRefused`` saying why not."""
    try:
        response = await http.send(request)
    except httpx.TimeoutException:
        raise DialRefused.by_route(f"{provider} did not answer in time", status=504) from None
    except httpx.HTTPError as exc:
        raise DialRefused.by_route(f"{provider} could not be reached ({type(exc).__name__})") from None
    status = response.status_code
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if status in (401, 403):
        log.warning("%s refused the gateway's credentials (%s): check %s", provider, status, credentials)
        raise DialRefused.by_route(f"{provider} refused the gateway's credentials ({status})")
    if status == 429:
        wait = response.headers.get("retry-after", "")
        raise DialRefused(
            Refusal(
                503,
                "route-refused",
                f"{provider} is limiting the rate of calls (429); try again shortly",
                retry_after_seconds=int(wait) if wait.isdigit() else None,
            )
        )
    if status >= 300:
        said = _short(detail(body)) if body is not None else None
        reason = f": {said}" if said else ""
        raise DialRefused.by_route(f"{provider} refused the call ({status}{reason})")
    if body is None:
        raise DialRefused.by_route(f"{provider} accepted the call but its answer was not JSON")
    return body


def _short(text: str | None) -> str | None:
    if not text:
        return None
    text = " ".join(str(text).split())
    return text if len(text) <= _DETAIL_CHARS else text[: _DETAIL_CHARS - 1] + "…"


def without_plus(number: str) -> str:
    """Vonage writes international numbers as digits only."""
    return number.removeprefix("+")
