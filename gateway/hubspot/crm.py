"""What the call logger needs from HubSpot, as an interface.

``gateway.hubspot.crm_client`` implements it against HubSpot's HTTP API; the
call logger (``gateway.calllog``) depends only on this. Every method raises
only ``gateway.hubspot.errors.HubSpotError`` subclasses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

CONTACT = "0-1"
COMPANY = "0-2"


@dataclass(frozen=True)
class ObjectRef:
    """A CRM record: its object type id (``0-1`` contact, ``0-2`` company) and id."""

    object_type_id: str
    object_id: str


# What tells one user's engagement of a call from another's when no owner
# does: the side the user was on, when it rang for them, and how it ended for
# them. A log job writes the same values on every attempt.
LEG_IDENTITY = ("hs_call_direction", "hs_timestamp", "hs_call_status")


@dataclass(frozen=True)
class Leg:
    """Which user's engagement of a call: every user a call rang (a ring group,
    a call between two users) has one under its one ``hs_call_external_id``.

    ``owner_id`` is the user's owner (``None``: an engagement with no owner);
    ``properties`` are more the engagement has, which tell legs with no owner apart.
    """

    owner_id: str | None
    properties: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, owner_id: str | None, properties: Mapping[str, object]) -> Leg:
        """The leg of a call engagement with these properties: its owner's, else the one they describe."""
        if owner_id is not None:
            return cls(owner_id)
        return cls(None, {name: str(properties[name]) for name in LEG_IDENTITY if name in properties})


class CallRecords(Protocol):
    async def find_owned_call(self, portal_id: int, external_id: str, leg: Leg) -> str | None:
        """The id of the call engagement whose ``hs_call_external_id`` is ``external_id``
        and that is the user's ``leg``: there is no search across owners,
        which would find any user's."""
        ...

    async def create_call(
        self, portal_id: int, properties: Mapping[str, str], associate_with: list[ObjectRef]
    ) -> str:
        """Creates a call engagement associated with the given records; returns its id."""
        ...

    async def update_call(self, portal_id: int, engagement_id: str, properties: Mapping[str, str]) -> None:
        """Sets the given properties of an existing call engagement."""
        ...

    async def find_records_by_phone(self, portal_id: int, number: str) -> list[ObjectRef]:
        """Contacts (first) and companies whose phone fields match ``number`` (E.164)."""
        ...

    async def owner_id(self, portal_id: int, hubspot_user_id: int) -> str | None:
        """The CRM owner id of a HubSpot user, for ``hubspot_owner_id``."""
        ...

    async def recording_ready(self, portal_id: int, engagement_id: str) -> None:
        """Tells HubSpot the call's recording can be fetched now."""
        ...
