"""Click-to-dial by REFER: the SIP dialogs, timers and sockets (decisions in ``click_to_dial_rules``).

One leg per dial: INVITE the user's AOR through the tenant's PBX (digest
as for its subscriptions, auto-answer asked, media inactive), ACK its
answer, REFER it to the number, follow the refer subscription's NOTIFYs
and hang up (BYE) once the phone's own call to the number was answered or
failed. ``start`` returns when the phone rings or answers (the dial is
placed); what happens afterwards is reported through the order's
``report`` callback with plain values, for the dial route to turn into the
dialled call's end.

The SIP service hands this module the responses to its INVITEs and the
requests inside its legs (NOTIFY, BYE, a re-INVITE), and lets it screen
the dialog events the PBX reports: its own legs are never a call, and the
end of the user's call to the number waits for the sipfrag that tells why
it ended (a PBX's dialog events carry no reason; the sipfrag does). The
dialog events may come to another instance than the NOTIFYs: the wait is
kept in the broker (``tracker.dial_holds``, ``gateway.broker.dial_holds``),
so that whichever instance receives the end holds it for the referrer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from gateway.model import EndStatus, Signal
from gateway.sources.sip.adapter import Request, Response, new_request, serialize
from gateway.sources.sip.click_to_dial_rules import (
    AUTO_ANSWER,
    Connected,
    Ended,
    Outcome,
    awaits_reason,
    held_signal,
    held_text,
    inactive_sdp,
    invite_refused,
    is_own_leg,
    leg_call_id,
    next_hop,
    refer_outcome,
    route_set,
    sipfrag_status,
    subscription_terminated,
    tag_of,
    target_uri,
    uri_of,
)
from gateway.sources.sip.digest import DigestClient
from gateway.sources.sip.message_rules import branch_of, cseq_of, make_response
from gateway.sources.sip.message_transport import SipTransport, resolve
from gateway.sources.sip.settings import PbxSettings, SipSettings
from gateway.sources.sip.subscribe_client import USER_AGENT, host_in_uri
from gateway.sources.sip.transactions import ClientTransactions, TransactionTimeout, new_branch
from gateway.tracker import BrokerUnavailable, CallTracker

log = logging.getLogger("gateway.sip.dial")

# How long the phone's own call to the number may take to be answered or
# to fail, once the phone accepted the REFER.
REFER_SECONDS = 180.0
# How long the ends of the user's calls to the number are held for the
# sipfrag: the REFER's own transaction (at most 64*T1), then REFER_SECONDS,
# with room to spare. A referrer gone for longer leaves them to the dial's
# deadline.
HOLD_SECONDS = REFER_SECONDS + 60.0
ALLOW = "INVITE, ACK, BYE, CANCEL, NOTIFY, OPTIONS"

Report = Callable[[Outcome], Awaitable[None]]


@dataclass(frozen=True)
class DialOrder:
    """What the dial route asks for, in plain values."""

    user_id: str
    aor: str  # the user's address of record: the phone to ring
    target: str  # E.164
    pbx: PbxSettings
    report: Report  # outcomes after ``start`` returned


class ClickToDialRefused(Exception):
    """The user's phone could not be called: one sentence, and the HTTP status for the dial request."""

    def __init__(self, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class _GaveUp(Exception):
    """The phone rang but was not answered (or declined): the user gave up."""


@dataclass
class _Leg:
    order: DialOrder
    call_id: str
    local_tag: str
    kind: str
    pbx_address: tuple[str, int]
    local: tuple[str, int]
    digest: DigestClient
    cseq: int = 0
    remote_tag: str | None = None
    remote_target: str = ""
    routes: list[str] = field(default_factory=list)
    invite_branch: str = ""
    ack: bytes | None = None  # the ACK of the 2xx, sent again if the 2xx is
    # Nobody reads the INVITE's answers any more (it got its final one, or was given up on).
    invite_over: bool = False
    responses: asyncio.Queue[Response] = field(default_factory=asyncio.Queue)
    events: asyncio.Queue[tuple[int, str] | None] = field(default_factory=asyncio.Queue)  # None: BYE
    started: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    marked: bool = False  # the ends of the user's calls to the number are held for us
    hung_up: bool = False  # the phone sent BYE

    @property
    def hostport(self) -> str:
        return f"{host_in_uri(self.local[0])}:{self.local[1]}"

    @property
    def domain(self) -> str:
        return self.order.pbx.domain or self.order.aor.split("@", 1)[-1]

    @property
    def request_uri(self) -> str:
        user = self.order.aor.split(":", 1)[1].split("@", 1)[0]
        return f"sip:{user}@{self.domain}"

    @property
    def contact(self) -> str:
        return f"<sip:gateway@{self.hostport}" + (";transport=tcp>" if self.kind == "tcp" else ">")

    @property
    def from_header(self) -> str:
        # The phone shows this while it rings (if it does not answer by itself):
        # the number the user is about to call.
        return (
            f'"Call {self.order.target}" <sip:{self.order.pbx.username}@{self.domain}>;tag={self.local_tag}'
        )


class ClickToDial:
    """Every click-to-dial leg of this process."""

    def __init__(
        self,
        settings: SipSettings,
        transport: SipTransport,
        client: ClientTransactions,
        tracker: CallTracker,
        secret: bytes,
    ) -> None:
        self.settings = settings
        self.transport = transport
        self.client = client
        self.tracker = tracker
        self.secret = secret
        self._legs: dict[str, _Leg] = {}  # by Call-ID
        self._invites: dict[str, _Leg] = {}  # by the branch of each INVITE sent
        self.holds = tracker.dial_holds
        self._tasks: set[asyncio.Task[None]] = set()

    # --- the dial ---

    async def start(self, order: DialOrder) -> str:
        """Ring the user's phone; the leg's Call-ID once it rings or answers.

        Raises ``ClickToDialRefused`` when it could not be rung.
        """
        try:
            pbx_address = await _resolve(order.pbx)
            local = self.transport.contact_address(order.pbx.transport, pbx_address, self.settings.advertise)
        except (OSError, ConnectionError) as exc:
            raise ClickToDialRefused(f"the PBX {order.pbx.host} cannot be reached ({exc})") from None
        leg = _Leg(
            order=order,
            call_id=leg_call_id(self.secret, os.urandom(8), local[0]),
            local_tag=secrets.token_hex(6),
            kind=order.pbx.transport,
            pbx_address=pbx_address,
            local=local,
            digest=DigestClient(order.pbx.username, order.pbx.password),
        )
        self._legs[leg.call_id] = leg
        task = asyncio.create_task(self._run(leg), name=f"sip-click-to-dial-{leg.call_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        await asyncio.shield(leg.started)
        return leg.call_id

    async def _run(self, leg: _Leg) -> None:
        try:
            answered = await self._ring(leg)
            if answered is None:
                return
            self._established(leg, answered)
            await self._send_ack(leg, answered)
            if not leg.started.done():
                leg.started.set_result(None)
            await self._transfer(leg)
        except _GaveUp as exc:
            await self._report(leg, Ended(EndStatus.CANCELED, str(exc)))
        except ClickToDialRefused as exc:
            if not leg.started.done():
                leg.started.set_exception(exc)
            else:
                await self._report(leg, Ended(EndStatus.FAILED, exc.message))
        except asyncio.CancelledError:
            if not leg.started.done():
                leg.started.set_exception(ClickToDialRefused("the gateway is stopping"))
            raise
        except Exception as exc:
            log.exception("sip click-to-dial %s failed", leg.call_id)
            if not leg.started.done():
                leg.started.set_exception(ClickToDialRefused(f"the call to your phone failed ({exc})"))
        finally:
            self._forget(leg)

    async def _ring(self, leg: _Leg) -> Response | None:
        """INVITE until the phone answers: its 2xx, or raises (refused, gave up)."""
        credentials: tuple[str, str] | None = None
        for _ in range(3):  # first try, then at most two challenges
            response = await self._invite(leg, credentials)
            code = response.status_code
            if code < 300:
                return response
            if code in (401, 407):
                credentials = leg.digest.answer(response, "INVITE", leg.request_uri)
                if credentials is not None:
                    continue
            if leg.started.done():
                raise _GaveUp(f"your phone was not answered ({code} {response.reason_phrase})")
            refusal = invite_refused(code, response.reason_phrase, leg.order.aor)
            raise ClickToDialRefused(refusal.message, refusal.status)
        refusal = invite_refused(response.status_code, response.reason_phrase, leg.order.aor)
        raise ClickToDialRefused(refusal.message, refusal.status)

    async def _invite(self, leg: _Leg, credentials: tuple[str, str] | None) -> Response:
        """One INVITE client transaction (RFC 3261 §17.1.1): its final response, non-2xx ACKed."""
        leg.cseq += 1
        branch = new_branch()
        leg.invite_branch = branch
        leg.invite_over = False
        self._invites[branch] = leg
        headers = self._headers(leg, "INVITE", branch, leg.cseq, remote_tag=None)
        headers += [
            ("Contact", leg.contact),
            ("Allow", ALLOW),
            *[(name, value.format(domain=f"sip:{leg.domain}")) for name, value in AUTO_ANSWER],
            ("Content-Type", "application/sdp"),
        ]
        if credentials is not None:
            headers.append(credentials)
        body = inactive_sdp(leg.local[0], int(time.time()))
        data = serialize(new_request("INVITE", leg.request_uri, headers, body))
        timers = self.settings.timers
        try:
            await self._send(leg, data, leg.pbx_address, leg.kind)
            first = await self._first_response(leg, data)
            response = first
            ring_deadline = time.monotonic() + leg.order.pbx.ring_seconds
            cancelled = False
            while response.status_code < 200:
                if response.status_code in (180, 183) and not leg.started.done():
                    leg.started.set_result(None)  # the phone rings: the dial is placed
                wait = ring_deadline - time.monotonic() if not cancelled else timers.timeout
                try:
                    response = await asyncio.wait_for(leg.responses.get(), max(wait, 0.0))
                except TimeoutError:
                    if cancelled:
                        raise ClickToDialRefused("the PBX did not end the call to your phone", 504) from None
                    cancelled = True
                    await self._cancel(leg, branch, leg.cseq)
                    continue
            if response.status_code >= 300:
                await self._send(leg, self._ack_failure(leg, branch, response), leg.pbx_address, leg.kind)
            return response
        finally:
            leg.invite_over = True
            # Kept a while: a retransmitted final answer is still ACKed, a late 2xx hung up (below).
            asyncio.get_running_loop().call_later(timers.timeout, self._invites.pop, branch, None)

    async def _first_response(self, leg: _Leg, data: bytes) -> Response:
        """The first answer to the INVITE, retransmitting it over UDP meanwhile (Timers A and B)."""
        timers = self.settings.timers
        deadline = time.monotonic() + timers.timeout
        interval = timers.t1
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ClickToDialRefused(f"the PBX {leg.order.pbx.host} did not answer", 504)
            wait = left if leg.kind == "tcp" else min(interval, left)
            try:
                return await asyncio.wait_for(leg.responses.get(), wait)
            except TimeoutError:
                if leg.kind != "tcp":
                    await self._send(leg, data, leg.pbx_address, leg.kind)
                    interval *= 2

    async def _cancel(self, leg: _Leg, branch: str, cseq: int) -> None:
        headers = [
            ("Via", f"SIP/2.0/{leg.kind.upper()} {leg.hostport};branch={branch};rport"),
            ("Max-Forwards", "70"),
            ("From", leg.from_header),
            ("To", f"<{leg.request_uri}>"),
            ("Call-ID", leg.call_id),
            ("CSeq", f"{cseq} CANCEL"),
            ("User-Agent", USER_AGENT),
        ]
        data = serialize(new_request("CANCEL", leg.request_uri, headers))
        try:
            await self._transact(leg, branch, "CANCEL", data, leg.pbx_address, leg.kind)
        except (TransactionTimeout, ConnectionError, OSError) as exc:
            log.info("sip click-to-dial %s: CANCEL not answered (%s)", leg.call_id, exc)

    def _ack_failure(self, leg: _Leg, branch: str, response: Response) -> bytes:
        """The ACK of a non-2xx final answer: same branch, hop by hop (RFC 3261 §17.1.1.3)."""
        headers = [
            ("Via", f"SIP/2.0/{leg.kind.upper()} {leg.hostport};branch={branch};rport"),
            ("Max-Forwards", "70"),
            ("From", leg.from_header),
            ("To", response.headers.get_first("to") or f"<{leg.request_uri}>"),
            ("Call-ID", leg.call_id),
            ("CSeq", f"{cseq_of(response)[0]} ACK"),
        ]
        return serialize(new_request("ACK", leg.request_uri, headers))

    def _established(self, leg: _Leg, answer: Response) -> None:
        leg.remote_tag = tag_of(answer.headers.get_first("to"))
        contacts = answer.headers.get("contact")
        leg.remote_target = uri_of(contacts[0]) if contacts else leg.request_uri
        leg.routes = route_set(answer.headers.get("record-route"))

    async def _send_ack(self, leg: _Leg, answer: Response) -> None:
        await self._send_in_dialog(leg, self._ack(leg, answer))

    def _ack(self, leg: _Leg, answer: Response) -> bytes:
        """The ACK of the 2xx: a new transaction, along the route set (RFC 3261 §13.2.2.4).

        Kept in ``leg.ack`` at once, so a retransmitted 2xx from now on is ACKed again.
        """
        headers = self._headers(leg, "ACK", new_branch(), cseq_of(answer)[0], remote_tag=leg.remote_tag)
        leg.ack = serialize(new_request("ACK", leg.remote_target, headers))
        return leg.ack

    def _answered_too_late(self, leg: _Leg, answer: Response) -> None:
        """The phone answered after the gateway gave up on it: ACK, then BYE, as RFC 3261 §13.2.2.4 asks.

        Otherwise the phone would sit answered in a silent call until it
        gives up waiting for the ACK.
        """
        log.info("sip click-to-dial %s: the phone answered after the dial gave up: hanging up", leg.call_id)
        self._established(leg, answer)
        ack = self._ack(leg, answer)

        async def hang_up() -> None:
            await self._send_in_dialog(leg, ack)
            await self._hang_up(leg)

        self._spawn(hang_up())

    async def _transfer(self, leg: _Leg) -> None:
        """REFER the phone to the number, follow its NOTIFYs, then hang up our leg."""
        # Marked before the REFER goes: the phone may call the number, and the
        # PBX report that call's end to another instance, before the REFER's
        # answer is back here.
        await self._mark(leg)
        try:
            outcome = await self._refer(leg)
        except BaseException:
            # Stopping (or a bug): nobody will report a reason; what was held goes now.
            await self._release(leg)
            raise
        await self._report(leg, outcome)
        await self._hang_up(leg)

    async def _refer(self, leg: _Leg) -> Outcome:
        """The REFER and the NOTIFYs that follow it: how the phone's call to the number went."""
        response = await self._in_dialog(
            leg,
            "REFER",
            [
                ("Refer-To", f"<{target_uri(leg.order.target, leg.domain)}>"),
                ("Referred-By", f"<sip:{leg.order.pbx.username}@{leg.domain}>"),
                ("Contact", leg.contact),
            ],
        )
        if response is None or response.status_code >= 300:
            said = "no answer" if response is None else f"{response.status_code} {response.reason_phrase}"
            log.warning("sip click-to-dial %s: the phone refused the REFER (%s)", leg.call_id, said)
            return Ended(EndStatus.FAILED, f"your phone did not accept the transfer ({said})")
        deadline = time.monotonic() + REFER_SECONDS
        while True:
            try:
                event = await asyncio.wait_for(leg.events.get(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                return Ended(None, "the phone said nothing more of its call to the number")
            if event is None:  # the phone hung up on us: its own call goes on
                leg.hung_up = True
                continue
            code, reason = event
            if code == 0:  # the refer subscription ended without a final status
                return Ended(None, "the phone ended the refer subscription without a final status")
            outcome = refer_outcome(code, reason)
            if outcome is not None:
                return outcome

    async def _hang_up(self, leg: _Leg) -> None:
        if leg.hung_up:
            return
        response = await self._in_dialog(leg, "BYE", [])
        if response is None:
            log.info("sip click-to-dial %s: BYE not answered", leg.call_id)

    async def _in_dialog(self, leg: _Leg, method: str, extra: list[tuple[str, str]]) -> Response | None:
        """One in-dialog request along the route set, answering one digest challenge; None on timeout."""
        credentials: tuple[str, str] | None = leg.digest.authorize(method, leg.remote_target)
        for _ in range(2):
            leg.cseq += 1
            branch = new_branch()
            headers = self._headers(leg, method, branch, leg.cseq, remote_tag=leg.remote_tag) + extra
            if credentials is not None:
                headers.append(credentials)
            data = serialize(new_request(method, leg.remote_target, headers))
            hop = next_hop(leg.routes, leg.remote_target, leg.kind)
            if hop is None:
                log.warning("sip click-to-dial %s: no usable next hop for %s", leg.call_id, method)
                return None
            try:
                target = await resolve(hop.host, hop.port, hop.transport)
                response = await self._transact(leg, branch, method, data, target, hop.transport)
            except (TransactionTimeout, ConnectionError, OSError) as exc:
                log.info("sip click-to-dial %s: %s failed (%s)", leg.call_id, method, exc)
                return None
            if response.status_code in (401, 407):
                credentials = leg.digest.answer(response, method, leg.remote_target)
                if credentials is not None:
                    continue
            return response
        return response

    def _headers(
        self, leg: _Leg, method: str, branch: str, cseq: int, *, remote_tag: str | None
    ) -> list[tuple[str, str]]:
        to = f"<{leg.request_uri}>" + (f";tag={remote_tag}" if remote_tag else "")
        headers = [("Via", f"SIP/2.0/{leg.kind.upper()} {leg.hostport};branch={branch};rport")]
        if method != "INVITE" and leg.routes:
            headers += [("Route", route) for route in leg.routes]
        headers += [
            ("Max-Forwards", "70"),
            ("From", leg.from_header),
            ("To", to),
            ("Call-ID", leg.call_id),
            ("CSeq", f"{cseq} {method}"),
            ("User-Agent", USER_AGENT),
        ]
        return headers

    async def _report(self, leg: _Leg, outcome: Outcome) -> None:
        """Tell the dial route how the dialled call went; then the dialog events held back for it."""
        log.info(
            "sip click-to-dial %s (user %s to %s): %s",
            leg.call_id,
            leg.order.user_id,
            leg.order.target,
            "connected" if isinstance(outcome, Connected) else outcome.why,
        )
        try:
            await leg.order.report(outcome)
        except Exception:
            log.exception("sip click-to-dial %s: reporting the outcome failed", leg.call_id)
        await self._release(leg)

    # --- ends held for the sipfrag, on every instance (gateway.broker.dial_holds) ---

    async def _mark(self, leg: _Leg) -> None:
        try:
            await self.holds.mark(leg.order.user_id, leg.order.target, leg.call_id, HOLD_SECONDS)
        except BrokerUnavailable as exc:
            log.warning(
                "sip click-to-dial %s: the end of the call to the number cannot wait for its reason (%s)",
                leg.call_id,
                exc,
            )
            return
        leg.marked = True

    async def _release(self, leg: _Leg) -> None:
        """Stop holding, and deliver what was held (on any instance) meanwhile; once per leg."""
        if not leg.marked:
            return
        leg.marked = False
        try:
            held = await self.holds.release(leg.order.user_id, leg.order.target, leg.call_id)
        except BrokerUnavailable as exc:
            # The dial's deadline ends the call still (on any instance).
            log.warning(
                "sip click-to-dial %s: held dialog events left to the deadline (%s)", leg.call_id, exc
            )
            return
        for text in held:
            signal = held_signal(text)
            if signal is None:
                log.warning("sip click-to-dial %s: a held dialog event was unreadable", leg.call_id)
                continue
            try:
                await self.tracker.observe(signal)
            except BrokerUnavailable as exc:
                log.warning("sip click-to-dial %s: a held dialog event was lost (%s)", leg.call_id, exc)

    # --- I/O helpers ---

    async def _send(self, leg: _Leg, data: bytes, target: tuple[str, int], kind: str) -> None:
        if kind == "tcp":
            await self.transport.send_tcp(data, target)
        else:
            self.transport.send_udp(data, target)

    async def _send_in_dialog(self, leg: _Leg, data: bytes) -> None:
        hop = next_hop(leg.routes, leg.remote_target, leg.kind)
        if hop is None:
            return
        with contextlib.suppress(OSError, ConnectionError):
            await self._send(leg, data, await resolve(hop.host, hop.port, hop.transport), hop.transport)

    async def _transact(
        self, leg: _Leg, branch: str, method: str, data: bytes, target: tuple[str, int], kind: str
    ) -> Response:
        async def send() -> None:
            await self._send(leg, data, target, kind)

        return await self.client.request(branch, method, send, reliable=kind == "tcp", target=target)

    # --- what the SIP service hands over ---

    def on_response(self, response: Response) -> bool:
        """Take the answers to our INVITEs (provisional ones too); ``False``: not ours."""
        _, method = cseq_of(response)
        if method != "INVITE":
            return False
        leg = self._invites.get(branch_of(response))
        if leg is None:
            return False
        if 200 <= response.status_code < 300 and leg.ack is not None:
            # A retransmitted 2xx: our ACK was lost (RFC 3261 §13.2.2.4).
            self._spawn(self._send_in_dialog(leg, leg.ack))
            return True
        if 200 <= response.status_code < 300 and leg.invite_over:
            self._answered_too_late(leg, response)
            return True
        leg.responses.put_nowait(response)
        return True

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def owns(self, request: Request) -> bool:
        return (request.headers.get_first("call-id") or "") in self._legs

    async def on_request(self, request: Request) -> tuple[Response, bool]:
        """A request inside one of our legs: the refer NOTIFYs, the phone's BYE or re-INVITE."""
        leg = self._legs.get(request.headers.get_first("call-id") or "")
        if leg is None:
            return make_response(request, 481, "Call/Transaction Does Not Exist"), True
        if request.method == "NOTIFY":
            event = (request.headers.get_first("event") or "").split(";")[0].strip().lower()
            if event != "refer":
                return make_response(request, 489, "Bad Event", extra=[("Allow-Events", "refer")]), True
            status = sipfrag_status(request.body)
            if status is not None and status[0] >= 200:
                leg.events.put_nowait(status)
            elif subscription_terminated(request.headers.get_first("subscription-state")):
                leg.events.put_nowait((0, ""))
            return make_response(request, 200, "OK"), True
        if request.method == "BYE":
            leg.events.put_nowait(None)
            return make_response(request, 200, "OK"), True
        if request.method == "INVITE":
            # The phone holds our leg before it dials (many do): agree, still without media.
            return make_response(
                request,
                200,
                "OK",
                extra=[("Contact", leg.contact), ("Content-Type", "application/sdp")],
                body=inactive_sdp(leg.local[0], int(time.time())),
            ), True
        if request.method == "CANCEL":
            return make_response(request, 200, "OK"), True
        return make_response(request, 405, "Method Not Allowed", extra=[("Allow", ALLOW)]), True

    async def screen(self, signal: Signal) -> bool:
        """Whether a dialog-event signal goes to the tracker now (``False``: dropped or held).

        Our own legs are never a call of the user's. The end of the user's
        call to a number some instance REFERred them to, when the PBX gives
        no reason, is held until the phone's sipfrag told that instance why
        it ended (BUSY, NO_ANSWER, ...), and delivered by it after that: the
        first end reported wins. Only such ends cost a broker round trip.
        """
        if is_own_leg(self.secret, signal.call_id):
            return False
        number = awaits_reason(signal)
        if number is None:
            return True
        try:
            held = await self.holds.hold(signal.user_id, number, held_text(signal))
        except BrokerUnavailable as exc:
            # Delivered now: it reads as the model decides (the tracker keeps it through the outage).
            log.warning(
                "sip: an end of %s's call to %s cannot wait for its reason (%s)", signal.user_id, number, exc
            )
            return True
        return not held

    def _forget(self, leg: _Leg) -> None:
        # Late NOTIFYs and retransmissions of the leg still get answered for a while.
        asyncio.get_running_loop().call_later(self.settings.timers.timeout, self._legs.pop, leg.call_id, None)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=1)


async def _resolve(pbx: PbxSettings) -> tuple[str, int]:
    return await resolve(pbx.host, pbx.port, pbx.transport)
