"""Click-to-dial through a PBX: ``/api/dial`` to AMI ``Originate`` and to ESL ``bgapi originate``, end to end.

The stand-ins (tests/support/fake_ami.py, fake_esl.py) play the call the
PBX would make (tests/support/ami_calls.py, esl_calls.py); alice's page
must see one call: the dialled one, answered when the number answers, and
ended as it really ended (the number busy or not answering, alice hanging
up while it rings or never picking up her own phone, the PBX unable to
ring it), also when the PBX reports the call before it answered the dial
request, while alice is on another call, and when the request is retried;
a number that rings another user's phone is their incoming call; a call the
PBX places after the gateway gave up on it (504) is hung up before the
number is dialled; a user without a number of their own dials from the
caller id the PBX gives the number, else from their extension.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.sources.ami.client import AmiConnection
from gateway.sources.esl.events import dial_of
from tests.support import ami_calls, esl_calls, harness
from tests.support.fake_ami import FakeAmi, Fields
from tests.support.fake_esl import FakeEsl
from tests.support.harness import make_settings, running_gateway
from tests.support.pbx_rig import TARGET, Rig, rig, synced, table
from tests.support.servers import write_users
from tests.support.sse import SseEvent, summary


def as_app_dial_reports(events: list[Fields], presented: str) -> list[Fields]:
    """The script's trunk channel with the party ids Asterisk gives a channel that app_dial dials.

    app_dial copies the calling channel's caller id to the dialled channel's
    connected line, which chan_pjsip sends as From: the caller id the number
    is shown. The dialled channel's own caller id is the extension it dials.
    Neither is set yet when the channel is created (``Newchannel``).
    """
    out = []
    for fields in events:
        fields = dict(fields)
        for prefix in ("", "Dest"):
            if fields.get(prefix + "Channel", "").startswith("PJSIP/provider-"):
                created = fields["Event"] == "Newchannel"
                fields[prefix + "CallerIDNum"] = "<unknown>" if created else fields[prefix + "Exten"]
                fields[prefix + "ConnectedLineNum"] = "<unknown>" if created else presented
        out.append(fields)
    return out


def ami_play(
    target: str = "answer", user: str = "answer", *, play_before_answer: bool = False, presents: str = ""
) -> FakeAmi:
    """A PBX playing each Originate: the user's phone (``user``), then the number (``target``).

    ``presents``: the caller id the PBX gives the number, reported as Asterisk does (``as_app_dial_reports``).
    """

    async def play(pbx: FakeAmi, action: Fields) -> None:
        if user != "answer":
            reason = {"no-answer": "3", "busy": "5"}[user]
            unanswered = ami_calls.click_to_dial_unanswered(action, user)
            await pbx.emit(*unanswered, ami_calls.failed_originate(action, reason))
            return
        ring, rest = ami_calls.click_to_dial(action, target)
        if presents:
            rest = as_app_dial_reports(rest, presents)
        await pbx.emit(*ring)
        await pbx.emit(pbx.originate_response(action, pbx.channels[action["ChannelId"]], "4"))
        await pbx.emit(*rest)

    return FakeAmi(on_originate=play, play_before_answer=play_before_answer)


ESL_USER_CAUSES = {"no-answer": "NO_ANSWER", "busy": "USER_BUSY"}


def esl_play(target: str = "answer", user: str = "answer", *, play_before_reply: bool = False) -> FakeEsl:
    """A switch playing each originate: the user's phone (``user``), then the number (``target``)."""

    async def play(pbx: FakeEsl, text: str, job: str) -> None:
        call_uuid = text.split("origination_uuid=", 1)[1].split(",", 1)[0]
        number = text.split("} ", 1)[0] and text.split(" ")[2]
        if user != "answer":
            cause = ESL_USER_CAUSES[user]
            await pbx.emit(*esl_calls.click_to_dial_unanswered(call_uuid, number, cause))
            await pbx.job_done(job, f"-ERR {cause}\n")
            return
        ring, rest = esl_calls.click_to_dial(call_uuid, number, target)
        await pbx.emit(*ring)
        await pbx.job_done(job, f"+OK {call_uuid}\n")
        await pbx.emit(*rest)

    return FakeEsl(on_originate=play, play_before_reply=play_before_reply)


