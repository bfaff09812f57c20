"""One PBX call is one call, whichever instance sees it and when (PBXes that give no call-id).

Two watches stand for two instances that both see a PBX call: the one that
watched it ring and then lost the AOR, and the one that took the AOR over
and first sees the call in progress. They share the call tracker and the
call-id claims, as instances on one Redis do (the same on Redis, with real
instances: ``test_scaling.py``).
"""

from __future__ import annotations

import json
from dataclasses import replace

from gateway.broker.base import Broker
from gateway.broker.coordination import LocalCoordination
from gateway.broker.memory import MemoryBroker
from gateway.broker.stream_queue import StreamQueue
from gateway.config import Settings
from gateway.ops.metrics import Metrics
from gateway.sources.sip.dialog_delivery import SignalDelivery
from gateway.sources.sip.dialog_watch import EntityWatch, call_key_of
from gateway.sources.sip.dialoginfo import Dialog, DialogInfo
from gateway.tracker import CallTracker

AOR = "sip:1001@pbx.test"
CALLER = "sip:+15555550199@carrier.test"
# Asterisk: one dialog, id = the extension, direction and caller only while ringing.
RINGING = Dialog(id="1001", state="early", direction="recipient", remote_identity=CALLER)
TALKING = Dialog(id="1001", state="confirmed")
IDLE = Dialog(id="1001", state="terminated")
# FreeSWITCH: one dialog per channel, id = the channel uuid, with direction and caller throughout.
CHANNEL = Dialog(id="8a3c1f2e-0d6b-4f61-9a8e-2b1c0e5d7a90", state="early", direction="recipient")
WHOLE_CALL = ["incomingCall", "callAnswered", "callEnded", "callCompleted"]


class Instance:
    """One gateway instance's watch of the AOR."""

    def __init__(self, tracker: CallTracker, claims: LocalCoordination) -> None:
        self.watch = EntityWatch("alice", "sip")
        self.delivery = SignalDelivery(tracker, claims)
        self.version = 0

    async def sees(self, dialog: Dialog, at_ms: int) -> None:
        self.version += 1
        info = DialogInfo(version=self.version, state="full", entity=AOR, dialogs=(dialog,))
        await self.delivery.apply(self.watch, info, at_ms, AOR)


async def two_instances() -> tuple[Instance, Instance, Seen]:
    broker: Broker = MemoryBroker(Settings())
    tracker, claims = CallTracker(broker, Metrics()), LocalCoordination()
    return Instance(tracker, claims), Instance(tracker, claims), Seen(await broker.subscribe("alice", None))


class Seen:
    """The SDK events the user's stream got, in order: (externalCallId, type)."""

    def __init__(self, stream: StreamQueue) -> None:
        self.stream = stream
        self.events: list[tuple[str, str]] = []

    def __call__(self) -> list[tuple[str, str]]:
        for message in self.stream.pending():
            event = json.loads(message.data)
            self.events.append((event["externalCallId"], event["type"]))
        return self.events


async def test_an_asterisk_call_handed_over_while_ringing_is_one_call_with_each_event_once() -> None:
    old, new, seen = await two_instances()
    await old.sees(RINGING, 1_000)
    await new.sees(TALKING, 5_000)  # the new owner's first full state
    await old.sees(TALKING, 5_010)  # the old owner's last NOTIFY, late
    await new.sees(IDLE, 9_000)
    await old.sees(IDLE, 9_020)
    events = seen()
    assert [t for _, t in events] == WHOLE_CALL
    assert len({call for call, _ in events}) == 1


async def test_the_next_asterisk_call_on_the_same_extension_is_a_new_call_even_across_a_handover() -> None:
    old, new, seen = await two_instances()
    await old.sees(RINGING, 1_000)
    await new.sees(IDLE, 2_000)
    await new.sees(RINGING, 3_000)  # the same dialog id, another call
    calls = [call for call, t in seen() if t == "incomingCall"]
    assert len(calls) == 2 and calls[0] != calls[1]


async def test_a_freeswitch_channel_seen_by_two_instances_is_one_call() -> None:
    old, new, seen = await two_instances()
    await old.sees(CHANNEL, 1_000)
    await new.sees(replace(CHANNEL, state="confirmed"), 4_000)
    await old.sees(replace(CHANNEL, state="confirmed"), 4_005)
    await old.sees(replace(CHANNEL, state="terminated"), 8_000)
    await new.sees(replace(CHANNEL, state="terminated"), 8_010)
    events = seen()
    assert [t for _, t in events] == WHOLE_CALL
    assert len({call for call, _ in events}) == 1


async def test_a_claim_that_outlived_its_call_does_not_swallow_the_next_call() -> None:
    old, new, seen = await two_instances()
    await old.sees(RINGING, 1_000)
    await old.sees(IDLE, 2_000)
    # The old instance died before it could clear the claim: as if it were still there.
    call_key, _ = seen()[0]
    await old.delivery.coordination.claim_call(AOR, call_key_of(RINGING), call_key.removeprefix("sip:"), 60)
    await new.sees(RINGING, 3_000)
    calls = [call for call, t in seen() if t == "incomingCall"]
    assert len(calls) == 2 and calls[0] != calls[1]


async def test_a_call_that_ended_while_the_aor_changed_hands_is_ended_by_the_new_owner() -> None:
    old, new, seen = await two_instances()
    await old.sees(replace(CHANNEL, state="confirmed"), 1_000)
    # FreeSWITCH drops an ended channel from its documents: the new owner's first one is empty.
    new.version += 1
    await new.delivery.apply(new.watch, DialogInfo(new.version, "full", AOR, ()), 6_000, AOR)
    assert [t for _, t in seen()] == WHOLE_CALL
