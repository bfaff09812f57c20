"""The decision once the grace period is over, and the properties written (pure)."""

from __future__ import annotations

from dataclasses import replace

from gateway.calllog.decision import Decision, claim_logging, decide, record_created
from gateway.calllog.properties import CALL_SOURCE, create_properties, remote_number, update_properties
from gateway.model import (
    LOGGED_BY_GATEWAY,
    LOGGED_BY_WIDGET,
    CallState,
    Direction,
    Phase,
    advance,
    attach_engagement,
)
from tests.calllog.rig import ALICE_NUMBER, CALLER, answer, hang_up, ring


def ended() -> CallState:
    state, _ = advance(None, ring())
    state, _ = advance(state, answer())
    state, _ = advance(state, hang_up())
    return state


def test_a_call_not_ended_is_left_alone() -> None:
    state, _ = advance(None, ring())
    assert decide(state) is Decision.NOTHING


def test_a_call_whose_state_expired_is_left_alone() -> None:
    assert decide(None) is Decision.NOTHING


def test_an_ended_call_with_no_engagement_is_logged_by_the_gateway() -> None:
    assert decide(ended()) is Decision.LOG


def test_taking_a_call_over_marks_it_logged_by_the_gateway() -> None:
    assert claim_logging(ended()).logged_by == LOGGED_BY_GATEWAY


def test_a_call_the_gateway_took_over_is_still_logged_when_decided_again() -> None:
    assert decide(claim_logging(ended())) is Decision.LOG


def test_an_engagement_from_the_widget_makes_the_call_the_widgets() -> None:
    assert attach_engagement(ended(), 77).logged_by == LOGGED_BY_WIDGET


def test_a_call_with_the_widgets_engagement_is_updated() -> None:
    assert decide(attach_engagement(ended(), 77)) is Decision.UPDATE


def test_a_call_with_the_widgets_engagement_is_not_taken_over() -> None:
    state = attach_engagement(ended(), 77)
    assert claim_logging(state) == state


def test_a_call_the_gateway_logged_is_left_alone() -> None:
    assert decide(record_created(claim_logging(ended()), 9001)) is Decision.NOTHING


def test_an_engagement_the_widget_reports_after_the_take_over_makes_the_call_the_widgets_again() -> None:
    state = attach_engagement(claim_logging(ended()), 77)
    assert (state.engagement_id, state.logged_by) == (77, LOGGED_BY_WIDGET)


def test_an_engagement_reported_before_the_gateways_create_answered_stays_the_calls() -> None:
    state = attach_engagement(claim_logging(ended()), 77)
    assert record_created(state, 9001).engagement_id == 77


def test_the_gateways_engagement_reported_again_leaves_the_call_the_gateways() -> None:
    state = record_created(claim_logging(ended()), 9001)
    assert attach_engagement(state, 9001).logged_by == LOGGED_BY_GATEWAY


def test_the_other_party_of_an_inbound_call_is_the_caller() -> None:
    assert remote_number(ended()) == CALLER


def test_the_other_party_of_an_outbound_call_is_the_callee() -> None:
    state, _ = advance(
        None, replace(ring(), direction=Direction.OUTBOUND, from_number=ALICE_NUMBER, to_number=CALLER)
    )
    assert remote_number(state) == CALLER


def test_a_created_call_has_every_property_hubspot_needs() -> None:
    assert create_properties(ended(), 100, "4242") == {
        "hs_timestamp": "1700000000000",
        "hs_call_title": f"Inbound call from {CALLER}",
        "hs_call_direction": "INBOUND",
        "hs_call_status": "COMPLETED",
        "hs_call_duration": "60000",
        "hs_call_from_number": CALLER,
        "hs_call_to_number": ALICE_NUMBER,
        "hs_call_external_id": "sip:c1",
        "hs_call_external_account_id": "100",
        "hs_call_app_id": "4242",
        "hs_call_source": CALL_SOURCE,
    }


def test_a_missed_call_is_logged_as_not_answered() -> None:
    state, _ = advance(None, ring())
    state, _ = advance(state, replace(hang_up(), phase=Phase.ENDED))
    props = create_properties(state, 100, "")
    assert (props["hs_call_status"], props["hs_call_duration"]) == ("NO_ANSWER", "0")
    assert "hs_call_app_id" not in props


def test_an_update_sets_what_the_widget_did_not_send_and_keeps_its_title_and_time() -> None:
    assert update_properties(attach_engagement(ended(), 77), 100, "4242") == {
        "hs_call_status": "COMPLETED",
        "hs_call_duration": "60000",
        "hs_call_from_number": CALLER,
        "hs_call_to_number": ALICE_NUMBER,
        "hs_call_external_id": "sip:c1",
        "hs_call_external_account_id": "100",
        "hs_call_app_id": "4242",
        "hs_call_source": CALL_SOURCE,
    }