Pbx = FakeAmi | FakeEsl


def pbx_play(route: str, target: str = "answer", user: str = "answer", *, early: bool = False) -> Pbx:
    """The route's PBX playing each dial (``early``: the call before the dial request's answer)."""
    if route == "ami":
        return ami_play(target, user, play_before_answer=early)
    return esl_play(target, user, play_before_reply=early)


def presenting(route: str) -> Pbx:
    """The route's PBX giving the number it dials the caller id DID (+1 555 555 0100) and reporting it."""
    if route == "ami":
        return ami_play(presents=ami_calls.DID)
    return esl_play()  # the b-leg of esl_calls' scripts carries it as its Caller-Caller-ID-Number


def originates(pbx: Pbx) -> int:
    if isinstance(pbx, FakeAmi):
        return sum(1 for a in pbx.actions if a.get("Action") == "Originate")
    return sum(1 for c in pbx.commands if c.startswith("bgapi originate"))


def dialled_numbers(pbx: Pbx) -> list[str]:
    """The number each dial request asked the PBX to dial once the user answered."""
    if isinstance(pbx, FakeAmi):
        return [a["Exten"] for a in pbx.actions if a.get("Action") == "Originate"]
    # bgapi originate {vars}<endpoint> <number> <dialplan> <context>
    return [c.rsplit(" ", 3)[1] for c in pbx.commands if c.startswith("bgapi originate")]


def result_only(route: str, result: str) -> Pbx:
    """A PBX that answers each dial request with its result only, the way a phone that never rang does."""

    async def ami_result(pbx: FakeAmi, action: Fields) -> None:
        await pbx.emit(ami_calls.failed_originate(action, reason=result))

    async def esl_result(pbx: FakeEsl, text: str, job: str) -> None:
        await pbx.job_done(job, f"-ERR {result}\n")

    return FakeAmi(on_originate=ami_result) if route == "ami" else FakeEsl(on_originate=esl_result)


def inbound_call(route: str) -> tuple[list[Any], list[Any]]:
    """An inbound call alice answers: (its ring and answer, its hang-up)."""
    script = ami_calls.inbound_answered() if route == "ami" else esl_calls.inbound_answered()
    return script[:-2], script[-2:]


async def test_an_ami_dial_rings_the_users_extension_then_the_number_as_one_call(tmp_path: Path) -> None:
    pbx = ami_play()
    async with rig(tmp_path, pbx, dial=True) as d:
        response = await d.dial()
        events = await d.stream.take(4)
    assert response.status_code == 202
    call_id = response.json()["externalCallId"]
    assert summary(events) == ["outgoingCall", "callAnswered", "callEnded:COMPLETED", "callCompleted"]
    assert {e.json["payload"]["externalCallId"] for e in events} == {call_id}
    (originate,) = [a for a in pbx.actions if a["Action"] == "Originate"]
    assert {k: originate[k] for k in ("Channel", "Context", "Exten", "Priority", "Async", "ChannelId")} == {
        "Channel": "Local/1001@from-internal",
        "Context": "from-internal",
        "Exten": TARGET,
        "Priority": "1",
        "Async": "true",
        "ChannelId": "gwdial-" + call_id.removeprefix("dial:"),
    }


