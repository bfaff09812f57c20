"""Calls as FreeSWITCH (1.10) reports them on the event socket: event scripts for the tests.

Same people as tests/support/ami_calls.py: alice on extension 1001, bob on
1002, the caller +1 212 555 0123 on the ``provider`` gateway to the DID
+1 555 555 0100. The first leg's ``Unique-ID`` is every leg's
``Channel-Call-UUID``; a bridge to ``user/1001,user/1002`` rings both and
hangs up the one that lost with ``LOSE_RACE``.
"""

from __future__ import annotations

from tests.support.fake_esl import FsChan, Headers, answer, bridge, create, hangup

CALLER = "+12125550123"
DID = "+15555550100"
A = "a1a1a1a1-0000-4000-8000-000000000001"


def u(n: int) -> str:
    return f"b2b2b2b2-0000-4000-8000-{n:012d}"


def trunk_in() -> FsChan:
    return FsChan(A, A, f"sofia/external/{CALLER}@provider.test", "inbound", CALLER, "ACME Corp", DID)


def phone(ext: str, n: int, call: str = A, caller: str = CALLER, name: str = "ACME Corp") -> FsChan:
    return FsChan(u(n), call, f"sofia/internal/sip:{ext}@10.0.0.{n}:5060", "outbound", caller, name, ext)


def inbound_answered() -> list[Headers]:
    trunk, alice = trunk_in(), phone("1001", 2)
    return [
        create(trunk),
        create(alice),
        answer(alice),
        answer(trunk),
        bridge(trunk, alice),
        hangup(alice, "NORMAL_CLEARING"),
        hangup(trunk, "NORMAL_CLEARING"),
    ]


def ring_group(answered_by: str | None) -> list[Headers]:
    trunk, alice, bob = trunk_in(), phone("1001", 2), phone("1002", 3)
    script = [create(trunk), create(alice), create(bob)]
    if answered_by is None:
        return [
            *script,
            hangup(alice, "ORIGINATOR_CANCEL"),
            hangup(bob, "ORIGINATOR_CANCEL"),
            hangup(trunk, "NORMAL_CLEARING"),
        ]
    winner, loser = (alice, bob) if answered_by == "1001" else (bob, alice)
    return [
        *script,
        answer(winner),
        hangup(loser, "LOSE_RACE"),
        answer(trunk),
        bridge(trunk, winner),
        hangup(winner, "NORMAL_CLEARING"),
        hangup(trunk, "NORMAL_CLEARING"),
    ]


def inbound_unanswered(cause: str) -> list[Headers]:
    trunk, alice = trunk_in(), phone("1001", 2)
    return [create(trunk), create(alice), hangup(alice, cause), hangup(trunk, cause)]


def outbound(cause: str | None = None) -> list[Headers]:
    """Alice dials 1 212 555 0123 out of the ``provider`` gateway."""
    alice = FsChan(A, A, "sofia/internal/1001@pbx.test", "inbound", "1001", "Alice", "12125550123")
    out = FsChan(u(2), A, "sofia/gateway/provider/12125550123", "outbound", DID, "Alice", "12125550123")
    script = [create(alice), create(out)]
    if cause is not None:
        return [*script, hangup(out, cause), hangup(alice, cause)]
    return [
        *script,
        answer(out),
        answer(alice),
        bridge(alice, out),
        hangup(out, "NORMAL_CLEARING"),
        hangup(alice, "NORMAL_CLEARING"),
    ]


def blind_transferred() -> list[Headers]:
    """Alice answers, then sends a REFER to 1002; the caller's leg is bridged on to bob."""
    trunk, alice, bob = trunk_in(), phone("1001", 2), phone("1002", 3)
    return [
        *inbound_answered()[:5],
        hangup(alice, "NORMAL_CLEARING", sip_refer_to="<sip:1002@pbx.test>"),
        create(bob),
        answer(bob),
        bridge(trunk, bob),
        hangup(bob, "NORMAL_CLEARING"),
        hangup(trunk, "NORMAL_CLEARING"),
    ]


