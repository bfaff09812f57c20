"""Every ended call in HubSpot exactly once: through the tracker, the outbox and HubSpot's side.

HubSpot's side is ``tests.support.crm_records`` (in memory); the outbox is
a real SQLite file, or a real redis-server where instances share it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from gateway.broker.redis import RedisBroker
from gateway.calllog.jobs import SEARCH_SETTLE_SECONDS
from gateway.config import Settings
from gateway.hubspot.crm import ObjectRef
from gateway.hubspot.errors import NotConnected, RateLimited, Rejected, Transient
from gateway.model import LOGGED_BY_GATEWAY, LOGGED_BY_WIDGET
from gateway.outbox.redis import RedisStore
from tests.calllog.rig import (
    ALICE,
    BOB,
    CALLER,
    PORTAL,
    Clock,
    Rig,
    answer,
    hang_up,
    make_rig,
    ring,
    sqlite_store,
)
from tests.support.crm_records import InMemoryCallRecords
from tests.support.servers import RedisServer


async def test_a_call_ended_with_no_widget_is_created_once_after_the_grace_period(tmp_path: Path) -> None:
    rig = make_rig(sqlite_store(tmp_path))
    await rig.call(ring(), answer(), hang_up())
    rig.clock.now += 29
    await rig.run_due()
    assert rig.records.calls == {}
    await rig.after_grace()
    [logged] = rig.records.created()
    assert logged.properties["hs_call_external_id"] == "sip:c1"
    assert logged.properties["hs_call_status"] == "COMPLETED"


async def test_a_call_the_gateway_created_is_associated_with_the_callers_contact(tmp_path: Path) -> None:
    rig = make_rig(sqlite_store(tmp_path))
    contact = rig.records.add_contact(PORTAL, CALLER, "51")
    await rig.call(ring(), hang_up())
    await rig.after_grace()
    [logged] = rig.records.created()
    assert logged.associations == [contact]


async def test_a_call_the_gateway_created_is_owned_by_the_users_hubspot_owner(tmp_path: Path) -> None:
    rig = make_rig(sqlite_store(tmp_path))
    rig.records.owners[(PORTAL, 501)] = "owner-77"
    await rig.call(ring(), hang_up())
    await rig.after_grace()
    [logged] = rig.records.created()
    assert logged.properties["hubspot_owner_id"] == "owner-77"


async def test_a_call_is_logged_without_its_owner_when_hubspot_refuses_the_owner_lookup(
    tmp_path: Path,
) -> None:
    rig = make_rig(sqlite_store(tmp_path))
    rig.records.owners[(PORTAL, 501)] = "owner-77"
    rig.records.fail("owner_id", Rejected("GET /crm/v3/owners: 403 missing scope crm.objects.owners.read"))
    await rig.call(ring(), hang_up())
    await rig.after_grace()
    [logged] = rig.records.created()
    assert "hubspot_owner_id" not in logged.properties


async def test_a_call_is_logged_unassociated_when_hubspot_refuses_the_contact_search(tmp_path: Path) -> None:
    rig = make_rig(sqlite_store(tmp_path))
    rig.records.add_contact(PORTAL, CALLER, "51")
    rig.records.fail("find_records_by_phone", Rejected("POST /crm/v3/objects/contacts/search: 403"))
    await rig.call(ring(), hang_up())
    await rig.after_grace()
    [logged] = rig.records.created()
    assert logged.associations == []


async def test_a_call_with_no_known_number_is_created_without_association(tmp_path: Path) -> None:
    rig = make_rig(sqlite_store(tmp_path))
    await rig.call(ring(), hang_up())
    await rig.after_grace()
    [logged] = rig.records.created()
    assert logged.associations == []


async def test_the_engagement_the_gateway_created_is_kept_with_the_call(tmp_path: Path) -> None:
    rig = make_rig(sqlite_store(tmp_path))
    await rig.call(ring(), hang_up())
    await rig.after_grace()
    [engagement_id] = rig.records.calls
    state = await rig.tracker.get_call("u-alice", "sip:c1")
    assert state is not None
    assert (state.engagement_id, state.logged_by) == (int(engagement_id), LOGGED_BY_GATEWAY)


async def test_a_call_with_the_widgets_engagement_is_updated_never_created(tmp_path: Path) -> None:
    rig = make_rig(sqlite_store(tmp_path))
    rig.records.engagement(PORTAL, "77", {"hs_call_title": "Call from the widget"})
    await rig.call(ring(), answer(), hang_up())
    await rig.tracker.set_engagement("u-alice", "sip:c1", 77)
    await rig.after_grace()
    assert list(rig.records.calls) == ["77"]
    widget_call = rig.records.calls["77"]
    assert widget_call.properties["hs_call_title"] == "Call from the widget"
    assert widget_call.properties["hs_call_external_id"] == "sip:c1"
    assert widget_call.properties["hs_call_duration"] == "60000"
    assert "create_call" not in rig.records.requests


async def test_the_widgets_call_stays_logged_by_the_widget(tmp_path: Path) -> None:
    rig = make_rig(sqlite_store(tmp_path))
    rig.records.engagement(PORTAL, "77", {})
    await rig.call(ring(), hang_up())
    await rig.tracker.set_engagement("u-alice", "sip:c1", 77)
    await rig.after_grace()
    state = await rig.tracker.get_call("u-alice", "sip:c1")
    assert state is not None and state.logged_by == LOGGED_BY_WIDGET


async def test_an_end_signal_repeated_makes_no_second_engagement(tmp_path: Path) -> None:
    rig = make_rig(sqlite_store(tmp_path))
    await rig.call(ring(), hang_up())
    await rig.after_grace()
    await rig.call(hang_up())
    await rig.after_grace()
    assert len(rig.records.created()) == 1


async def logged_after_a_lost_create_answer(tmp_path: Path) -> Rig:
    """A call whose create happened in HubSpot but whose answer was lost, and the retry that ran."""
    rig = make_rig(sqlite_store(tmp_path))
    rig.records.lose_create_answers(1)
    await rig.call(ring(), hang_up())
    await rig.after_grace()
    rig.clock.now += 3600
    await rig.run_due()
    return rig


def logged_counts(rig: Rig) -> dict[str, float]:
    return {
        s.labels["by"]: s.value
        for family in text_string_to_metric_families(rig.metrics.render().decode())
        for s in family.samples
        if s.name == "gateway_calls_logged_total"
    }


async def test_a_create_whose_answer_was_lost_is_found_not_made_again(tmp_path: Path) -> None:
    rig = await logged_after_a_lost_create_answer(tmp_path)
    assert len(rig.records.created()) == 1
    state = await rig.tracker.get_call("u-alice", "sip:c1")
    assert state is not None and state.engagement_id == int(next(iter(rig.records.calls)))


async def test_a_call_is_logged_once_hubspot_answers_again_after_errors(tmp_path: Path) -> None:
    rig = make_rig(sqlite_store(tmp_path))
    rig.records.fail("find_call", Transient("502"), RateLimited("429", 10))
    rig.records.fail("create_call", NotConnected("no tokens for portal 100"))
    await rig.call(ring(), hang_up())
    await rig.after_grace()
    for _ in range(4):
        rig.clock.now += 3600
        await rig.run_due()
    assert len(rig.records.created()) == 1


async def test_a_call_whose_state_expired_before_hubspot_was_back_is_still_logged(tmp_path: Path) -> None:
    rig = make_rig(sqlite_store(tmp_path))
    rig.records.fail("create_call", NotConnected("no tokens for portal 100"))
    await rig.call(ring(), hang_up())
    await rig.after_grace()
    rig.logger.jobs.tracker = make_rig(
        sqlite_store(tmp_path / "other")
    ).tracker  # a tracker that knows no call
    rig.clock.now += 3600
    await rig.run_due()
    [logged] = rig.records.created()
    assert logged.properties["hs_call_external_id"] == "sip:c1"


async def test_calls_logged_are_counted_by_path(tmp_path: Path) -> None:
    rig = make_rig(sqlite_store(tmp_path))
    rig.records.engagement(PORTAL, "77", {})
    await rig.call(ring("c1"), hang_up("c1"), ring("c2"), hang_up("c2"))
    await rig.tracker.set_engagement("u-alice", "sip:c2", 77)
    await rig.after_grace()
    assert logged_counts(rig) == {"gateway": 1, "widget": 1}


async def test_two_instances_on_one_redis_create_the_call_once(redis_server: RedisServer) -> None:
    settings = Settings(redis_url=redis_server.url, secret="s" * 32)
    records, clock = InMemoryCallRecords(), Clock()
    brokers = [RedisBroker(settings), RedisBroker(settings)]
    rigs = [
        make_rig(RedisStore(redis_server.url, "gw"), broker=broker, records=records, clock=clock)
        for broker in brokers
    ]
    for broker in brokers:
        await broker.start()
    try:
        # Each instance hears the end (a SIP PUBLISH to one, a webhook to the other).
        await rigs[0].call(ring(), answer())
        await rigs[0].call(hang_up())
        await rigs[1].call(hang_up())
        clock.now += 30
        await asyncio.gather(*(rig.run_due() for rig in rigs))
        await asyncio.gather(*(rig.run_due() for rig in rigs))
    finally:
        for rig in rigs:
            await rig.logger.stop()
        for broker in brokers:
            await broker.close()
    assert len(records.created()) == 1
    assert records.requests.count("create_call") == 1


async def test_the_owner_and_record_lookups_use_the_portal_of_the_user(tmp_path: Path) -> None:
    rig = make_rig(sqlite_store(tmp_path))
    rig.records.add_contact(PORTAL + 1, CALLER, "other-portal")
    await rig.call(ring(), hang_up())
    await rig.after_grace()
    [logged] = rig.records.created()
    assert (logged.portal_id, logged.associations) == (PORTAL, [])
    assert ObjectRef("0-1", "other-portal") not in logged.associations


async def test_an_engagement_the_widget_reports_after_the_take_over_is_updated_not_duplicated(
    tmp_path: Path,
) -> None:
    rig = make_rig(sqlite_store(tmp_path))
    rig.records.engagement(PORTAL, "77", {})
    rig.records.fail("find_call", Transient("502"))  # the log job waits a little
    await rig.call(ring(), hang_up())
    await rig.after_grace()
    await rig.tracker.set_engagement("u-alice", "sip:c1", 77)
    rig.clock.now += 3600
    await rig.run_due()
    assert list(rig.records.calls) == ["77"]
    assert rig.records.calls["77"].properties["hs_call_external_id"] == "sip:c1"


async def test_a_call_whose_state_is_gone_when_the_grace_period_ends_is_still_logged(tmp_path: Path) -> None:
    rig = make_rig(sqlite_store(tmp_path))
    await rig.call(ring(), answer(), hang_up())
    # The memory broker restarted: the settle job finds no state, and logs the call as it ended.
    rig.logger.jobs.tracker = make_rig(sqlite_store(tmp_path / "other")).tracker
    await rig.after_grace()
    [logged] = rig.records.created()
    assert logged.properties["hs_call_external_id"] == "sip:c1"
    assert logged.properties["hs_call_status"] == "COMPLETED"
    assert logged.associations == []  # no contact known for the caller here


async def test_a_create_whose_answer_was_lost_is_searched_again_only_after_hubspots_search_lag(
    tmp_path: Path,
) -> None:
    rig = make_rig(sqlite_store(tmp_path))
    rig.records.lose_create_answers(1)
    await rig.call(ring(), hang_up())
    await rig.after_grace()
    searches = rig.records.requests.count("find_call")
    rig.clock.now += SEARCH_SETTLE_SECONDS - 1
    await rig.run_due()
    assert rig.records.requests.count("find_call") == searches
    rig.clock.now += 1
    await rig.run_due()
    assert rig.records.requests.count("find_call") == searches + 1
    assert len(rig.records.created()) == 1


async def test_an_engagement_the_gateway_created_is_told_to_its_listeners(tmp_path: Path) -> None:
    rig = make_rig(sqlite_store(tmp_path))
    told: list[tuple[int, str, str, int]] = []

    async def listener(portal: int, user: str, call: str, engagement: int) -> None:
        told.append((portal, user, call, engagement))

    rig.logger.jobs.engagement_listeners.append(listener)
    await rig.call(ring(), answer(), hang_up())
    await rig.after_grace()
    [engagement_id] = rig.records.calls
    assert told == [(PORTAL, ALICE.id, "sip:c1", int(engagement_id))]


async def test_a_failing_engagement_listener_does_not_log_the_call_twice(tmp_path: Path) -> None:
    rig = make_rig(sqlite_store(tmp_path))

    async def listener(portal: int, user: str, call: str, engagement: int) -> None:
        raise RuntimeError("a listener's own trouble")

    rig.logger.jobs.engagement_listeners.append(listener)
    await rig.call(ring(), answer(), hang_up())
    await rig.after_grace()
    rig.clock.now += 3600
    await rig.run_due()
    assert len(rig.records.created()) == 1


async def test_a_recording_announcement_is_a_durable_job_retried_after_a_failure(tmp_path: Path) -> None:
    rig = make_rig(sqlite_store(tmp_path))
    rig.records.fail("recording_ready", Transient("HubSpot answered 503"))
    await rig.logger.jobs.on_recording(PORTAL, "sip:c1", "9001")
    await rig.logger.jobs.on_recording(PORTAL, "sip:c1", "9001")  # told twice: one job
    await rig.run_due()
    assert rig.records.recordings_ready == []
    rig.clock.now += 3600
    await rig.run_due()
    assert rig.records.recordings_ready == [(PORTAL, "9001")]


async def test_an_engagement_the_widget_reports_after_the_take_over_keeps_its_title_and_timestamp(
    tmp_path: Path,
) -> None:
    rig = make_rig(sqlite_store(tmp_path))
    made_by_widget = {"hs_call_title": "Call from the widget", "hs_timestamp": "1700000000500"}
    rig.records.engagement(PORTAL, "77", made_by_widget)
    rig.records.fail("find_call", Transient("502"))  # the log job waits a little
    await rig.call(ring(), answer(), hang_up())
    await rig.after_grace()
    await rig.tracker.set_engagement("u-alice", "sip:c1", 77)
    rig.clock.now += 3600
    await rig.run_due()
    widget_call = rig.records.calls["77"]
    assert {name: widget_call.properties[name] for name in made_by_widget} == made_by_widget
    assert widget_call.properties["hs_call_status"] == "COMPLETED"


async def test_two_users_legs_of_one_call_are_each_logged_on_their_own_engagement(tmp_path: Path) -> None:
    # A hunt group: Alice's phone rings first and gives up, Bob's then answers.
    rig = make_rig(sqlite_store(tmp_path))
    rig.records.owners[(PORTAL, ALICE.hubspot_user_id or 0)] = "owner-alice"
    rig.records.owners[(PORTAL, BOB.hubspot_user_id or 0)] = "owner-bob"
    await rig.call(ring(user=ALICE), hang_up(at_ms=1_700_000_020_000, user=ALICE))
    await rig.after_grace()
    await rig.call(ring(at_ms=1_700_000_020_000, user=BOB), answer(at_ms=1_700_000_022_000, user=BOB))
    await rig.call(hang_up(at_ms=1_700_000_322_000, user=BOB))
    await rig.after_grace()
    by_owner = {call.properties["hubspot_owner_id"]: call.properties for call in rig.records.created()}
    assert by_owner["owner-alice"]["hs_call_status"] == "NO_ANSWER"
    assert by_owner["owner-bob"]["hs_call_status"] == "COMPLETED"
    for user, owner in ((ALICE, "owner-alice"), (BOB, "owner-bob")):
        state = await rig.tracker.get_call(user.id, "sip:c1")
        assert state is not None and state.engagement_id is not None
        assert rig.records.calls[str(state.engagement_id)].properties["hubspot_owner_id"] == owner


async def test_a_create_whose_answer_was_lost_is_counted_once_found(tmp_path: Path) -> None:
    rig = await logged_after_a_lost_create_answer(tmp_path)
    assert logged_counts(rig) == {"gateway": 1}