async def test_an_esl_dial_rings_the_user_then_the_number_as_one_call(tmp_path: Path) -> None:
    pbx = esl_play()
    async with rig(tmp_path, pbx, dial=True) as d:
        response = await d.dial()
        events = await d.stream.take(4)
    call_id = response.json()["externalCallId"]
    assert summary(events) == ["outgoingCall", "callAnswered", "callEnded:COMPLETED", "callCompleted"]
    assert {e.json["payload"]["externalCallId"] for e in events} == {call_id}
    (originate,) = [c for c in pbx.commands if c.startswith("bgapi originate")]
    uuid = originate.split("origination_uuid=", 1)[1].split(",", 1)[0]
    assert dial_of(uuid) == call_id.removeprefix("dial:")
    assert originate.endswith(f"}}user/1001 {TARGET} XML default")


@pytest.mark.parametrize("route", ["ami", "esl"])
@pytest.mark.parametrize(("form", "dialled"), [("digits", "12125550100"), ("national", "2125550100")])
async def test_the_pbx_dials_the_number_in_the_form_its_dialplan_expects(
    tmp_path: Path, route: str, form: str, dialled: str
) -> None:
    pbx = pbx_play(route)
    async with rig(tmp_path, pbx, dial=True, dial_number=form) as d:
        response = await d.dial()
        events = await d.stream.take(4)
    assert response.status_code == 202
    assert dialled_numbers(pbx) == [dialled]
    assert summary(events) == ["outgoingCall", "callAnswered", "callEnded:COMPLETED", "callCompleted"]


@pytest.mark.parametrize("route", ["ami", "esl"])
@pytest.mark.parametrize(
    ("target", "status"),
    [("busy", "BUSY"), ("no-answer", "NO_ANSWER"), ("user-hangs-up", "CANCELED")],
    ids=["number-busy", "number-not-answering", "user-hangs-up-while-it-rings"],
)
async def test_a_dial_the_number_does_not_take_ends_as_it_happened(
    tmp_path: Path, route: str, target: str, status: str
) -> None:
    pbx = pbx_play(route, target=target)
    async with rig(tmp_path, pbx, dial=True) as d:
        response = await d.dial()
        events = await d.stream.take(3)
    assert summary(events) == ["outgoingCall", f"callEnded:{status}", "callCompleted"]
    assert {e.json["payload"]["externalCallId"] for e in events} == {response.json()["externalCallId"]}


@pytest.mark.parametrize("route", ["ami", "esl"])
@pytest.mark.parametrize("user", ["no-answer", "busy"])
async def test_a_dial_the_user_never_picks_up_for_ends_canceled(
    tmp_path: Path, route: str, user: str
) -> None:
    pbx = pbx_play(route, user=user)
    async with rig(tmp_path, pbx, dial=True) as d:
        await d.dial()
        events = await d.stream.take(3)
    assert summary(events) == ["outgoingCall", "callEnded:CANCELED", "callCompleted"]


@pytest.mark.parametrize(
    ("route", "result", "status"),
    [
        # OriginateResponse Reason: what the user's phone did (Asterisk's control frames).
        ("ami", "0", "FAILED"),  # no such channel: it could not be rung
        ("ami", "1", "CANCELED"),  # hung up: the user declined
        ("ami", "3", "CANCELED"),  # rang out
        ("ami", "5", "CANCELED"),  # busy
        ("ami", "8", "FAILED"),  # congestion
        # The originate job's -ERR cause.
        ("esl", "NO_ANSWER", "CANCELED"),
        ("esl", "USER_BUSY", "CANCELED"),
        ("esl", "CALL_REJECTED", "CANCELED"),
        ("esl", "ALLOTTED_TIMEOUT", "CANCELED"),  # rang out its leg_timeout
        ("esl", "USER_NOT_REGISTERED", "FAILED"),
        ("esl", "SUBSCRIBER_ABSENT", "FAILED"),
    ],
)
async def test_the_dial_requests_result_alone_ends_a_dial_the_users_phone_did_not_take(
    tmp_path: Path, route: str, result: str, status: str
) -> None:
    pbx = result_only(route, result)
    async with rig(tmp_path, pbx, dial=True) as d:
        await d.dial()
        events = await d.stream.take(3)
    assert summary(events) == ["outgoingCall", f"callEnded:{status}", "callCompleted"]


