"""Whether an ended call is logged by the gateway, updated, or left alone (pure).

Decided once the grace period after the call's end is over (the ``settle``
job), on the call's state as it stands then:

| engagement id | logged by | decision                                   |
| ------------- | --------- | ------------------------------------------ |
| none          | nobody    | LOG: the gateway creates it, marks the call |
| none          | gateway   | LOG (a repeat of the same decision)         |
| none          | widget    | cannot be: an engagement makes it "widget"  |
| some          | widget    | UPDATE that engagement with what it lacks   |
| some          | gateway   | NOTHING: the gateway logged it already      |
| (no state, or not ended)  | NOTHING                                      |

With no state at all (the memory broker restarted) the ``settle`` job does
not ask: it logs the call from what it carried since the end.
"""

from __future__ import annotations

import enum
from dataclasses import replace

from gateway.model import LOGGED_BY_GATEWAY, CallState


class Decision(enum.Enum):
    LOG = "log"
    UPDATE = "update"
    NOTHING = "nothing"


def decide(state: CallState | None) -> Decision:
    if state is None or state.end is None:
        return Decision.NOTHING
    if state.engagement_id is None:
        return Decision.LOG
    if state.logged_by == LOGGED_BY_GATEWAY:
        return Decision.NOTHING
    return Decision.UPDATE


def claim_logging(state: CallState) -> CallState:
    """The state with the gateway marked as the path that logs the call, when the decision is LOG.

    From then on no page passes the call's events on to HubSpot
    (``/api/stream/claim`` answers ``deliver: false``), so the SDK makes
    no second engagement.
    """
    if decide(state) is not Decision.LOG:
        return state
    return replace(state, logged_by=LOGGED_BY_GATEWAY)


def record_created(state: CallState, engagement_id: int) -> CallState:
    """The engagement the gateway created, kept with the call.

    If a widget reported an engagement meanwhile (it passed the call's
    start on just before the gateway took it over, and HubSpot answered it
    only after the create was sent), the widget's stays the call's.
    """
    if state.engagement_id is not None:
        return state
    return replace(state, engagement_id=engagement_id, logged_by=LOGGED_BY_GATEWAY)
