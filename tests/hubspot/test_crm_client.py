"""The call logger's requests (``CallRecords``) and the inbound-call endpoint, against the stand-in."""

from __future__ import annotations

import pytest

from gateway.hubspot.crm import COMPANY, CONTACT, CallRecords, Leg, ObjectRef
from gateway.hubspot.crm_client import (
    CALL_TO_COMPANY,
    CALL_TO_CONTACT,
    DISPOSITIONS_TTL_SECONDS,
    HubSpotCrm,
    InboundCall,
    PhoneNumber,
)
from gateway.hubspot.errors import Rejected, Transient
from gateway.hubspot.service import HubSpotService
from gateway.standin.hubspot import HubSpotStandIn
from tests.support.hubspot import PORTAL

CALL = {
    "hs_timestamp": "2026-12-02T10:00:00.000Z",
    "hs_call_title": "Call with +1 555-555-0123",
    "hs_call_direction": "INBOUND",
    "hs_call_status": "COMPLETED",
    "hs_call_external_id": "gw-call-1",
}


def _implements_the_call_logger_interface(crm: HubSpotCrm) -> CallRecords:
    return crm  # mypy checks that HubSpotCrm is a CallRecords


async def test_a_contact_is_found_by_the_number_as_people_typed_it(
    service: HubSpotService, standin: HubSpotStandIn
) -> None:
    typed = standin.add_contact(PORTAL, firstname="Ann", phone="(555) 555-0123")
    mobile = standin.add_contact(PORTAL, firstname="Bo", mobilephone="+1 555-555-0123")
    standin.add_contact(PORTAL, firstname="Cy", phone="+1 555-555-0999")
    found = await service.crm.find_records_by_phone(PORTAL, "+15555550123")
    assert set(found) == {ObjectRef(CONTACT, typed), ObjectRef(CONTACT, mobile)}


async def test_contacts_come_before_companies(service: HubSpotService, standin: HubSpotStandIn) -> None:
    company = standin.add_company(PORTAL, name="Example Corp", phone="+4930123456")
    contact = standin.add_contact(PORTAL, firstname="Di", phone="030 123456")
    found = await service.crm.find_records_by_phone(PORTAL, "+4930123456")
    assert found == [ObjectRef(CONTACT, contact), ObjectRef(COMPANY, company)]


async def test_no_record_for_an_unknown_number(service: HubSpotService) -> None:
    assert await service.crm.find_records_by_phone(PORTAL, "+15555550100") == []


async def test_a_call_is_created_with_its_associations(
    service: HubSpotService, standin: HubSpotStandIn
) -> None:
    contact = standin.add_contact(PORTAL, phone="+15555550123")
    company = standin.add_company(PORTAL, phone="+15555550123")
    engagement = await service.crm.create_call(
        PORTAL, CALL, [ObjectRef(CONTACT, contact), ObjectRef(COMPANY, company)]
    )
    logged = standin.portal(PORTAL).calls[engagement]
    assert logged.properties == CALL
    assert logged.associations == [("0-1", contact, CALL_TO_CONTACT), ("0-2", company, CALL_TO_COMPANY)]


async def test_a_call_is_found_by_its_external_id_among_one_owners_calls(service: HubSpotService) -> None:
    alices = await service.crm.create_call(PORTAL, {**CALL, "hubspot_owner_id": "71"}, [])
    nobodys = await service.crm.create_call(PORTAL, CALL, [])
    assert await service.crm.find_owned_call(PORTAL, "gw-call-1", Leg("71")) == alices
    assert await service.crm.find_owned_call(PORTAL, "gw-call-1", Leg(None)) == nobodys
    assert await service.crm.find_owned_call(PORTAL, "gw-call-1", Leg("72")) is None


async def test_a_call_with_no_owner_is_found_among_those_with_the_properties_asked_for(
    service: HubSpotService,
) -> None:
    missed = await service.crm.create_call(PORTAL, {**CALL, "hs_call_status": "NO_ANSWER"}, [])
    answered = await service.crm.create_call(PORTAL, CALL, [])
    found = [
        await service.crm.find_owned_call(PORTAL, "gw-call-1", Leg(None, {"hs_call_status": status}))
        for status in ("NO_ANSWER", "COMPLETED", "BUSY")
    ]
    assert found == [missed, answered, None]