@pytest.mark.parametrize(("route", "peer"), [("ami", "the PBX"), ("esl", "the switch")])
async def test_a_dial_while_the_pbx_is_down_is_refused_and_the_call_failed(
    tmp_path: Path, route: str, peer: str
) -> None:
    pbx = pbx_play(route)
    async with pbx.running():
        tenant = table(pbx)
    async with running_gateway(
        make_settings(
            tmp_path,
            extra={"dial": {"100": {"route": route}}, route: {"100": tenant}},
        )
    ) as gw:
        token = await gw.login("alice")
        async with gw.stream(token) as stream:
            response = await gw.http.post(
                "/api/dial", json={"number": TARGET}, headers={"authorization": f"Bearer {token}"}
            )
            events = await stream.take(3)
    assert (response.status_code, response.json()["error"]) == (503, f"{peer} is not connected right now")
    assert summary(events) == ["outgoingCall", "callEnded:FAILED", "callCompleted"]


async def test_an_originate_the_pbx_refuses_is_a_502_naming_its_reason(tmp_path: Path) -> None:
    pbx = FakeAmi(refuse_originate="Extension does not exist.")
    async with rig(tmp_path, pbx, dial=True, dial_context="no-such") as d:
        response = await d.dial()
        events = await d.stream.take(3)
    assert (response.status_code, response.json()["error"]) == (
        502,
        "the PBX refused the call (Extension does not exist.)",
    )
    assert summary(events) == ["outgoingCall", "callEnded:FAILED", "callCompleted"]


@contextlib.asynccontextmanager
async def timed_out(
    tmp_path: Path, pbx: Pbx
) -> AsyncIterator[tuple[Rig[Pbx], httpx.Response, list[SseEvent]]]:
    """A dial the PBX (held by ``slow``) did not accept in time: the rig, the answer, what the page saw.

    The PBX is held by the test, not by a clock: the timeout can leave the next dial room.
    """
    pbx.slow = asyncio.Event()
    async with rig(tmp_path, pbx, dial=True, settings={"dial_api_timeout_seconds": 3.0}) as d:
        response = await d.dial()
        failed = await d.stream.take(3)
        if isinstance(pbx, FakeEsl):
            # The gateway starts a new session (a late reply would answer its next command).
            await synced(d.conn, 2)
        yield d, response, failed


@pytest.mark.parametrize(("route", "peer"), [("ami", "the PBX"), ("esl", "the switch")])
async def test_a_dial_the_pbx_does_not_accept_in_time_is_a_504_and_its_late_call_no_call_at_all(
    tmp_path: Path, route: str, peer: str
) -> None:
    pbx = pbx_play(route)
    async with timed_out(tmp_path, pbx) as (d, response, failed):
        # The PBX accepts the dial after all and plays the call it placed.
        assert pbx.slow is not None
        pbx.slow.set()
        await pbx.until(lambda: pbx.played == 1)
        again = await d.dial()
        placed = await d.stream.take(4)
    assert (response.status_code, response.json()["error"]) == (
        504,
        f"{peer} did not accept the call in time",
    )
    assert summary(failed) == ["outgoingCall", "callEnded:FAILED", "callCompleted"]
    # The next thing the user sees is their next dial, a call of its own.
    assert again.status_code == 202
    assert summary(placed) == ["outgoingCall", "callAnswered", "callEnded:COMPLETED", "callCompleted"]
    assert {e.json["externalCallId"] for e in placed} == {again.json()["externalCallId"]}
    assert len({e.json["externalCallId"] for e in failed} | {again.json()["externalCallId"]}) == 2
    assert originates(pbx) == 2


