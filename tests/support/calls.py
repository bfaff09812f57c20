"""Calls played through the pure model, for tests of the model and of what is built on it."""

from __future__ import annotations

from gateway.model import CallState, Direction, Phase, Signal, advance


def sig(phase: Phase, at: int, *, direction: Direction = Direction.INBOUND, **kw: object) -> Signal:
    return Signal(source="t", call_id="c1", user_id="u1", direction=direction, phase=phase, at_ms=at, **kw)  # type: ignore[arg-type]


def run(signals: list[Signal]) -> tuple[CallState, list[tuple[str, dict[str, object]]]]:
    state: CallState | None = None
    out: list[tuple[str, dict[str, object]]] = []
    for s in signals:
        state, events = advance(state, s)
        out.extend((e.type, e.payload) for e in events)
    assert state is not None
    return state, out
