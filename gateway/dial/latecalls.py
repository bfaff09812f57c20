"""The calls a provider placed for dials that were over by then, hung up once each by this instance.

A dial that failed or expired may still get its call placed (the provider
answered the create-call request too late); the webhook receiver then asks
the route to hang up its user leg (docs/dialling.md#cpaas-routes). Every
webhook of that leg asks again, and two of them may come at once: the call
is hung up once per instance, a later request for it is skipped (unless
the first could not be sent or was refused: the next webhook tries again).
A provider answering that the call is over already (it ended by itself, or
another instance hung it up) has done what was asked: an INFO line, not a
WARNING.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx

log = logging.getLogger("gateway.dial")

# Late calls this instance remembers asking about (they are rare: a provider
# answering after the dial's timeout); the oldest is forgotten first.
REMEMBERED = 1000


class LateCalls:
    def __init__(
        self, provider: str, http: httpx.AsyncClient, over_already: Callable[[httpx.Response], bool]
    ) -> None:
        self.provider = provider
        self._http = http
        # Whether the provider's answer to a hang-up says the call had ended before it.
        self._over_already = over_already
        # Insertion-ordered: the calls asked about, oldest first.
        self._asked: dict[str, None] = {}

    async def hang_up(self, call_id: str, dial_id: str, request: Callable[[], httpx.Request]) -> None:
        """End the provider's call ``call_id`` of dial ``dial_id`` with ``request()``, unless asked before."""
        what = f"{self.provider}: the late call of dial {dial_id}"
        if call_id in self._asked:
            log.debug("%s is being hung up or was: not asked again", what)
            return
        self._asked[call_id] = None
        while len(self._asked) > REMEMBERED:
            del self._asked[next(iter(self._asked))]
        try:
            response = await self._http.send(request())
        except httpx.HTTPError as exc:
            self._asked.pop(call_id, None)
            log.warning("%s not hung up (%s)", what, type(exc).__name__)
            return
        if response.status_code < 300:
            log.info("%s hung up", what)
        elif self._over_already(response):
            log.info("%s was over already (%s)", what, response.status_code)
        else:
            self._asked.pop(call_id, None)
            log.warning("%s not hung up (%s)", what, response.status_code)
