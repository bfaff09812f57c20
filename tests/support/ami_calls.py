"""Calls as Asterisk 16-21 (FreePBX 16/17) report them over AMI: event scripts for the tests.

Each function returns the events one real scenario makes, in the order
Asterisk emits them (the fields are ``tests.support.fake_ami``'s, after the
"AMI Events" reference). The tenant's users: alice on extension 1001,
bob on 1002; the external caller +1 212 555 0123 comes in on the trunk
``provider`` to the DID +1 555 555 0100. Ids are ``<epoch>.<n>`` as
Asterisk makes them; the call's ``Linkedid`` is its first channel's id.
"""

from __future__ import annotations

from tests.support.fake_ami import (
    Chan,
    Fields,
    attended_transfer,
    blind_transfer,
    bridge_enter,
    dial_begin,
    dial_end,
    hangup,
    newchannel,
    newstate,
)

CALLER = "+12125550123"
DID = "+15555550100"
RING, RINGING, UP = "4", "5", "6"


def uid(n: int, base: int = 1701480000) -> str:
    return f"{base}.{n}"


def trunk_in(n: int) -> Chan:
    return Chan(
        f"PJSIP/provider-{n:08x}", uid(n), uid(n), CALLER, "ACME Corp", exten=DID, context="from-pstn"
    )


def phone(ext: str, n: int, linkedid: str, connected: str = CALLER, name: str = "ACME Corp") -> Chan:
    return Chan(f"PJSIP/{ext}-{n:08x}", uid(n), linkedid, ext, f"Ext {ext}", connected, name)


def rings(caller: Chan, dest: Chan) -> list[Fields]:
    return [newchannel(dest), dial_begin(caller, dest, dest.name.split("-")[0]), newstate(dest, RINGING)]


def answers(caller: Chan, dest: Chan, bridge: str) -> list[Fields]:
    return [
        newstate(dest, UP),
        dial_end(caller, dest, "ANSWER"),
        newstate(caller, UP),
        bridge_enter(caller, bridge, 1),
        bridge_enter(dest, bridge, 2),
    ]


def inbound_answered() -> list[Fields]:
    trunk = trunk_in(1)
    alice = phone("1001", 2, trunk.linkedid)
    return [
        newchannel(trunk),
        newstate(trunk, RING),
        *rings(trunk, alice),
        *answers(trunk, alice, "b-1"),
        hangup(alice, "16"),
        hangup(trunk, "16"),
    ]


def ring_group(answered_by: str | None) -> list[Fields]:
    """FreePBX ring group 600 (ringall): a Local channel per member, then the member's phone."""
    trunk = trunk_in(1)
    script = [newchannel(trunk), newstate(trunk, RING)]
    members = {}
    for i, ext in enumerate(("1001", "1002")):
        one = Chan(
            f"Local/{ext}@from-internal-{i:08x};1", uid(10 + 3 * i), trunk.linkedid, CALLER, "ACME Corp"
        )
        two = Chan(
            f"Local/{ext}@from-internal-{i:08x};2", uid(11 + 3 * i), trunk.linkedid, CALLER, "ACME Corp"
        )
        dev = phone(ext, 12 + 3 * i, trunk.linkedid)
        members[ext] = (one, two, dev)
        script += [newchannel(one), newchannel(two), dial_begin(trunk, one, f"Local/{ext}@from-internal")]
        script += rings(two, dev)
    if answered_by is None:
        # The caller gives up: every ring is cancelled, cause 16.
        for one, two, dev in members.values():
            script += [dial_end(two, dev, "CANCEL"), hangup(dev, "16"), dial_end(trunk, one, "CANCEL")]
            script += [hangup(two, "16"), hangup(one, "16")]
        return [*script, hangup(trunk, "16")]
    one, two, dev = members[answered_by]
    script += [newstate(dev, UP), dial_end(two, dev, "ANSWER"), newstate(two, UP), newstate(one, UP)]
    script += [dial_end(trunk, one, "ANSWER")]
    for ext, (o, t, d) in members.items():
        if ext != answered_by:
            # app_dial hangs up the other forks with AST_CAUSE_ANSWERED_ELSEWHERE (26).
            script += [dial_end(trunk, o, "CANCEL"), hangup(o, "26"), dial_end(t, d, "CANCEL")]
            script += [hangup(d, "26"), hangup(t, "26")]
    script += [newstate(trunk, UP), bridge_enter(trunk, "b-1", 1), bridge_enter(one, "b-1", 2)]
    script += [bridge_enter(two, "b-2", 1), bridge_enter(dev, "b-2", 2)]
    return [*script, hangup(dev, "16"), hangup(two, "16"), hangup(one, "16"), hangup(trunk, "16")]


