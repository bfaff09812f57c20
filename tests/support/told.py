"""What a list of signals tells each user's page, through the pure call model (for the PBX reducer tests)."""

from __future__ import annotations

from gateway.model import CallState, SdkEvent, Signal, advance


def _played(signals: list[Signal]) -> list[tuple[Signal, SdkEvent]]:
    states: dict[tuple[str, str], CallState] = {}
    out = []
    for signal in signals:
        key = (signal.user_id, signal.call_key)
        states[key], emitted = advance(states.get(key), signal)
        out += [(signal, event) for event in emitted]
    return out


def told(signals: list[Signal]) -> dict[str, list[str]]:
    """Per "user call-id", the SDK events the model emits: "type" or "callEnded:STATUS"."""
    out: dict[str, list[str]] = {}
    for signal, event in _played(signals):
        status = event.payload.get("callEndStatus")
        out.setdefault(f"{signal.user_id} {signal.call_id}", []).append(
            f"{event.type}:{status}" if status else event.type
        )
    return out


def starts(signals: list[Signal]) -> dict[str, tuple[str, str]]:
    """Per "user call-id", the (fromNumber, toNumber) of the call's start event."""
    return {
        f"{signal.user_id} {signal.call_id}": (event.payload.get("fromNumber", ""), event.payload["toNumber"])
        for signal, event in _played(signals)
        if event.type in ("incomingCall", "outgoingCall")
    }
