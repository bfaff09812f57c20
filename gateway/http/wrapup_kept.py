"""A call's wrap-up kept for the page, which a cross-site frame cannot keep itself.

Per user and call the gateway keeps what was typed into the wrap-up (saved
as the user types) and whether it is still owed to HubSpot (HubSpot refused
the ``callCompleted`` update): ``PUT`` and ``DELETE``
``/api/calls/{id}/wrap-up/kept``, read back by a page that opens with
``GET /api/wrap-up/kept``. A successful save (``POST .../wrap-up``) forgets
it; so does the broker, after a call's lifetime (docs/page.md#wrap-up).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.calllog.properties import NOTES_MAX_CHARS
from gateway.http.bodies import read_json_object
from gateway.http.errors import ApiError
from gateway.http.sessions import current_user, gateway_of
from gateway.runtime import Gateway
from gateway.users.directory import User
from gateway.wire import call_snapshot

OUTCOME_MAX_CHARS = 100
# Notes of the longest allowed length with every character JSON-escaped
# (six bytes each: a backslash, "u" and four hex digits), and the rest of
# the object: a longer body is refused before it is read.
KEPT_BODY_BYTES = NOTES_MAX_CHARS * 6 + 1024


@dataclass(frozen=True)
class Kept:
    notes: str
    outcome: str
    owed: bool  # HubSpot refused it: offered until sent or discarded

    def encode(self) -> str:
        return json.dumps(
            {"notes": self.notes, "outcome": self.outcome, "owed": self.owed},
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @staticmethod
    def decode(text: str) -> Kept | None:
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        notes, outcome = data.get("notes"), data.get("outcome")
        if not isinstance(notes, str) or not isinstance(outcome, str):
            return None
        return Kept(notes, outcome, data.get("owed") is True)


def text_field(data: dict[str, object], name: str, limit: int) -> str:
    """A string field of a wrap-up body (absent: empty), 422 when not a string or too long."""
    value = data.get(name, "")
    if not isinstance(value, str):
        raise ApiError(422, f"{name} must be a string", "bad-field")
    if len(value) > limit:
        raise ApiError(422, f"{name} is longer than {limit} characters", "too-long")
    return value


async def _own_call(gw: Gateway, user: User, call_key: str) -> None:
    """404 unless the call is one of the user's (another user's is unknown here)."""
    if await gw.tracker.get_call(user.id, call_key) is None:
        raise ApiError(404, f"no call {call_key} for this user", "unknown-call")


async def keep(request: Request) -> Response:
    """``{notes, outcome, owed?}``: kept for the call; ``owed`` absent leaves the mark as it was."""
    gw = gateway_of(request)
    user = current_user(request, gw)
    call_key = request.path_params["call_id"]
    data = await read_json_object(request, KEPT_BODY_BYTES)
    notes = text_field(data, "notes", NOTES_MAX_CHARS)
    outcome = text_field(data, "outcome", OUTCOME_MAX_CHARS)
    owed = data.get("owed")
    if owed is not None and not isinstance(owed, bool):
        raise ApiError(422, "owed must be true or false", "bad-field")
    await _own_call(gw, user, call_key)
    if owed is None:
        held = Kept.decode((await gw.broker.kept_wrap_ups(user.id)).get(call_key, ""))
        owed = held is not None and held.owed
    await gw.broker.keep_wrap_up(user.id, call_key, Kept(notes, outcome, owed).encode())
    return Response(status_code=204)


async def discard(request: Request) -> Response:
    """The user let the wrap-up go: nothing is kept or owed for the call any more."""
    gw = gateway_of(request)
    user = current_user(request, gw)
    call_key = request.path_params["call_id"]
    await _own_call(gw, user, call_key)
    await gw.broker.drop_wrap_up(user.id, call_key)
    return Response(status_code=204)


async def kept(request: Request) -> JSONResponse:
    """``{wrapUps: [{externalCallId, notes, outcome, owed, call}]}``, for the calls still known."""
    gw = gateway_of(request)
    user = current_user(request, gw)
    found = []
    for call_key, text in (await gw.broker.kept_wrap_ups(user.id)).items():
        held = Kept.decode(text)
        state = await gw.tracker.get_call(user.id, call_key)
        if held is None or state is None:
            continue  # unreadable, or its call is gone: nothing to show it with
        found.append(
            {
                "externalCallId": call_key,
                "notes": held.notes,
                "outcome": held.outcome,
                "owed": held.owed,
                "call": call_snapshot(state),
            }
        )
    return JSONResponse({"wrapUps": found})


routes = [
    Route("/api/wrap-up/kept", kept, methods=["GET"]),
    Route("/api/calls/{call_id:path}/wrap-up/kept", keep, methods=["PUT"]),
    Route("/api/calls/{call_id:path}/wrap-up/kept", discard, methods=["DELETE"]),
]