def late_play(route: str, pick_up: asyncio.Event, called: list[str]) -> Pbx:
    """A PBX that rings the user's phone for each dial; when the user would pick up (``pick_up``) the
    number is dialled (and put in ``called``) only if their phone still rings, else the dial fails."""

    async def ami(pbx: FakeAmi, action: Fields) -> None:
        ring, rest = ami_calls.click_to_dial(action)
        ringing, answering = ring[:5], ring[5:]  # Local;1, Local;2, the user's phone ringing
        await pbx.emit(*ringing)
        await pick_up.wait()
        if ringing[2]["Uniqueid"] not in pbx.channels:
            await pbx.emit(ami_calls.failed_originate(action, reason="1"))
            return
        called.append(action["Exten"])
        await pbx.emit(*answering, *rest)

    async def esl(pbx: FakeEsl, text: str, job: str) -> None:
        call_uuid = text.split("origination_uuid=", 1)[1].split(",", 1)[0]
        number = text.split(" ")[2]
        ring, rest = esl_calls.click_to_dial(call_uuid, number)
        await pbx.emit(ring[0])  # the user's phone rings
        await pick_up.wait()
        if call_uuid not in pbx.channels:
            await pbx.job_done(job, "-ERR NORMAL_CLEARING\n")
            return
        called.append(number)
        await pbx.emit(*ring[1:], *rest)

    return FakeAmi(on_originate=ami) if route == "ami" else FakeEsl(on_originate=esl)


def users_phone_hung_up(pbx: Pbx) -> bool:
    """The gateway hung up the user's ringing phone (AMI ``Hangup`` of its channel, ESL ``uuid_kill``)."""
    if isinstance(pbx, FakeAmi):
        return any(name.startswith("PJSIP/1001-") for name in pbx.hung_up)
    return any(dial_of(uuid) for uuid in pbx.killed)  # the user's leg has the uuid the dial chose


@pytest.mark.parametrize("route", ["ami", "esl"])
async def test_a_call_the_pbx_places_after_the_dial_timed_out_is_hung_up_before_the_number_is_called(
    tmp_path: Path, route: str
) -> None:
    pick_up = asyncio.Event()
    called: list[str] = []
    pbx = late_play(route, pick_up, called)
    async with timed_out(tmp_path, pbx) as (_, response, failed):
        # The PBX accepts the dial after all and rings the user's phone: the gateway hangs it up.
        assert pbx.slow is not None
        pbx.slow.set()
        await pbx.until(lambda: users_phone_hung_up(pbx))
        pick_up.set()  # too late: the phone no longer rings
        await pbx.until(lambda: pbx.played == 1)
    assert response.status_code == 504
    assert summary(failed) == ["outgoingCall", "callEnded:FAILED", "callCompleted"]
    assert called == []


async def test_a_late_call_the_manager_user_may_not_hang_up_is_one_warning_per_channel(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pick_up = asyncio.Event()
    pbx = late_play("ami", pick_up, [])
    assert isinstance(pbx, FakeAmi)
    pbx.refuse_hangup = "Permission denied"  # the manager user lacks write = call

    def tried() -> list[str]:
        return [a["Channel"] for a in pbx.actions if a.get("Action") == "Hangup"]

    caplog.set_level(logging.INFO, "gateway.ami")
    async with timed_out(tmp_path, pbx) as (d, _, _):
        assert pbx.slow is not None
        pbx.slow.set()
        await pbx.until(lambda: any(c.startswith("PJSIP/1001-") for c in tried()))
        pick_up.set()  # the phone still rings: the whole call is played, every channel many events
        await pbx.until(lambda: pbx.played == 1)
        await pbx.until(lambda: any(c.startswith("PJSIP/provider-") for c in tried()))
        # Past every event and every answer to a Hangup: the Ping's answer comes after them.
        assert isinstance(d.conn, AmiConnection)
        await d.conn.request("Ping")
    refused = "not hung up by the PBX (Permission denied): the manager user 'hubspot' lacks write = call"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "hung up" in r.msg]
    # Local;1, Local;2, the phone and the trunk: each tried once, each one line saying why.
    assert len(tried()) == len(set(tried())) == 4, tried()
    assert all(refused in w for w in warnings), warnings
    assert sorted(w.split(f" {refused}")[0].rsplit(": ", 1)[1] for w in warnings) == sorted(tried())


