"""A stand-in Asterisk Manager Interface on 127.0.0.1, and the events real calls make.

It follows AMI as Asterisk documents it (docs.asterisk.org: "Asterisk
Manager Interface (AMI)" for the framing, the banner and ``ActionID``;
"AMI Actions" for ``Challenge``, ``Login``, ``Ping``, ``CoreShowChannels``
and ``Originate``; "AMI Events" for the fields of ``Newchannel``,
``Newstate``, ``DialBegin``, ``DialEnd``, ``BridgeEnter``, ``Hangup``,
``BlindTransfer``, ``AttendedTransfer``, ``CoreShowChannel`` and
``OriginateResponse``):

- on connect the banner ``Asterisk Call Manager/5.0.2`` (Asterisk 16);
- actions before a successful ``Login`` are answered ``Permission denied``;
- ``Challenge`` (``AuthType: MD5``) answers a number; ``Login`` accepts the
  MD5 of challenge and secret (``AuthType: MD5``, ``Key``) or the plain
  ``Secret``, else ``Authentication failed``; then ``FullyBooted``;
- ``CoreShowChannels`` answers ``EventList: start``, one
  ``CoreShowChannel`` per channel up, ``CoreShowChannelsComplete``
  (``refuse_listing``: ``Permission denied``, as to a manager user
  whose ``write`` lacks ``reporting``);
- ``Originate`` answers ``Originate successfully queued`` and hands the
  action to the test's ``on_originate``, which plays the call and its
  ``OriginateResponse`` (an event: every logged-in session gets it, as
  Asterisk sends it to every manager reading ``call``); with
  ``play_before_answer`` the call is played before the answer;
- ``Hangup`` (``Channel``: the exact name, ``Cause``) answers ``Channel
  Hungup`` and hangs the channel up (its ``Hangup`` event; the names kept
  in ``hung_up``), or ``No such channel``;
- ``Logoff`` answers ``Goodbye`` and closes the session.

The channels the test's events create are kept (``Newchannel`` to
``Hangup``), so a connection made mid-call lists them as Asterisk would.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import ssl
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from tests.support.fake_link import FakeLink, LinkSession

Fields = dict[str, str]

BANNER = b"Asterisk Call Manager/5.0.2\r\n"
STATE_DESC = {"0": "Down", "4": "Ring", "5": "Ringing", "6": "Up"}


def frame(fields: Fields) -> bytes:
    return "".join(f"{key}: {value}\r\n" for key, value in fields.items()).encode() + b"\r\n"


def parse_action(block: bytes) -> Fields:
    out: Fields = {}
    for line in block.decode().split("\r\n"):
        key, _, value = line.partition(":")
        out.setdefault(key.strip(), value.strip())
    return out


@dataclass
class Chan:
    """One Asterisk channel as the events describe it."""

    name: str  # "PJSIP/1001-00000002", "Local/1001@from-internal-00000001;1"
    uniqueid: str
    linkedid: str
    caller_num: str = ""
    caller_name: str = ""
    connected_num: str = ""
    connected_name: str = ""
    exten: str = "s"
    context: str = "from-internal"
    state: str = "0"
    bridge: str = ""

    def fields(self, prefix: str = "") -> Fields:
        return {
            f"{prefix}Channel": self.name,
            f"{prefix}ChannelState": self.state,
            f"{prefix}ChannelStateDesc": STATE_DESC.get(self.state, "Unknown"),
            f"{prefix}CallerIDNum": self.caller_num or "<unknown>",
            f"{prefix}CallerIDName": self.caller_name or "<unknown>",
            f"{prefix}ConnectedLineNum": self.connected_num or "<unknown>",
            f"{prefix}ConnectedLineName": self.connected_name or "<unknown>",
            f"{prefix}Language": "en",
            f"{prefix}AccountCode": "",
            f"{prefix}Context": self.context,
            f"{prefix}Exten": self.exten,
            f"{prefix}Priority": "1",
            f"{prefix}Uniqueid": self.uniqueid,
            f"{prefix}Linkedid": self.linkedid,
        }


def event(name: str, *chans: tuple[str, Chan], **extra: str) -> Fields:
    out: Fields = {"Event": name, "Privilege": "call,all"}
    for prefix, chan in chans:
        out.update(chan.fields(prefix))
    out.update(extra)
    return out


# -- the events of one step of a call, as Asterisk emits them ------------------
def newchannel(chan: Chan) -> Fields:
    return event("Newchannel", ("", chan))


def newstate(chan: Chan, state: str) -> Fields:
    chan.state = state
    return event("Newstate", ("", chan))


def dial_begin(caller: Chan | None, dest: Chan, dialstring: str) -> Fields:
    chans = (("", caller), ("Dest", dest)) if caller else (("Dest", dest),)
    return event("DialBegin", *chans, DialString=dialstring)


def dial_end(caller: Chan | None, dest: Chan, status: str) -> Fields:
    chans = (("", caller), ("Dest", dest)) if caller else (("Dest", dest),)
    return event("DialEnd", *chans, DialStatus=status)


def bridge_enter(chan: Chan, bridge: str, count: int) -> Fields:
    chan.bridge = bridge
    return event(
        "BridgeEnter",
        ("", chan),
        BridgeUniqueid=bridge,
        BridgeType="basic",
        BridgeTechnology="simple_bridge",
        BridgeCreator="<unknown>",
        BridgeName="<unknown>",
        BridgeNumChannels=str(count),
        BridgeVideoSourceMode="none",
    )


CAUSE_TEXT = {
    "0": "Unknown",
    "16": "Normal Clearing",
    "17": "User busy",
    "19": "No answer",
    "26": "Answered elsewhere",
    "34": "Circuit/channel congestion",
}


def hangup(chan: Chan, cause: str) -> Fields:
    return event("Hangup", ("", chan), Cause=cause, **{"Cause-txt": CAUSE_TEXT.get(cause, "Unknown")})


def blind_transfer(transferer: Chan, transferee: Chan, exten: str) -> Fields:
    return event(
        "BlindTransfer",
        ("Transferer", transferer),
        ("Transferee", transferee),
        Result="Success",
        IsExternal="Yes",
        Context="from-internal",
        Extension=exten,
        BridgeUniqueid=transferer.bridge,
    )


def attended_transfer(orig: Chan, second: Chan, target: Chan) -> Fields:
    return event(
        "AttendedTransfer",
        ("OrigTransferer", orig),
        ("SecondTransferer", second),
        ("TransferTarget", target),
        Result="Success",
        DestType="Bridge",
        DestBridgeUniqueid=second.bridge,
        OrigBridgeUniqueid=orig.bridge,
        SecondBridgeUniqueid=second.bridge,
        IsExternal="No",
    )


@dataclass
class _Session(LinkSession):
    challenge: str = ""


OnOriginate = Callable[["FakeAmi", Fields], Coroutine[Any, Any, None]]


@dataclass
class FakeAmi(FakeLink[_Session]):
    username: str = "hubspot"
    secret: str = "ami-secret-0123"
    on_originate: OnOriginate | None = None
    tls: ssl.SSLContext | None = None  # AMI over TLS (manager.conf tlsenable), as on port 5039
    # Answer every Originate with this error message (a context or extension the PBX lacks).
    refuse_originate: str | None = None
    refuse_listing: bool = False
    # Answer every Hangup with this error ("Permission denied": Asterisk's answer
    # to a manager user without ``write = call``).
    refuse_hangup: str | None = None
    # Play the call before answering its Originate: Asterisk's originate
    # thread may send the call's events before the action's response.
    play_before_answer: bool = False
    # What each session said and did.
    actions: list[Fields] = field(default_factory=list)
    channels: dict[str, Chan] = field(default_factory=dict)
    hung_up: list[str] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    request_end = b"\r\n\r\n"

    def _session(self, writer: asyncio.StreamWriter) -> _Session:
        return _Session(writer)

    def _greeting(self) -> bytes:
        return BANNER

    def _ssl(self) -> ssl.SSLContext | None:
        return self.tls

    # -- what the PBX sends ----------------------------------------------------
    async def emit(self, *events: Fields) -> None:
        """Events to every logged-in session, in order; the channels kept up to date."""
        for fields in events:
            self._keep(fields)
            await self.send_raw(frame(fields), to=lambda session: session.logged_in)

    def _keep(self, fields: Fields) -> None:
        kind = fields.get("Event")
        uid = fields.get("Uniqueid", "")
        if kind == "Newchannel":
            self.channels[uid] = Chan(
                fields["Channel"], uid, fields["Linkedid"], fields["CallerIDNum"], fields["CallerIDName"],
                fields["ConnectedLineNum"], fields["ConnectedLineName"], fields["Exten"], fields["Context"],
                fields["ChannelState"],
            )  # fmt: skip
        elif kind == "Newstate" and uid in self.channels:
            self.channels[uid].state = fields["ChannelState"]
        elif kind == "BridgeEnter" and uid in self.channels:
            self.channels[uid].bridge = fields["BridgeUniqueid"]
        elif kind == "Hangup":
            self.channels.pop(uid, None)

    # -- actions ---------------------------------------------------------------
    async def _answer(self, session: _Session, fields: Fields) -> None:
        await self._write(session, frame(fields))

    async def _request(self, session: _Session, block: bytes) -> None:
        action = parse_action(block)
        self.actions.append(action)
        await self._answer_action(session, action)

    async def _answer_action(self, session: _Session, action: Fields) -> None:
        name = action.get("Action", "").lower()
        action_id = action.get("ActionID", "")
        ok: Fields = {"Response": "Success", "ActionID": action_id}
        if name == "challenge":
            session.challenge = str(100_000_000 + next(self._ids))
            await self._answer(session, {**ok, "Challenge": session.challenge})
            return
        if name == "login":
            await self._login(session, action, ok)
            return
        if not session.logged_in:
            await self._answer(
                session, {"Response": "Error", "ActionID": action_id, "Message": "Permission denied"}
            )
            return
        if name == "logoff":
            await self._answer(
                session, {"Response": "Goodbye", "ActionID": action_id, "Message": "Thanks for all the fish."}
            )
            session.writer.close()
        elif name == "hangup":
            await self._hang_up(session, action, ok)
        elif name == "ping":
            await self._answer(session, {**ok, "Ping": "Pong", "Timestamp": "1701480000.000000"})
        elif name == "coreshowchannels" and self.refuse_listing:
            await self._answer(
                session, {"Response": "Error", "ActionID": action_id, "Message": "Permission denied"}
            )
        elif name == "coreshowchannels":
            await self._answer(session, {**ok, "EventList": "start", "Message": "Channels will follow"})
            for chan in self.channels.values():
                listed = {
                    "Event": "CoreShowChannel", "ActionID": action_id, **chan.fields(),
                    "Application": "Dial" if chan.state != "6" or not chan.bridge else "AppDial",
                    "ApplicationData": "", "Duration": "00:00:12", "BridgeId": chan.bridge,
                }  # fmt: skip
                session.writer.write(frame(listed))
            await self._answer(
                session,
                {
                    "Event": "CoreShowChannelsComplete",
                    "ActionID": action_id,
                    "EventList": "Complete",
                    "ListItems": str(len(self.channels)),
                },
            )
        elif name == "originate" and self.refuse_originate is not None:
            await self._answer(
                session, {"Response": "Error", "ActionID": action_id, "Message": self.refuse_originate}
            )
        elif name == "originate":
            if not action.get("Channel") or not (action.get("Exten") or action.get("Application")):
                await self._answer(
                    session, {"Response": "Error", "ActionID": action_id, "Message": "Channel not specified"}
                )
                return
            await self._dial_request()
            play = self.on_originate
            if play is not None and self.play_before_answer:
                await play(self, action)
            # A client that gave up waiting may have closed the session: the call is placed all the same.
            with contextlib.suppress(ConnectionError):
                await self._answer(session, {**ok, "Message": "Originate successfully queued"})
            if play is not None and not self.play_before_answer:
                self.spawn(play(self, action))
        else:
            await self._answer(
                session, {"Response": "Error", "ActionID": action_id, "Message": "Invalid/unknown command"}
            )

    async def _hang_up(self, session: _Session, action: Fields, ok: Fields) -> None:
        if self.refuse_hangup is not None:
            await self._answer(
                session, {"Response": "Error", "ActionID": ok["ActionID"], "Message": self.refuse_hangup}
            )
            return
        chan = next((c for c in self.channels.values() if c.name == action.get("Channel")), None)
        if chan is None:
            await self._answer(
                session, {"Response": "Error", "ActionID": ok["ActionID"], "Message": "No such channel"}
            )
            return
        await self._answer(session, {**ok, "Message": "Channel Hungup"})
        self.hung_up.append(chan.name)
        await self.emit(hangup(chan, action.get("Cause") or "16"))

    async def _login(self, session: _Session, action: Fields, ok: Fields) -> None:
        if action.get("AuthType", "").lower() == "md5":
            expected = hashlib.md5((session.challenge + self.secret).encode()).hexdigest()
            good = bool(session.challenge) and action.get("Key") == expected
        else:
            good = action.get("Secret") == self.secret
        good = good and action.get("Username") == self.username
        if not good:
            self.refused_logins += 1
            await self._answer(
                session, {"Response": "Error", "ActionID": ok["ActionID"], "Message": "Authentication failed"}
            )
            return
        self._let_in(session)
        await self._answer(session, {**ok, "Message": "Authentication accepted"})
        await self._answer(
            session,
            {
                "Event": "FullyBooted",
                "Privilege": "system,all",
                "Uptime": "5",
                "LastReload": "5",
                "Status": "Fully Booted",
            },
        )

    def originate_response(self, action: Fields, chan: Chan, reason: str, ok: bool = True) -> Fields:
        """The ``OriginateResponse`` event (``Reason`` 4: answered, 5: busy, 3: no answer, 8: congested)."""
        return {
            "Event": "OriginateResponse",
            "Privilege": "call,all",
            "ActionID": action.get("ActionID", ""),
            "Response": "Success" if ok else "Failure",
            "Channel": chan.name,
            "Context": action.get("Context", ""),
            "Exten": action.get("Exten", ""),
            "Application": "",
            "Data": "",
            "Reason": reason,
            "Uniqueid": chan.uniqueid,
            "CallerIDNum": chan.caller_num or "<unknown>",
            "CallerIDName": chan.caller_name or "<unknown>",
        }
