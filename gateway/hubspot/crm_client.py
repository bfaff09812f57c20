"""``CallRecords`` against HubSpot's CRM API, and the server-side inbound-call endpoint.

The requests follow HubSpot's reference (docs/hubspot.md#the-crm-requests):
calls ``/crm/v3/objects/calls`` (create with associations, update, search
by ``hs_call_external_id``), contacts and companies search by phone,
owners ``/crm/v3/owners``, the call outcomes
``/crm/v3/properties/calls/hs_call_disposition``, ``/crm/extensions/calling/2026-03/recordings/ready``
and ``/crm/extensions/calling/2026-03/inbound-call``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.hubspot.client import HubSpotClient
from gateway.hubspot.crm import COMPANY, CONTACT, Leg, ObjectRef
from gateway.hubspot.errors import Rejected, Transient
from gateway.hubspot.phone_forms import phone_forms

CALLS = "/crm/v3/objects/calls"
CALLING = "/crm/extensions/calling/2026-03"
# HubSpot-defined association type ids, call to record.
CALL_TO_CONTACT = 194
CALL_TO_COMPANY = 182
_ASSOCIATION_TYPES = {CONTACT: CALL_TO_CONTACT, COMPANY: CALL_TO_COMPANY}
_SEARCH_PATHS = {CONTACT: "/crm/v3/objects/contacts/search", COMPANY: "/crm/v3/objects/companies/search"}
_PHONE_PROPERTIES = {CONTACT: ("phone", "mobilephone"), COMPANY: ("phone",)}
# Owners change rarely; one listing serves a portal's calls this long.
OWNERS_TTL_SECONDS = 600.0
# A portal's call outcomes change when an admin edits them; the wrap-up of
# every call asks, so one read serves this long.
DISPOSITIONS_TTL_SECONDS = 300.0
DISPOSITION_PROPERTY = "/crm/v3/properties/calls/hs_call_disposition"


@dataclass(frozen=True)
class PhoneNumber:
    e164: str
    extension: str = ""

    def to_json(self) -> dict[str, str]:
        return {"e164Number": self.e164, **({"extension": self.extension} if self.extension else {})}


@dataclass(frozen=True)
class InboundCall:
    """The body of HubSpot's inbound-call request."""

    external_call_id: str
    from_number: PhoneNumber
    to_number: PhoneNumber
    started_at_iso: str  # callStartedTimestamp, ISO 8601 UTC
    potential_recipient_user_ids: tuple[int, ...] = ()
    user_id: int | None = None
    duration_seconds: int | None = None
    final_call_status: str | None = None  # e.g. COMPLETED, BUSY, NO_ANSWER
    create_engagement: bool = False
    engagement_properties: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "externalCallId": self.external_call_id,
            "fromNumber": self.from_number.to_json(),
            "toNumber": self.to_number.to_json(),
            "callStartedTimestamp": self.started_at_iso,
            "potentialRecipientUserIds": list(self.potential_recipient_user_ids),
            "createEngagement": self.create_engagement,
            "engagementProperties": dict(self.engagement_properties),
        }
        if self.user_id is not None:
            body["userId"] = self.user_id
        if self.duration_seconds is not None:
            body["durationSeconds"] = self.duration_seconds
        if self.final_call_status:
            body["finalCallStatus"] = self.final_call_status
        return body


def _id_of(answer: Any, what: str) -> str:
    if isinstance(answer, dict) and answer.get("id") is not None:
        return str(answer["id"])
    raise Transient(f"{what}: HubSpot's answer has no id")


def _equals(name: str, value: str) -> dict[str, str]:
    return {"propertyName": name, "operator": "EQ", "value": value}


def _results(answer: Any) -> list[dict[str, Any]]:
    results = answer.get("results") if isinstance(answer, dict) else None
    return [r for r in results if isinstance(r, dict)] if isinstance(results, list) else []