@pytest.mark.parametrize("route", ["ami", "esl"])
async def test_a_call_reported_before_the_pbx_answered_the_dial_request_is_the_dialled_call(
    tmp_path: Path, route: str
) -> None:
    pbx = pbx_play(route, early=True)
    async with rig(tmp_path, pbx, dial=True) as d:
        response = await d.dial()
        events = await d.stream.take(4)
        assert d.stream.drain() == []
    assert response.status_code == 202
    assert summary(events) == ["outgoingCall", "callAnswered", "callEnded:COMPLETED", "callCompleted"]
    assert {e.json["payload"]["externalCallId"] for e in events} == {response.json()["externalCallId"]}


@pytest.mark.parametrize("route", ["ami", "esl"])
async def test_a_dial_while_the_user_is_on_another_call_is_a_call_of_its_own(
    tmp_path: Path, route: str
) -> None:
    pbx = pbx_play(route)
    talking, hang_up = inbound_call(route)
    async with rig(tmp_path, pbx, dial=True) as d:
        await pbx.emit(*talking)
        first = await d.stream.take(2)
        response = await d.dial()
        dialled = await d.stream.take(4)
        await pbx.emit(*hang_up)
        last = await d.stream.take(2)
    assert summary(first) + summary(last) == [
        "incomingCall",
        "callAnswered",
        "callEnded:COMPLETED",
        "callCompleted",
    ]
    other = {e.json["payload"]["externalCallId"] for e in first + last}
    assert summary(dialled) == ["outgoingCall", "callAnswered", "callEnded:COMPLETED", "callCompleted"]
    assert {e.json["payload"]["externalCallId"] for e in dialled} == {response.json()["externalCallId"]}
    assert len(other) == 1 and other.isdisjoint({response.json()["externalCallId"]})


@pytest.mark.parametrize("route", ["ami", "esl"])
async def test_a_retried_dial_request_asks_the_pbx_once_and_is_one_call(tmp_path: Path, route: str) -> None:
    pbx = pbx_play(route)
    async with rig(tmp_path, pbx, dial=True) as d:
        first = await d.dial(idempotencyKey="click-1")
        events = await d.stream.take(4)
        again = await d.dial(idempotencyKey="click-1")
        assert d.stream.drain() == []
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert originates(pbx) == 1
    assert summary(events) == ["outgoingCall", "callAnswered", "callEnded:COMPLETED", "callCompleted"]


async def test_a_user_without_an_extension_cannot_dial_through_the_pbx(tmp_path: Path) -> None:
    pbx = esl_play()
    async with rig(tmp_path, pbx, dial=True) as d:
        token = await d.gw.login("bob")
        bob = d.gw.gateway.directory.by_login("bob")
        assert bob is not None and bob.pbx_extension == "1002"
        response = await d.gw.http.post(
            "/api/dial", json={"number": TARGET}, headers={"authorization": f"Bearer {token}"}
        )
    assert response.status_code == 202


async def test_a_dial_of_another_users_number_is_their_incoming_call(tmp_path: Path) -> None:
    async def rings_bob(pbx: FakeAmi, action: Fields) -> None:
        await pbx.emit(*ami_calls.click_to_dial_of_a_user(action))

    pbx = FakeAmi(on_originate=rings_bob)
    async with rig(tmp_path, pbx, dial=True) as d, d.gw.stream(await d.gw.login("bob")) as bobs:
        response = await d.dial(ami_calls.DIAL["Exten"])
        alices = await d.stream.take(4)
        his = await bobs.take(4)
    assert summary(alices) == ["outgoingCall", "callAnswered", "callEnded:COMPLETED", "callCompleted"]
    assert {e.json["externalCallId"] for e in alices} == {response.json()["externalCallId"]}
    assert summary(his) == ["incomingCall", "callAnswered", "callEnded:COMPLETED", "callCompleted"]
    assert his[0].json["payload"]["fromNumber"] == ami_calls.DID


