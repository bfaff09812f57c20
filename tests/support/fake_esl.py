"""A stand-in FreeSWITCH event socket on 127.0.0.1 (inbound mode), and the events real calls make.

It follows mod_event_socket as FreeSWITCH documents it (developer.signalwire.com,
"mod_event_socket"; "Event List"; "Channel Variables"): on connect
``Content-Type: auth/request``; ``auth <password>`` answered ``command/reply``
``+OK accepted`` or ``-ERR invalid`` followed by a ``text/disconnect-notice``
and the close; ``event plain ...`` answered ``+OK event listener enabled
plain``; ``api <command>`` answered ``api/response`` with a
``Content-Length`` body (``show channels as json``: ``{"row_count": n,
"rows": [...]}`` with ``uuid``, ``call_uuid``, ``name``, ``direction``,
``cid_num``, ``dest``, ``callstate``; ``refuse_listing``: ``-ERR show
Command not found!``, the answer to a command the switch lacks); ``bgapi <command>`` with a ``Job-UUID``
header answered ``+OK Job-UUID: <uuid>``, its result later as a
``BACKGROUND_JOB`` event whose body is the output (an ``originate`` is
played by the test's ``on_originate``, before the reply with
``play_before_reply``). Events go out as
``text/event-plain`` frames, header values URL-encoded, to each session
that asked for their name (``event plain <names>``, or ``ALL``). ``exit``
is answered ``+OK bye``, a disconnect notice and the close. ``api uuid_kill
<uuid> [<cause>]`` (mod_commands) answers ``+OK`` and hangs the channel up
(``CHANNEL_HANGUP_COMPLETE``, cause ``NORMAL_CLEARING`` unless given), or
``-ERR No such channel!``; the uuids killed are kept in ``killed``. With
``deny_address`` (the gateway's address outside ``apply-inbound-acl``) a
connection gets ``Content-Type: text/rude-rejection`` instead of
``auth/request``, then the close. An ``auth``
accepted is a login (tests/support/fake_link.py counts them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from tests.support.fake_link import FakeLink, LinkSession

Headers = dict[str, str]
DISCONNECT = b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
REJECTION = b"Access Denied, go away.\n"


def frame(headers: Headers, body: bytes = b"") -> bytes:
    if body:
        headers = {"Content-Length": str(len(body)), **headers}
    return "".join(f"{k}: {v}\n" for k, v in headers.items()).encode() + b"\n" + body


def event_frame(headers: Headers, body: str = "") -> bytes:
    if body:
        headers = {**headers, "Content-Length": str(len(body.encode()))}
    plain = "".join(f"{k}: {quote(v, safe='')}\n" for k, v in headers.items()) + "\n" + body
    return frame({"Content-Type": "text/event-plain"}, plain.encode())


@dataclass
class FsChan:
    """One FreeSWITCH channel as its events describe it."""

    uuid: str
    call_uuid: str
    name: str  # "sofia/internal/1001@pbx.test", "sofia/external/+12125550123@provider"
    direction: str  # "inbound" into the switch or "outbound" from it
    cid_num: str
    cid_name: str
    dest: str
    answered: bool = False

    def headers(self, event: str, **extra: str) -> Headers:
        return {
            "Event-Name": event,
            "Core-UUID": "6b9d7e52-3f7e-4bd0-a1f4-000000000001",
            "FreeSWITCH-Hostname": "fs.test",
            "Event-Date-Timestamp": "1701480000000000",
            "Unique-ID": self.uuid,
            "Channel-Call-UUID": self.call_uuid,
            "Channel-Name": self.name,
            "Call-Direction": self.direction,
            "Answer-State": "answered" if self.answered else "ringing",
            "Caller-Caller-ID-Number": self.cid_num,
            "Caller-Caller-ID-Name": self.cid_name,
            "Caller-Destination-Number": self.dest,
            "Caller-Context": "default",
            **extra,
        }

    def row(self) -> dict[str, Any]:
        return {
            "uuid": self.uuid,
            "call_uuid": self.call_uuid,
            "name": self.name,
            "direction": self.direction,
            "cid_num": self.cid_num,
            "cid_name": self.cid_name,
            "dest": self.dest,
            "callstate": "ACTIVE" if self.answered else "RINGING",
            "created_epoch": "1701480000",
        }


def create(chan: FsChan) -> Headers:
    return chan.headers("CHANNEL_CREATE")


def answer(chan: FsChan) -> Headers:
    chan.answered = True
    return chan.headers("CHANNEL_ANSWER")


def bridge(a: FsChan, b: FsChan) -> Headers:
    return a.headers("CHANNEL_BRIDGE", **{"Bridge-A-Unique-ID": a.uuid, "Bridge-B-Unique-ID": b.uuid})


Q850 = {
    "NORMAL_CLEARING": "16",
    "USER_BUSY": "17",
    "NO_ANSWER": "19",
    "ORIGINATOR_CANCEL": "487",
    "LOSE_RACE": "26",
}


def hangup(chan: FsChan, cause: str, **variables: str) -> Headers:
    extra = {"Hangup-Cause": cause, "variable_hangup_cause_q850": Q850.get(cause, "16")}
    extra.update({f"variable_{k}": v for k, v in variables.items()})
    return chan.headers("CHANNEL_HANGUP_COMPLETE", **extra)


@dataclass
class _Session(LinkSession):
    listening: bool = False
    events: frozenset[str] = frozenset()

    def wants(self, name: str) -> bool:
        """The session listens to events named ``name`` (``event plain <names>``, or ``ALL``)."""
        return self.listening and bool({name, "ALL"} & self.events)


OnOriginate = Callable[["FakeEsl", str, str], Coroutine[Any, Any, None]]


@dataclass
class FakeEsl(FakeLink[_Session]):
    password: str = "ClueCon-test-pw"
    on_originate: OnOriginate | None = None
    # Play the call (and its job's result) before replying to the bgapi.
    play_before_reply: bool = False
    deny_address: bool = False
    refuse_listing: bool = False
    commands: list[str] = field(default_factory=list)
    channels: dict[str, FsChan] = field(default_factory=dict)
    killed: list[str] = field(default_factory=list)

    request_end = b"\n\n"

    def _session(self, writer: asyncio.StreamWriter) -> _Session:
        return _Session(writer)

    def _greeting(self) -> bytes:
        if self.deny_address:
            return frame({"Content-Type": "text/rude-rejection"}, REJECTION)
        return frame({"Content-Type": "auth/request"})

    def _turned_away(self) -> bool:
        return self.deny_address

    async def emit(self, *events: Headers) -> None:
        for headers in events:
            self._keep(headers)
            await self._event(headers)

    async def job_done(self, job_uuid: str, result: str) -> None:
        await self._event(
            {"Event-Name": "BACKGROUND_JOB", "Job-UUID": job_uuid, "Job-Command": "originate"}, result
        )

    async def _event(self, headers: Headers, body: str = "") -> None:
        name = headers["Event-Name"]
        await self.send_raw(event_frame(headers, body), to=lambda session: session.wants(name))

    def _keep(self, headers: Headers) -> None:
        kind, uid = headers["Event-Name"], headers.get("Unique-ID", "")
        if kind == "CHANNEL_CREATE":
            self.channels[uid] = FsChan(
                uid, headers["Channel-Call-UUID"], headers["Channel-Name"], headers["Call-Direction"],
                headers["Caller-Caller-ID-Number"], headers["Caller-Caller-ID-Name"],
                headers["Caller-Destination-Number"],
            )  # fmt: skip
        elif kind == "CHANNEL_ANSWER" and uid in self.channels:
            self.channels[uid].answered = True
        elif kind == "CHANNEL_HANGUP_COMPLETE":
            self.channels.pop(uid, None)

    async def _kill(self, session: _Session, uuid: str, cause: str = "NORMAL_CLEARING") -> None:
        chan = self.channels.get(uuid)
        body = "-ERR No such channel!\n" if chan is None else "+OK\n"
        await self._write(session, frame({"Content-Type": "api/response"}, body.encode()))
        if chan is not None:
            self.killed.append(uuid)
            await self.emit(hangup(chan, cause))

    async def _request(self, session: _Session, block: bytes) -> None:
        lines = block.decode().strip().split("\n")
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        await self._command(session, lines[0], headers)

    async def _reply(self, session: _Session, text: str, **headers: str) -> None:
        await self._write(session, frame({"Content-Type": "command/reply", "Reply-Text": text, **headers}))

    async def _command(self, session: _Session, line: str, headers: Headers) -> None:
        self.commands.append(line)
        verb, _, rest = line.partition(" ")
        if verb == "auth":
            if rest == self.password:
                self._let_in(session)
                await self._reply(session, "+OK accepted")
                return
            self.refused_logins += 1
            await self._reply(session, "-ERR invalid")
            session.writer.write(frame({"Content-Type": "text/disconnect-notice"}, DISCONNECT))
            session.writer.close()
            return
        if not session.logged_in:
            await self._reply(session, "-ERR invalid")
            return
        if verb == "exit":
            await self._reply(session, "+OK bye")
            session.writer.write(frame({"Content-Type": "text/disconnect-notice"}, DISCONNECT))
            session.writer.close()
        elif verb == "event":
            session.listening = True
            session.events = session.events | frozenset(rest.split()[1:])
            await self._reply(session, "+OK event listener enabled plain")
        elif verb == "api":
            if rest.startswith("uuid_kill "):
                await self._kill(session, *rest.split()[1:3])
                return
            if rest == "show channels as json" and self.refuse_listing:
                body = "-ERR show Command not found!\n"
            elif rest == "show channels as json":
                rows = [chan.row() for chan in self.channels.values()]
                body = json.dumps({"row_count": len(rows), "rows": rows} if rows else {"row_count": 0})
            else:
                body = "UP 0 years, 0 days, 0 hours, 1 minute, 2 seconds\n"
            session.writer.write(frame({"Content-Type": "api/response"}, body.encode()))
            await session.writer.drain()
        elif verb == "bgapi":
            job = headers.get("Job-UUID", "00000000-0000-4000-8000-000000000000")
            play = self.on_originate if rest.startswith("originate ") else None
            if play is not None:
                await self._dial_request()
            if play is not None and self.play_before_reply:
                await play(self, rest, job)
            # A client that gave up waiting may have closed the session: the job runs all the same.
            with contextlib.suppress(ConnectionError):
                await self._reply(session, f"+OK Job-UUID: {job}", **{"Job-UUID": job})
            if play is not None and not self.play_before_reply:
                self.spawn(play(self, rest, job))
        else:
            await self._reply(session, "-ERR command not found")