def inbound_unanswered(dial_status: str, cause: str) -> list[Fields]:
    """The phone rings and the call ends there: the caller gave up (CANCEL), busy, no answer."""
    trunk = trunk_in(1)
    alice = phone("1001", 2, trunk.linkedid)
    return [
        newchannel(trunk),
        *rings(trunk, alice),
        dial_end(trunk, alice, dial_status),
        hangup(alice, cause),
        hangup(trunk, "16"),
    ]


def outbound(dial_status: str = "ANSWER", cause: str = "16") -> list[Fields]:
    """Alice dials 1 212 555 0123 through the trunk; the trunk presents the DID."""
    alice = Chan("PJSIP/1001-00000001", uid(1), uid(1), "1001", "Alice", exten="12125550123")
    trunk = Chan(
        "PJSIP/provider-00000002", uid(2), uid(1), DID, "Alice", "1001", "Alice", exten="12125550123"
    )
    script = [
        newchannel(alice),
        newstate(alice, RING),
        newchannel(trunk),
        dial_begin(alice, trunk, "PJSIP/12125550123@provider"),
    ]
    script.append(newstate(trunk, RINGING))
    if dial_status == "ANSWER":
        script += answers(alice, trunk, "b-1")
        return [*script, hangup(trunk, "16"), hangup(alice, "16")]
    return [*script, dial_end(alice, trunk, dial_status), hangup(trunk, cause), hangup(alice, cause)]


def blind_transferred() -> list[Fields]:
    """Alice answers, then blind-transfers the caller to 1002, who answers."""
    trunk = trunk_in(1)
    alice = phone("1001", 2, trunk.linkedid)
    bob = phone("1002", 3, trunk.linkedid)
    return [
        newchannel(trunk),
        *rings(trunk, alice),
        *answers(trunk, alice, "b-1"),
        blind_transfer(alice, trunk, "1002"),
        hangup(alice, "16"),
        *rings(trunk, bob),
        newstate(bob, UP),
        dial_end(trunk, bob, "ANSWER"),
        bridge_enter(trunk, "b-2", 1),
        bridge_enter(bob, "b-2", 2),
        hangup(bob, "16"),
        hangup(trunk, "16"),
    ]


def attended_transferred() -> list[Fields]:
    """Alice answers, calls bob (a second call), then joins the caller to bob."""
    trunk = trunk_in(1)
    alice = phone("1001", 2, trunk.linkedid)
    alice2 = Chan("PJSIP/1001-00000014", uid(20), uid(20), "1001", "Alice", exten="1002")
    bob = phone("1002", 21, uid(20), connected="1001", name="Alice")
    return [
        newchannel(trunk),
        *rings(trunk, alice),
        *answers(trunk, alice, "b-1"),
        newchannel(alice2),
        *rings(alice2, bob),
        *answers(alice2, bob, "b-2"),
        attended_transfer(alice, alice2, bob),
        hangup(alice, "16"),
        hangup(alice2, "16"),
        hangup(bob, "16"),
        hangup(trunk, "16"),
    ]