def alice_without_a_number(tmp_path: Path) -> None:
    """Alice keeps her phone (extension 1001) but has no number of her own."""
    alice = {**harness.test_users()[0], "numbers": []}
    write_users(tmp_path / "users.json", [alice, *harness.test_users()[1:]])


async def one_dial(tmp_path: Path, pbx: Pbx, events: int = 4) -> tuple[httpx.Response, list[SseEvent]]:
    """Alice dials the target through the PBX: the dial's answer and the first ``events`` her page gets."""
    async with rig(tmp_path, pbx, dial=True) as d:
        return await d.dial(), await d.stream.take(events)


@pytest.mark.parametrize("route", ["ami", "esl"])
async def test_a_user_without_a_number_dials_with_the_caller_id_the_pbx_gives(
    tmp_path: Path, route: str
) -> None:
    alice_without_a_number(tmp_path)
    pbx = pbx_play(route)
    response, events = await one_dial(tmp_path, pbx)
    assert response.status_code == 202, response.text
    assert response.json()["callerId"] is None
    assert summary(events) == ["outgoingCall", "callAnswered", "callEnded:COMPLETED", "callCompleted"]
    started = events[0].json["payload"]
    assert "fromNumber" not in started and started["toNumber"] == TARGET
    # The originate leaves the far end's caller id to the dialplan.
    if isinstance(pbx, FakeAmi):
        (originate,) = [a for a in pbx.actions if a.get("Action") == "Originate"]
        assert originate["CallerID"] == f'"{TARGET}"'
    else:
        (command,) = [c for c in pbx.commands if c.startswith("bgapi originate")]
        assert "caller_id_number=" in command and "effective_caller_id_number" not in command


def from_numbers(events: list[SseEvent]) -> list[str | None]:
    """The call's ``fromNumber`` after each event, and last what its call log says."""
    logged = events[-1].json["payload"]["engagementProperties"].get("hs_call_from_number")
    return [e.json["call"]["fromNumber"] for e in events] + [logged]


@pytest.mark.parametrize("route", ["ami", "esl"])
async def test_a_user_without_a_number_keeps_the_caller_id_the_pbx_gave_the_number(
    tmp_path: Path, route: str
) -> None:
    alice_without_a_number(tmp_path)
    _, events = await one_dial(tmp_path, presenting(route))
    assert summary(events) == ["outgoingCall", "callAnswered", "callEnded:COMPLETED", "callCompleted"]
    did = ami_calls.DID if route == "ami" else esl_calls.DID
    # Unknown while only alice's own phone rings: the number is dialled once she answers.
    assert from_numbers(events) == [None, did, did, did, did]


@pytest.mark.parametrize("route", ["ami", "esl"])
async def test_a_user_without_a_number_whose_phone_never_answered_keeps_their_extension(
    tmp_path: Path, route: str
) -> None:
    alice_without_a_number(tmp_path)
    _, events = await one_dial(tmp_path, pbx_play(route, user="no-answer"), 3)
    assert summary(events) == ["outgoingCall", "callEnded:CANCELED", "callCompleted"]
    # Nothing was dialled, so the PBX gave no one a caller id: her phone's identity, as the SIP route keeps.
    assert from_numbers(events) == [None, "1001", "1001", "1001"]


@pytest.mark.parametrize("route", ["ami", "esl"])
async def test_a_user_with_a_number_keeps_it_whatever_caller_id_the_pbx_gave_the_number(
    tmp_path: Path, route: str
) -> None:
    response, events = await one_dial(tmp_path, presenting(route))
    assert summary(events) == ["outgoingCall", "callAnswered", "callEnded:COMPLETED", "callCompleted"]
    own = response.json()["callerId"]
    assert own == "+15555550101" and from_numbers(events) == [own] * 5
