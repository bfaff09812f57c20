"""HubSpot's side of the call logger's tests: an in-memory ``CallRecords``.

Not the thing under test: it plays HubSpot's CRM as ``gateway.hubspot.crm``
describes it (calls with properties, searched by ``hs_call_external_id``;
contacts and companies by phone; owners) and records every request, so a
test can count the engagements HubSpot ended up with. It can be told to
fail the next requests of a method with any ``gateway.hubspot.errors``
error, or to time out after a create that did happen (the case that must
not make a second engagement). The real client against the HTTP stand-in
is tested with the HubSpot client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from gateway.hubspot.crm import CONTACT, Leg, ObjectRef
from gateway.hubspot.errors import HubSpotError, Rejected, Transient


@dataclass
class LoggedCall:
    portal_id: int
    properties: dict[str, str]
    associations: list[ObjectRef]
    updates: list[dict[str, str]] = field(default_factory=list)


class InMemoryCallRecords:
    def __init__(self) -> None:
        self.calls: dict[str, LoggedCall] = {}
        self.records: dict[tuple[int, str], list[ObjectRef]] = {}
        self.owners: dict[tuple[int, int], str] = {}
        self.requests: list[str] = []
        self.recordings_ready: list[tuple[int, str]] = []
        self._failures: dict[str, list[HubSpotError]] = {}
        self._lose_create_answers = 0
        self._next_id = 9000
        self._changed = asyncio.Event()

    # -- what a test sets up ------------------------------------------------------
    def add_contact(self, portal_id: int, number: str, contact_id: str) -> ObjectRef:
        ref = ObjectRef(CONTACT, contact_id)
        self.records.setdefault((portal_id, number), []).append(ref)
        return ref

    def fail(self, method: str, *errors: HubSpotError) -> None:
        """The next requests of ``method`` raise these errors, one each, in order."""
        self._failures.setdefault(method, []).extend(errors)

    def lose_create_answers(self, count: int = 1) -> None:
        """The next creates happen in HubSpot, but the answer is lost (a timeout)."""
        self._lose_create_answers += count

    def engagement(self, portal_id: int, engagement_id: str, properties: Mapping[str, str]) -> None:
        """An engagement made elsewhere (by the widget, through the SDK)."""
        self.calls[engagement_id] = LoggedCall(portal_id, dict(properties), [])

    async def until(self, done: Callable[[], bool], seconds: float = 10.0) -> None:
        """Wait for a request that makes ``done()`` true."""
        async with asyncio.timeout(seconds):
            while not done():
                self._changed.clear()
                await self._changed.wait()

    def created(self) -> list[LoggedCall]:
        return [call for call in self.calls.values() if call.properties.get("hs_call_source")]

    # -- CallRecords ---------------------------------------------------------------
    def _request(self, method: str) -> None:
        self.requests.append(method)
        self._changed.set()
        queued = self._failures.get(method)
        if queued:
            raise queued.pop(0)

    async def find_owned_call(self, portal_id: int, external_id: str, leg: Leg) -> str | None:
        self._request("find_call")
        wanted = {"hs_call_external_id": external_id, **leg.properties}
        for engagement_id, call in self.calls.items():
            if (
                call.portal_id == portal_id
                and call.properties.get("hubspot_owner_id") == leg.owner_id
                and all(call.properties.get(name) == value for name, value in wanted.items())
            ):
                return engagement_id
        return None

    async def create_call(
        self, portal_id: int, properties: Mapping[str, str], associate_with: list[ObjectRef]
    ) -> str:
        self._request("create_call")
        self._next_id += 1
        engagement_id = str(self._next_id)
        self.calls[engagement_id] = LoggedCall(portal_id, dict(properties), list(associate_with))
        self._changed.set()
        if self._lose_create_answers:
            self._lose_create_answers -= 1
            raise Transient("timed out waiting for HubSpot's answer")
        return engagement_id

    async def update_call(self, portal_id: int, engagement_id: str, properties: Mapping[str, str]) -> None:
        self._request("update_call")
        call = self.calls.get(engagement_id)
        if call is None or call.portal_id != portal_id:
            raise Rejected(f"404: no call {engagement_id}")
        call.properties.update(properties)
        call.updates.append(dict(properties))
        self._changed.set()

    async def find_records_by_phone(self, portal_id: int, number: str) -> list[ObjectRef]:
        self._request("find_records_by_phone")
        return list(self.records.get((portal_id, number), []))

    async def owner_id(self, portal_id: int, hubspot_user_id: int) -> str | None:
        self._request("owner_id")
        return self.owners.get((portal_id, hubspot_user_id))

    async def recording_ready(self, portal_id: int, engagement_id: str) -> None:
        self._request("recording_ready")
        self.recordings_ready.append((portal_id, engagement_id))