def click_to_dial(action: Fields, target: str = "answer") -> tuple[list[Fields], list[Fields]]:
    """What an ``Originate`` of ``Local/1001@from-internal`` then ``Exten`` makes: (user's ring, the rest).

    The first part rings alice's phone through the Local channel and she
    answers (after it Asterisk sends ``OriginateResponse``); the second is
    Local;1 running ``Exten`` in the context: the trunk dials the number,
    which (``target``) answers, is busy, is not answered before the Dial's
    timeout (``no-answer``), or rings until alice hangs up (``user-hangs-up``:
    app_dial cancels the trunk); then everyone hangs up.
    """
    first, other = action["ChannelId"], action["OtherChannelId"]
    local1 = Chan("Local/1001@from-internal-00000001;1", first, first, action["Exten"], exten="1001")
    local2 = Chan("Local/1001@from-internal-00000001;2", other, first, action["Exten"], exten="1001")
    alice = phone("1001", 3, first, connected=action["Exten"], name=action["Exten"])
    ring = [newchannel(local1), newchannel(local2), *rings(local2, alice), *answers(local2, alice, "b-1")]
    ring.append(newstate(local1, UP))
    trunk = Chan("PJSIP/provider-00000004", uid(4), first, DID, "Alice", exten=action["Exten"].lstrip("+"))
    rest = [newchannel(trunk), dial_begin(local1, trunk, f"PJSIP/{action['Exten']}@provider")]
    if target == "answer":
        rest += answers(local1, trunk, "b-2")
        rest += [hangup(trunk, "16"), hangup(local1, "16"), hangup(local2, "16"), hangup(alice, "16")]
    elif target == "busy":
        rest += [dial_end(local1, trunk, "BUSY"), hangup(trunk, "17"), hangup(local1, "17")]
        rest += [hangup(local2, "17"), hangup(alice, "16")]
    elif target == "no-answer":
        # The Dial's timeout: app_dial hangs the trunk up, the dialplan ends normally.
        rest += [newstate(trunk, RINGING), dial_end(local1, trunk, "NOANSWER"), hangup(trunk, "19")]
        rest += [hangup(local1, "16"), hangup(local2, "16"), hangup(alice, "16")]
    elif target == "user-hangs-up":
        # Alice's hang-up ends the Local pair; app_dial on Local;1 then cancels the trunk.
        rest += [newstate(trunk, RINGING), hangup(alice, "16"), hangup(local2, "16")]
        rest += [dial_end(local1, trunk, "CANCEL"), hangup(trunk, "16"), hangup(local1, "16")]
    else:
        raise ValueError(f"no click-to-dial script for the number doing {target!r}")
    return ring, rest


# An Originate as the AMI route sends it, for the scripts that need none of their own.
DIAL = {
    "ActionID": "gw-1",
    "Context": "from-internal",
    "Exten": "+15555550102",
    "ChannelId": "gwdial-0123456789abcdef",
    "OtherChannelId": "gwdial-0123456789abcdef-2",
}


def click_to_dial_of_a_user(action: Fields = DIAL) -> list[Fields]:
    """Alice dials bob's number (``Exten``): once she answers, the dialplan rings bob's phone, who answers."""
    ring, _ = click_to_dial(action)
    first, other = action["ChannelId"], action["OtherChannelId"]
    local1 = Chan("Local/1001@from-internal-00000001;1", first, first, action["Exten"], exten="1001")
    local2 = Chan("Local/1001@from-internal-00000001;2", other, first, action["Exten"], exten="1001")
    alice = phone("1001", 3, first, connected=action["Exten"], name=action["Exten"])
    bob = phone("1002", 5, first, connected=DID, name="Alice")
    rest = [newchannel(bob), dial_begin(local1, bob, "PJSIP/1002"), newstate(bob, RINGING)]
    rest += answers(local1, bob, "b-2")
    rest += [hangup(bob, "16"), hangup(local1, "16"), hangup(local2, "16"), hangup(alice, "16")]
    return [*ring, *rest]