class HubSpotCrm:
    """Implements ``gateway.hubspot.crm.CallRecords``."""

    def __init__(self, client: HubSpotClient, clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._clock = clock
        self._owners: dict[int, tuple[float | None, dict[int, str]]] = {}
        self._dispositions: dict[int, tuple[float, list[tuple[str, str]]]] = {}

    async def find_owned_call(self, portal_id: int, external_id: str, leg: Leg) -> str | None:
        owner = (
            _equals("hubspot_owner_id", leg.owner_id)
            if leg.owner_id is not None
            else {"propertyName": "hubspot_owner_id", "operator": "NOT_HAS_PROPERTY"}
        )
        filters = [_equals("hs_call_external_id", external_id), owner]
        filters += [_equals(name, value) for name, value in leg.properties.items()]
        body = {"filterGroups": [{"filters": filters}], "properties": ["hs_call_external_id"], "limit": 1}
        found = _results(
            await self._client.call(portal_id, "POST", CALLS + "/search", json=body, search=True)
        )
        return str(found[0]["id"]) if found and found[0].get("id") is not None else None

    async def create_call(
        self, portal_id: int, properties: Mapping[str, str], associate_with: list[ObjectRef]
    ) -> str:
        associations = [
            {
                "to": {"id": ref.object_id},
                "types": [
                    {
                        "associationCategory": "HUBSPOT_DEFINED",
                        "associationTypeId": _ASSOCIATION_TYPES[ref.object_type_id],
                    }
                ],
            }
            for ref in associate_with
            if ref.object_type_id in _ASSOCIATION_TYPES
        ]
        body = {"properties": dict(properties), "associations": associations}
        return _id_of(await self._client.call(portal_id, "POST", CALLS, json=body), "create call")

    async def update_call(self, portal_id: int, engagement_id: str, properties: Mapping[str, str]) -> None:
        await self._client.call(
            portal_id, "PATCH", f"{CALLS}/{engagement_id}", json={"properties": dict(properties)}
        )

    async def find_records_by_phone(self, portal_id: int, number: str) -> list[ObjectRef]:
        forms = phone_forms(number)
        found: list[ObjectRef] = []
        for object_type in (CONTACT, COMPANY):
            groups = [
                {"filters": [{"propertyName": name, "operator": "IN", "values": forms}]}
                for name in _PHONE_PROPERTIES[object_type]
            ]
            body = {
                "filterGroups": groups,
                "properties": list(_PHONE_PROPERTIES[object_type]),
                "sorts": [{"propertyName": "lastmodifieddate", "direction": "DESCENDING"}],
                "limit": 10,
            }
            answer = await self._client.call(
                portal_id, "POST", _SEARCH_PATHS[object_type], json=body, search=True
            )
            found.extend(
                ObjectRef(object_type, str(r["id"])) for r in _results(answer) if r.get("id") is not None
            )
        return found

    async def owner_id(self, portal_id: int, hubspot_user_id: int) -> str | None:
        listed_at, owners = self._owners.get(portal_id, (None, {}))
        age = None if listed_at is None else self._clock() - listed_at
        # An unknown user may be a new one: list again, but not for every call.
        if age is None or age > OWNERS_TTL_SECONDS or (hubspot_user_id not in owners and age > 60):
            owners = await self._list_owners(portal_id)
            self._owners[portal_id] = (self._clock(), owners)
        return owners.get(hubspot_user_id)

    async def _list_owners(self, portal_id: int) -> dict[int, str]:
        owners: dict[int, str] = {}
        params = {"limit": "100"}
        for _ in range(100):  # 10,000 owners: more than any portal has
            answer = await self._client.call(portal_id, "GET", "/crm/v3/owners", params=params)
            for owner in _results(answer):
                user = owner.get("userId")
                if isinstance(user, int) and owner.get("id") is not None:
                    owners[user] = str(owner["id"])
            after = (
                answer.get("paging", {}).get("next", {}).get("after") if isinstance(answer, dict) else None
            )
            if not after:
                break
            params = {"limit": "100", "after": str(after)}
        return owners

    async def call_dispositions(self, portal_id: int) -> list[tuple[str, str]]:
        """The portal's call outcomes, ``(internal value, label)`` in HubSpot's display order.

        Read from the ``hs_call_disposition`` property's options (hidden ones
        left out: HubSpot does not offer them either); raises HubSpotError,
        and Transient when the answer holds no outcome at all.
        """
        cached = self._dispositions.get(portal_id)
        if cached is not None and self._clock() - cached[0] <= DISPOSITIONS_TTL_SECONDS:
            return cached[1]
        answer = await self._client.call(portal_id, "GET", DISPOSITION_PROPERTY)
        options = answer.get("options") if isinstance(answer, dict) else None
        usable = [
            o
            for o in (options if isinstance(options, list) else [])
            if isinstance(o, dict)
            and isinstance(o.get("value"), str)
            and o["value"]
            and isinstance(o.get("label"), str)
            and not o.get("hidden")
        ]
        usable.sort(key=lambda o: o["displayOrder"] if isinstance(o.get("displayOrder"), int) else 0)
        outcomes = [(str(o["value"]), str(o["label"])) for o in usable]
        if not outcomes:
            raise Transient("GET hs_call_disposition: HubSpot's answer has no call outcome")
        self._dispositions[portal_id] = (self._clock(), outcomes)
        return outcomes

    async def recording_ready(self, portal_id: int, engagement_id: str) -> None:
        if not (engagement_id.isascii() and engagement_id.isdigit()):
            raise Rejected(f"recording ready: {engagement_id!r} is not an engagement id")
        await self._client.call(
            portal_id, "POST", CALLING + "/recordings/ready", json={"engagementId": int(engagement_id)}
        )

    async def inbound_call(self, portal_id: int, call: InboundCall) -> list[dict[str, Any]]:
        """Tells HubSpot of an inbound call; returns its caller-ID matches (``callerIdMatches``)."""
        answer = await self._client.call(portal_id, "POST", CALLING + "/inbound-call", json=call.to_json())
        matches = answer.get("callerIdMatches") if isinstance(answer, dict) else None
        return [m for m in matches if isinstance(m, dict)] if isinstance(matches, list) else []