async def test_a_call_is_updated(service: HubSpotService, standin: HubSpotStandIn) -> None:
    engagement = await service.crm.create_call(PORTAL, CALL, [])
    await service.crm.update_call(PORTAL, engagement, {"hs_call_duration": "42000"})
    properties = standin.portal(PORTAL).calls[engagement].properties
    assert properties["hs_call_duration"] == "42000"
    assert properties["hs_call_status"] == "COMPLETED"


async def test_the_owner_of_a_hubspot_user_is_found_across_pages(
    service: HubSpotService, standin: HubSpotStandIn
) -> None:
    owners = {user: standin.add_owner(PORTAL, user) for user in range(1, 131)}
    assert await service.crm.owner_id(PORTAL, 130) == owners[130]
    assert await service.crm.owner_id(PORTAL, 7) == owners[7]
    assert await service.crm.owner_id(PORTAL, 999) is None


async def test_the_owners_are_listed_once_for_many_calls(
    service: HubSpotService, standin: HubSpotStandIn
) -> None:
    standin.add_owner(PORTAL, 501)
    for _ in range(3):
        await service.crm.owner_id(PORTAL, 501)
    assert standin.requests.count(("GET", "/crm/v3/owners")) == 1


async def test_hubspot_is_told_a_recording_is_ready(service: HubSpotService, standin: HubSpotStandIn) -> None:
    engagement = await service.crm.create_call(PORTAL, CALL, [])
    await service.crm.recording_ready(PORTAL, engagement)
    assert standin.portal(PORTAL).recordings_ready == [engagement]


async def test_an_inbound_call_is_told_and_answers_the_caller_id_matches(
    service: HubSpotService, standin: HubSpotStandIn
) -> None:
    contact = standin.add_contact(PORTAL, firstname="Ann", lastname="Example", phone="+15555550123")
    call = InboundCall(
        external_call_id="gw-call-9",
        from_number=PhoneNumber("+15555550123"),
        to_number=PhoneNumber("+15555550101", extension="101"),
        started_at_iso="2026-12-02T10:00:00Z",
        potential_recipient_user_ids=(501,),
    )
    matches = await service.crm.inbound_call(PORTAL, call)
    assert [m["objectCoordinates"]["objectId"] for m in matches] == [int(contact)]
    [sent] = standin.portal(PORTAL).inbound_calls
    assert sent["toNumber"] == {"e164Number": "+15555550101", "extension": "101"}
    assert sent["createEngagement"] is False
    assert standin.portal(PORTAL).calls == {}


async def test_a_recording_ready_for_no_engagement_id_is_rejected_before_asking(
    service: HubSpotService, standin: HubSpotStandIn
) -> None:
    with pytest.raises(Rejected):
        await service.crm.recording_ready(PORTAL, "not-an-id")
    assert standin.requests == []


async def test_the_portals_call_outcomes_are_read_in_its_order_without_hidden_ones(
    service: HubSpotService, standin: HubSpotStandIn
) -> None:
    standin.portal(PORTAL).dispositions = [
        ("b", "Booked", False),
        ("x", "Retired", True),
        ("a", "Asked", False),
    ]
    assert await service.crm.call_dispositions(PORTAL) == [("b", "Booked"), ("a", "Asked")]


async def test_the_call_outcomes_are_read_again_after_some_minutes(
    service: HubSpotService, standin: HubSpotStandIn
) -> None:
    now = [1000.0]
    crm = HubSpotCrm(service.client, clock=lambda: now[0])
    first = await crm.call_dispositions(PORTAL)
    standin.portal(PORTAL).dispositions = [("n", "New outcome", False)]
    now[0] += DISPOSITIONS_TTL_SECONDS - 1
    assert await crm.call_dispositions(PORTAL) == first
    now[0] += 2
    assert await crm.call_dispositions(PORTAL) == [("n", "New outcome")]


async def test_a_portal_without_call_outcomes_is_an_error(
    service: HubSpotService, standin: HubSpotStandIn
) -> None:
    standin.portal(PORTAL).dispositions = [("x", "Retired", True)]
    with pytest.raises(Transient):
        await service.crm.call_dispositions(PORTAL)