def attended_transferred() -> list[Headers]:
    """Alice answers, calls bob on a second line, then transfers: both her legs end ATTENDED_TRANSFER."""
    trunk, alice = trunk_in(), phone("1001", 2)
    second = "c3c3c3c3-0000-4000-8000-000000000020"
    alice2 = FsChan(second, second, "sofia/internal/1001@pbx.test", "inbound", "1001", "Alice", "1002")
    bob = phone("1002", 21, call=second, caller="1001", name="Alice")
    return [
        *inbound_answered()[:5],
        create(alice2),
        create(bob),
        answer(bob),
        answer(alice2),
        bridge(alice2, bob),
        hangup(alice, "ATTENDED_TRANSFER"),
        hangup(alice2, "ATTENDED_TRANSFER"),
        bridge(trunk, bob),
        hangup(bob, "NORMAL_CLEARING"),
        hangup(trunk, "NORMAL_CLEARING"),
    ]


def _dialled_alice(call_uuid: str, target: str) -> FsChan:
    return FsChan(
        call_uuid, call_uuid, "sofia/internal/sip:1001@10.0.0.2:5060", "outbound", target, target, "1001"
    )


def click_to_dial(call_uuid: str, target: str, does: str = "answer") -> tuple[list[Headers], list[Headers]]:
    """What ``originate {origination_uuid=...}user/1001 <target> XML default`` makes: (ring, the rest).

    Alice answers; the dialplan bridges her to the number on the
    ``provider`` gateway, which (``does``) answers, is busy, is not answered
    before the bridge's ``call_timeout`` (``no-answer``), or rings until
    alice hangs up (``user-hangs-up``: the switch cancels it).
    """
    alice = _dialled_alice(call_uuid, target)
    out = FsChan(u(9), call_uuid, f"sofia/gateway/provider/{target}", "outbound", DID, "Alice", target)
    ring = [create(alice), answer(alice)]
    rest = [create(out)]
    if does == "answer":
        rest += [
            answer(out),
            bridge(alice, out),
            hangup(out, "NORMAL_CLEARING"),
            hangup(alice, "NORMAL_CLEARING"),
        ]
    elif does == "busy":
        rest += [hangup(out, "USER_BUSY"), hangup(alice, "USER_BUSY")]
    elif does == "no-answer":
        rest += [hangup(out, "NO_ANSWER"), hangup(alice, "NORMAL_CLEARING")]
    elif does == "user-hangs-up":
        # The bridge gives up the ringing leg before alice's own channel completes its hang-up.
        rest += [hangup(out, "ORIGINATOR_CANCEL"), hangup(alice, "NORMAL_CLEARING")]
    else:
        raise ValueError(f"no click-to-dial script for the number doing {does!r}")
    return ring, rest


DIAL_UUID = "01234567-89ab-4cde-af67-67776469616c"  # the uuid of dial 0123456789abcdef


def click_to_dial_of_a_user(call_uuid: str = DIAL_UUID) -> list[Headers]:
    """Alice dials bob's number: once she answers, the dialplan bridges her to bob's phone, who answers."""
    alice = _dialled_alice(call_uuid, "+15555550102")
    bob = phone("1002", 5, call=call_uuid, caller=DID, name="Alice")
    return [
        create(alice),
        answer(alice),
        create(bob),
        answer(bob),
        bridge(alice, bob),
        hangup(bob, "NORMAL_CLEARING"),
        hangup(alice, "NORMAL_CLEARING"),
    ]


def click_to_dial_unanswered(call_uuid: str, target: str, cause: str = "NO_ANSWER") -> list[Headers]:
    """An originate whose user's phone does not take the call (``cause``: rings out, busy...)."""
    alice = _dialled_alice(call_uuid, target)
    return [create(alice), hangup(alice, cause)]
