"""Property tests: repeated or reordered documents never add model events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.model import CallState, advance
from gateway.sources.sip.dialog_watch import EntityWatch, WatchMode
from gateway.sources.sip.dialoginfo import Dialog, DialogInfo

ENTITY = "sip:1001@pbx.test"
NEXT = {
    None: ["trying", "early", "confirmed"],
    "trying": ["proceeding", "early", "confirmed", "terminated"],
    "proceeding": ["early", "confirmed", "terminated"],
    "early": ["confirmed", "terminated", "early"],
    "confirmed": ["terminated", "confirmed"],
}
ENDINGS: list[tuple[str | None, int | None]] = [
    (None, None),
    ("remote-bye", None),
    ("cancelled", 487),
    ("rejected", 486),
    ("replaced", None),
    ("timeout", None),
]

steps = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 5), st.booleans()),
    min_size=1,
    max_size=14,
)


@dataclass
class Lane:
    """One line of calls: lane 0 is Asterisk-like (id reused, no call-id)."""

    index: int
    calls: int = 0
    state: str | None = None
    direction: str | None = None

    def dialog(self, state: str, ending: tuple[str | None, int | None]) -> Dialog:
        if self.index == 0:
            return Dialog(id="1001", state=state, direction="recipient" if state == "early" else None)
        event, code = ending if state == "terminated" else (None, None)
        dialog_id = f"lane{self.index}-{self.calls}"
        return Dialog(
            id=dialog_id,
            call_id=f"{dialog_id}@pbx",
            state=state,
            direction=self.direction,  # type: ignore[arg-type]
            event=event,
            code=code,
            remote_identity=f"sip:+1555555{self.index:02d}{self.calls:02d}@pbx",
        )


def scenario(raw: list[tuple[int, int, bool]], mode: WatchMode) -> list[DialogInfo]:
    """Truthful documents for a run of state changes, versions 1, 2, 3 …"""
    lanes = [Lane(i) for i in range(3)]
    docs: list[DialogInfo] = []
    for version, (lane_no, choice, partial) in enumerate(raw, start=1):
        lane = lanes[lane_no]
        options = NEXT[lane.state]
        new_state = options[choice % len(options)]
        if lane.state is None:
            lane.calls += 1
            lane.direction = "initiator" if choice % 2 else "recipient"
        changed = lane.dialog(new_state, ENDINGS[choice])
        lane.state = None if new_state == "terminated" else new_state
        if mode == "publication" or partial:
            dialogs: tuple[Dialog, ...] = (changed,)
        else:
            # Full state: every other lane's open dialog, and Asterisk's idle hint.
            current = [
                ln.dialog(ln.state or "terminated", (None, None))
                for ln in lanes
                if ln is not lane and (ln.state or (ln.index == 0 and ln.calls))
            ]
            dialogs = (*current, changed)
        state = "full" if mode == "publication" or not partial else "partial"
        docs.append(DialogInfo(version=version, state=state, entity=ENTITY, dialogs=dialogs))  # type: ignore[arg-type]
    return docs


def deliver(mode: WatchMode, docs: list[DialogInfo]) -> tuple[list[tuple[str, str, Any]], list[bool], int]:
    """Feed documents (each at its own time) through a watch and the model."""
    watch = EntityWatch("alice", mode=mode)
    states: dict[str, CallState] = {}
    events: list[tuple[str, str, Any]] = []
    stale_had_signals: list[bool] = []
    for doc in docs:
        result = watch.apply(doc, 1000 * doc.version)
        if result.stale:
            stale_had_signals.append(bool(result.signals))
        for signal in result.signals:
            state, out = advance(states.get(signal.call_key), signal)
            states[signal.call_key] = state
            events.extend((signal.call_key, e.type, e.payload) for e in out)
    return events, stale_had_signals, watch.open_calls


modes = st.sampled_from(["subscription", "publication"])


@settings(max_examples=150, deadline=None)
@given(raw=steps, mode=modes, repeats=st.lists(st.integers(1, 3), min_size=14, max_size=14))
def test_duplicated_documents_give_exactly_the_events_of_a_clean_run(
    raw: list[tuple[int, int, bool]], mode: WatchMode, repeats: list[int]
) -> None:
    docs = scenario(raw, mode)
    duplicated = [doc for doc, n in zip(docs, repeats, strict=False) for _ in range(n)]
    clean_events, _, _ = deliver(mode, docs)
    dup_events, stale_had_signals, _ = deliver(mode, duplicated)
    assert dup_events == clean_events
    assert not any(stale_had_signals)


@settings(max_examples=150, deadline=None)
@given(raw=steps, mode=modes, data=st.data())
def test_reordered_and_repeated_documents_never_duplicate_an_event_or_invent_a_call(
    raw: list[tuple[int, int, bool]], mode: WatchMode, data: st.DataObject
) -> None:
    docs = scenario(raw, mode)
    extra = data.draw(st.lists(st.sampled_from(docs), max_size=2 * len(docs)))
    order = data.draw(st.permutations(docs + extra))
    clean_events, _, clean_open = deliver(mode, docs)
    events, stale_had_signals, open_calls = deliver(mode, order)
    keys = [(call, kind) for call, kind, _ in events]
    assert len(keys) == len(set(keys))
    assert not any(stale_had_signals)
    # Skipping stale documents can merge or lose calls, never add one.
    assert len({call for call, _ in keys}) <= len({call for call, _, _ in clean_events})
    if mode == "publication":
        # Each publication's newest document wins, whatever the order.
        assert open_calls == clean_open