def click_to_dial_unanswered(action: Fields, user: str = "no-answer") -> list[Fields]:
    """An ``Originate`` whose user's phone rings out (``no-answer``, cause 19) or is busy (cause 17)."""
    first, other = action["ChannelId"], action["OtherChannelId"]
    local1 = Chan("Local/1001@from-internal-00000001;1", first, first, action["Exten"], exten="1001")
    local2 = Chan("Local/1001@from-internal-00000001;2", other, first, action["Exten"], exten="1001")
    alice = phone("1001", 3, first, connected=action["Exten"], name=action["Exten"])
    status, cause = {"no-answer": ("NOANSWER", "19"), "busy": ("BUSY", "17")}[user]
    return [
        newchannel(local1),
        newchannel(local2),
        *rings(local2, alice),
        dial_end(local2, alice, status),
        hangup(alice, cause),
        hangup(local2, cause),
        hangup(local1, cause),
    ]


def failed_originate(action: Fields, reason: str = "3") -> Fields:
    """The ``OriginateResponse`` of an Originate whose first channel never answered."""
    first = action["ChannelId"]
    return {
        "Event": "OriginateResponse",
        "Privilege": "call,all",
        "ActionID": action["ActionID"],
        "Response": "Failure",
        "Channel": "Local/1001@from-internal",
        "Context": action["Context"],
        "Exten": action["Exten"],
        "Reason": reason,
        "Uniqueid": first,
        "CallerIDNum": "<unknown>",
        "CallerIDName": "<unknown>",
    }


def queue(answered_by: str) -> list[Fields]:
    """FreePBX queue 400 (ringall) without the ``C`` option: the members that lost see CANCEL and cause 16.

    app_queue rings each member through ``Local/<ext>@from-queue/n`` and
    publishes its own events (``QueueCallerJoin``, ``AgentCalled``,
    ``AgentConnect``) besides the dial events; the reducer needs only the
    latter: the ring that lost ended while another phone of the call was up.
    """
    trunk = trunk_in(1)
    join = {
        "Event": "QueueCallerJoin",
        "Privilege": "agent,all",
        **trunk.fields(),
        "Queue": "400",
        "Position": "1",
        "Count": "1",
    }
    script: list[Fields] = [newchannel(trunk), newstate(trunk, UP), join]
    members = {}
    for i, ext in enumerate(("1001", "1002")):
        one = Chan(f"Local/{ext}@from-queue-{i:08x};1", uid(10 + 3 * i), trunk.linkedid, CALLER, "ACME Corp")
        two = Chan(f"Local/{ext}@from-queue-{i:08x};2", uid(11 + 3 * i), trunk.linkedid, CALLER, "ACME Corp")
        dev = phone(ext, 12 + 3 * i, trunk.linkedid)
        members[ext] = (one, two, dev)
        called = {
            "Event": "AgentCalled",
            "Privilege": "agent,all",
            **trunk.fields(),
            "Queue": "400",
            "MemberName": ext,
            "Interface": f"Local/{ext}@from-queue/n",
        }
        script += [
            newchannel(one),
            newchannel(two),
            dial_begin(trunk, one, f"Local/{ext}@from-queue/n"),
            called,
        ]
        script += rings(two, dev)
    one, two, dev = members[answered_by]
    script += [newstate(dev, UP), dial_end(two, dev, "ANSWER"), newstate(two, UP), newstate(one, UP)]
    for ext, (o, t, d) in members.items():
        if ext != answered_by:
            script += [
                dial_end(trunk, o, "CANCEL"),
                dial_end(t, d, "CANCEL"),
                hangup(d, "16"),
                hangup(t, "16"),
                hangup(o, "16"),
            ]
    script += [dial_end(trunk, one, "ANSWER"), bridge_enter(trunk, "b-1", 1), bridge_enter(one, "b-1", 2)]
    return [*script, hangup(dev, "16"), hangup(two, "16"), hangup(one, "16"), hangup(trunk, "16")]
