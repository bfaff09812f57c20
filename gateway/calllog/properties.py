"""The properties of a call engagement, from what the gateway knows of the call (pure).

Names and formats follow HubSpot's calls API (developers.hubspot.com,
"Calls" under CRM engagements, and the recordings guide for the external-call
properties): ``hs_timestamp`` in epoch milliseconds, ``hs_call_duration`` in
milliseconds, ``hs_call_direction`` INBOUND or OUTBOUND from the HubSpot
user's side, ``hs_call_status`` one of HubSpot's statuses.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.model import CallState, Direction, engagement_properties, fact_value

# hs_call_source = INTEGRATIONS_PLATFORM puts the call through HubSpot's
# recording and transcription pipeline (with the three external-call ids).
CALL_SOURCE = "INTEGRATIONS_PLATFORM"


def remote_number(state: CallState) -> str | None:
    """The other party's number: the caller of an inbound call, the callee of an outbound one."""
    inbound = state.call_direction is Direction.INBOUND
    return fact_value(state.from_number if inbound else state.to_number)


def external_properties(state: CallState, portal_id: int, app_id: str) -> dict[str, str]:
    """What ties the engagement to this gateway's call (and lets HubSpot fetch its recording).

    The external id is the call's key, the same ``externalCallId`` the
    widget hands the SDK; the external account is the portal the call
    belongs to.
    """
    props = {
        "hs_call_external_id": state.call_key,
        "hs_call_external_account_id": str(portal_id),
        "hs_call_source": CALL_SOURCE,
    }
    if app_id:
        props["hs_call_app_id"] = app_id
    return props


def create_properties(state: CallState, portal_id: int, app_id: str) -> dict[str, str]:
    """Every property of an engagement the gateway creates (the owner is added when it is known)."""
    status = state.end_status()
    if status is None:
        raise ValueError(f"call {state.call_key} has not ended")
    # The same properties the widget sends with callCompleted, written once.
    props = {name: str(value) for name, value in engagement_properties(state, status).items()}
    props.update(external_properties(state, portal_id, app_id))
    return props


# What the widget's engagement keeps as HubSpot made it: the title, the
# timestamp and the direction the SDK gave it (and its owner, which the
# gateway sets only on a call it creates).
KEPT_BY_WIDGET_ENGAGEMENT = frozenset({"hs_timestamp", "hs_call_title", "hs_call_direction"})


def widget_update(properties: Mapping[str, str]) -> dict[str, str]:
    """Of a created call's properties, those the gateway sets on an engagement the widget made."""
    return {name: value for name, value in properties.items() if name not in KEPT_BY_WIDGET_ENGAGEMENT}


def update_properties(state: CallState, portal_id: int, app_id: str) -> dict[str, str]:
    """What the gateway sets on an engagement the widget made: what it knows and the widget did not send.

    The status, duration and numbers are the gateway's (the widget's
    callCompleted may never have reached HubSpot), and the external ids only
    the gateway sets.
    """
    return widget_update(create_properties(state, portal_id, app_id))


# hs_call_body is rich text; HubSpot's calls API documents no limit, and
# 64 KiB of notes is more than anyone types after a call.
NOTES_MAX_CHARS = 65_536


def wrap_up_properties(notes: str, outcome: str) -> dict[str, str]:
    """The user's wrap-up as engagement properties: the notes as text (each line kept), the outcome's GUID.

    The page makes the same ``hs_call_body`` for ``callCompleted``
    (web/js/wrapup.js ``notesAsBody``); what the user left empty stays out.
    """
    props: dict[str, str] = {}
    if notes:
        escaped = notes.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        props["hs_call_body"] = "<br>".join(escaped.replace("\r\n", "\n").split("\n"))
    if outcome:
        props["hs_call_disposition"] = outcome
    return props
