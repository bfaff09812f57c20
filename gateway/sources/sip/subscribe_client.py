"""Subscriber mode: one RFC 4235 dialog subscription per user address of record.

Each subscription is a small task: SUBSCRIBE (answering digest challenges),
refresh before expiry, and start over with capped exponential backoff and
jitter when the PBX ends it (``Subscription-State: terminated``), forgets it
(481, e.g. after a restart), stops answering (transaction timeout) or drops
the TCP connection. NOTIFY bodies go through ``EntityWatch`` to the tracker.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.sources.sip.adapter import Request, Response, new_request, parse_address, serialize
from gateway.sources.sip.coordination import Coordination
from gateway.sources.sip.dialog_delivery import SignalDelivery
from gateway.sources.sip.dialog_watch import EntityWatch
from gateway.sources.sip.dialoginfo import DialogInfoError, parse_dialog_info
from gateway.sources.sip.digest import DigestClient
from gateway.sources.sip.message_rules import make_response
from gateway.sources.sip.message_transport import SipTransport, resolve
from gateway.sources.sip.ownership import Ownership
from gateway.sources.sip.settings import PbxSettings, SipSettings
from gateway.sources.sip.subscribe_rules import (
    Forgotten,
    RefreshPacer,
    Refused,
    after_termination,
    backoff,
    failures_after,
    on_answer,
    restart_delay,
    seconds,
    subscription_state,
)
from gateway.sources.sip.transactions import ClientTransactions, TransactionTimeout, new_branch
from gateway.tasks import cancel_and_wait
from gateway.tracker import BrokerUnavailable, CallTracker
from gateway.users.directory import Directory, User

log = logging.getLogger("gateway.sip")

USER_AGENT = "call-event-gateway"
ALLOW = "NOTIFY, PUBLISH, OPTIONS"


def allowed_methods(settings: SipSettings) -> str:
    """The ``Allow`` value: PUBLISH only when it is served (``publish_from`` set)."""
    return ALLOW if settings.publish and settings.publish_from else "NOTIFY, OPTIONS"


class State(enum.StrEnum):
    SUBSCRIBING = "subscribing"
    ACTIVE = "active"
    RETRYING = "retrying"
    STOPPED = "stopped"


def host_in_uri(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


@dataclass
class _Dialog:
    call_id: str
    local_tag: str
    cseq: int = 0
    remote_tag: str | None = None
    remote_target: str | None = None
    confirmed: bool = False


@dataclass
class DialogSubscription:
    user: User
    aor: str
    pbx: PbxSettings
    watch: EntityWatch
    digest: DigestClient
    pacer: RefreshPacer
    state: State = State.SUBSCRIBING
    dialog: _Dialog | None = None
    failures: int = 0
    expires_at: float = 0.0
    active_since: float | None = None  # when the current dialog became active
    last_error: str = ""  # why it is not active, for /readyz
    retry_at: float | None = None  # when it starts over (monotonic), while retrying
    paced_refresh: asyncio.TimerHandle | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    next_delay: float | None = None
    stopping: bool = False
    task: asyncio.Task[None] | None = None

    @property
    def target_uri(self) -> str:
        user = self.aor.split(":", 1)[1].split("@", 1)[0]
        domain = self.pbx.domain or self.aor.split("@", 1)[1]
        return f"sip:{user}@{domain}"


class Subscriber:
    """All dialog subscriptions of this process, kept in line with the directory."""

    def __init__(
        self,
        settings: SipSettings,
        transport: SipTransport,
        client: ClientTransactions,
        tracker: CallTracker,
        default_region: str,
        coordination: Coordination,
        on_refused_body: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.on_refused_body = on_refused_body
        self.transport = transport
        self.client = client
        self.delivery = SignalDelivery(tracker, coordination)
        # Which AORs this instance holds (all of them without Redis).
        self.ownership = Ownership(coordination, settings.owner_heartbeat_seconds, settings.owner_ttl_seconds)
        self._wanted: dict[tuple[str, str], tuple[User, PbxSettings]] = {}
        self._own_lock = asyncio.Lock()
        self._own_task: asyncio.Task[None] | None = None
        self._broker_down = False
        # AORs being unsubscribed before their leases are released.
        self._handing_over: set[str] = set()
        self._hand_overs: set[asyncio.Task[None]] = set()
        self.default_region = default_region
        # The users as of the last sync, for naming the other party of a call.
        self._directory = Directory()
        self.subscriptions: dict[tuple[str, str], DialogSubscription] = {}
        self._by_call_id: dict[str, DialogSubscription] = {}
        self._resolved: dict[tuple[str, int], tuple[str, int]] = {}
        self.closed = False

    # --- directory ---

    def wanted(self, directory: Directory) -> dict[tuple[str, str], tuple[User, PbxSettings]]:
        wanted: dict[tuple[str, str], tuple[User, PbxSettings]] = {}
        for user in directory:
            pbx = self.settings.pbx.get(user.tenant)
            if pbx is None:
                continue
            for aor in user.aors:
                wanted[(user.id, aor)] = (user, pbx)
        return wanted

    async def sync(self, directory: Directory) -> None:
        """Subscribe new addresses of record, unsubscribe removed ones (of those this instance holds)."""
        if self.closed:
            return  # a directory reload racing with shutdown
        self._directory = directory
        self._wanted = self.wanted(directory)
        await self._rebalance()
        if self.ownership.coordination.shared and self._own_task is None:
            self._own_task = asyncio.create_task(self._keep_share(), name="sip-ownership")

    async def _keep_share(self) -> None:
        while not self.closed:
            await asyncio.sleep(self.ownership.heartbeat_seconds)
            try:
                await self._rebalance()
            except Exception:
                log.exception("sip: keeping this instance's share of the AORs failed")

    async def _rebalance(self) -> None:
        """Take the AORs that are ours and free, hand over the others, then match the subscriptions."""
        async with self._own_lock:
            if self.closed:
                return
            wanted = self._wanted
            try:
                step = await self.ownership.step({aor for _, aor in wanted})
            except BrokerUnavailable as exc:
                # Nobody can take a lease over meanwhile: keep what we hold.
                if not self._broker_down:
                    log.warning("sip: cannot reach the broker to share the AORs (%s); keeping ours", exc)
                self._broker_down = True
                step = None
            if step is not None:
                if self._broker_down:
                    log.info("sip: the broker is back; sharing the AORs again")
                self._broker_down = False
                leaving = (step.lost | step.giving_up) - self._handing_over
                if leaving:
                    # Unsubscribing may take a while (a PBX that does not
                    # answer): not in this step, which must keep renewing the leases.
                    if step.giving_up:
                        log.info("sip: handing over %d AORs to other instances", len(step.giving_up))
                    self._handing_over |= leaving
                    task = asyncio.create_task(self._hand_over(leaving, step.giving_up & leaving))
                    self._hand_overs.add(task)
                    task.add_done_callback(self._hand_overs.discard)
            held = self.ownership.held
            gone = [
                key
                for key in self.subscriptions
                if (key not in wanted or key[1] not in held) and key[1] not in self._handing_over
            ]
            await asyncio.gather(*(self._remove(key) for key in gone))
            for key, (user, pbx) in wanted.items():
                if key[1] not in held or key[1] in self._handing_over:
                    continue
                existing = self.subscriptions.get(key)
                if existing is not None:
                    existing.user = user
                    continue
                self._start(key, user, pbx)

    async def _hand_over(self, names: frozenset[str], release: frozenset[str]) -> None:
        """End our dialogs of ``names``, then give up the leases of ``release`` (the others were lost)."""
        try:
            await asyncio.gather(*(self._remove(key) for key in list(self.subscriptions) if key[1] in names))
            with contextlib.suppress(BrokerUnavailable):
                await self.ownership.release(release)
        finally:
            self._handing_over -= names

    def _start(self, key: tuple[str, str], user: User, pbx: PbxSettings) -> None:
        sub = DialogSubscription(
            user=user,
            aor=key[1],
            pbx=pbx,
            watch=EntityWatch(
                user.id,
                "sip",
                self.default_region,
                local_number=user.own_number,
                known_number=functools.partial(self._number_of, user.tenant),
            ),
            digest=DigestClient(pbx.username, pbx.password),
            pacer=RefreshPacer(self.settings.retry_min_seconds, self.settings.retry_max_seconds),
        )
        self.subscriptions[key] = sub
        sub.task = asyncio.create_task(self._run(sub), name=f"sip-subscribe-{key[1]}")

    def _number_of(self, tenant: int, identity: str) -> str | None:
        """The number of the gateway user a remote identity names (a call between two users)."""
        return self._directory.number_of(identity, tenant)

    async def _remove(self, key: tuple[str, str]) -> None:
        sub = self.subscriptions.pop(key, None)
        if sub is None:
            return
        sub.stopping = True
        sub.wake.set()
        if sub.task is not None:
            # A SUBSCRIBE on its way is let finish (briefly): cancelled, its
            # dialog would live on at the PBX with nobody to end it, beside
            # the one the AOR's next holder makes.
            if sub.state is State.SUBSCRIBING:
                await asyncio.wait({sub.task}, timeout=2)
            sub.task.cancel()
            # wait() rather than awaiting the task: a cancellation of *this*
            # task must not be mistaken for the subscription's and swallowed.
            await asyncio.wait({sub.task})
        if sub.dialog is not None and sub.dialog.confirmed:
            try:
                await asyncio.wait_for(self._send_subscribe(sub, sub.dialog, 0), 2)
            except (TransactionTimeout, ConnectionError, OSError, TimeoutError) as exc:
                log.info("sip unsubscribe %s: %s", sub.aor, exc)
        self._forget_dialog(sub)
        sub.state = State.STOPPED
        sub.last_error = "stopped"

    async def stop(self) -> None:
        """Hand every AOR over: leave the live instances, unsubscribe, release the leases."""
        async with self._own_lock:
            self.closed = True
        if self._own_task is not None:
            await cancel_and_wait(self._own_task)
        if self._hand_overs:
            await asyncio.wait(set(self._hand_overs))  # their unsubscribes, then their releases
        # Leaving first: the others start counting these AORs as theirs and
        # take each lease as soon as it is released below.
        with contextlib.suppress(BrokerUnavailable):
            await self.ownership.leave()
        await asyncio.gather(*(self._remove(key) for key in list(self.subscriptions)))
        with contextlib.suppress(BrokerUnavailable):
            await self.ownership.release(list(self.ownership.held))

    # --- health ---

    def health(self) -> dict[tuple[str, ...], float]:
        return {
            (sub.user.login, sub.aor, str(sub.pbx.tenant)): 1.0 if sub.state is State.ACTIVE else 0.0
            for sub in self.subscriptions.values()
        }

    def status(self) -> dict[str, object]:
        """For the operator page: this instance's id among the live ones, and its subscriptions."""
        now = time.monotonic()
        return {
            "instance": self.ownership.me,
            "live": sorted(self.ownership.live),
            "subscriptions": [
                {"aor": sub.aor, "user": sub.user.id, "state": sub.state.value, "detail": _why(sub, now)}
                for sub in self.subscriptions.values()
            ],
        }

    def summary(self) -> tuple[bool, str]:
        total = len(self.subscriptions)
        active = sum(1 for sub in self.subscriptions.values() if sub.state is State.ACTIVE)
        now = time.monotonic()
        failing = [
            f"{sub.aor}: {_why(sub, now)}"
            for sub in self.subscriptions.values()
            if sub.state is not State.ACTIVE
        ]
        detail = f"{active}/{total} dialog subscriptions active"
        if self.ownership.coordination.shared:
            detail += f" (held here, of {len({aor for _, aor in self._wanted})} AORs"
            detail += f" shared by {max(1, len(self.ownership.live))} instances)"
        if failing:
            detail += " (" + "; ".join(failing[:5]) + ")"
        if self._broker_down:
            # The AORs held are kept, but none can change hands: not ready, and said why.
            return False, detail + "; the broker cannot be reached to share the AORs"
        return active == total, detail

    # --- the subscription loop ---

    async def _run(self, sub: DialogSubscription) -> None:
        while not sub.stopping:
            try:
                delay = await self._attempt(sub)
            except (TransactionTimeout, ConnectionError, OSError, _Refused) as exc:
                if not isinstance(exc, _Refused):
                    # The PBX may have moved (DNS failover): look its name up afresh.
                    self._resolved.pop((sub.pbx.host, sub.pbx.port), None)
                delay = self._retrying(sub, str(exc) or exc.__class__.__name__)
                log.warning(
                    "sip subscription %s failed (%s); retrying in %.1fs", sub.aor, sub.last_error, delay
                )
            except Exception as exc:
                log.exception("sip subscription %s crashed; retrying", sub.aor)
                delay = self._retrying(sub, f"failed unexpectedly ({exc.__class__.__name__})")
            await self._sleep(sub, delay)
            if sub.next_delay is not None:
                delay, sub.next_delay = sub.next_delay, None
                await self._sleep(sub, delay)

    def _retrying(self, sub: DialogSubscription, reason: str, delay: float | None = None) -> float:
        """Start ``sub`` over later (backoff unless ``delay`` is given); the delay."""
        sub.failures = self._failures_after(sub)
        self._forget_dialog(sub)
        sub.state = State.RETRYING
        wait = restart_delay(self._backoff(sub) if delay is None else delay)
        sub.last_error = reason
        sub.retry_at = time.monotonic() + wait
        return wait

    def _failures_after(self, sub: DialogSubscription) -> int:
        active_for = None if sub.active_since is None else time.monotonic() - sub.active_since
        return failures_after(sub.failures, active_for)

    def _backoff(self, sub: DialogSubscription) -> float:
        return backoff(sub.failures, self.settings.retry_min_seconds, self.settings.retry_max_seconds)

    async def _sleep(self, sub: DialogSubscription, delay: float) -> None:
        # Cleared after, not before: a wake-up that came while a SUBSCRIBE
        # was in flight (a NOTIFY saying "terminated") must not be lost.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):  # not wait_for: see gateway/outbox/worker.py
                await sub.wake.wait()
        sub.wake.clear()

    async def _attempt(self, sub: DialogSubscription) -> float:
        """Subscribe (or refresh); the delay until the next refresh."""
        if sub.dialog is None:
            sub.state = State.SUBSCRIBING
            sub.dialog = _Dialog(call_id=secrets.token_hex(12) + "@gw", local_tag=secrets.token_hex(6))
            self._by_call_id[sub.dialog.call_id] = sub
            sub.watch.resubscribed()
        dialog = sub.dialog
        self._paced_refresh_sent(sub)
        response = await self._send_subscribe(sub, dialog, sub.pbx.expires)
        if sub.dialog is not dialog:
            # Ended while the SUBSCRIBE was out (a NOTIFY said terminated):
            # this answer belongs to a dialog that is gone; _run's sleep obeys the restart.
            return 0.0
        to = response.headers.get_first("to")
        contacts = response.headers.get("contact")
        outcome = on_answer(
            response.status_code,
            response.reason_phrase,
            refreshing=dialog.confirmed,
            to_tag=_tag_of(to),
            contact_uri=_uri_of(contacts[0]) if contacts else None,
            expires=response.headers.get_first("expires"),
            requested=sub.pbx.expires,
        )
        if isinstance(outcome, Forgotten):
            # Not at once: the restart floor holds here too (a PBX that answers
            # every refresh 481 must not get a new subscription every few ms).
            raise _Refused("the PBX no longer knows the subscription (481 to a refresh)")
        if isinstance(outcome, Refused):
            raise _Refused(outcome.reason)
        dialog.remote_tag = dialog.remote_tag or outcome.remote_tag
        dialog.remote_target = outcome.remote_target or dialog.remote_target
        if not dialog.confirmed:
            sub.active_since = time.monotonic()
        dialog.confirmed = True
        sub.expires_at = time.monotonic() + outcome.expires
        sub.state = State.ACTIVE
        sub.last_error = ""
        sub.retry_at = None
        return outcome.refresh_in

    async def _send_subscribe(self, sub: DialogSubscription, dialog: _Dialog, expires: int) -> Response:
        uri = dialog.remote_target if dialog.confirmed and dialog.remote_target else sub.target_uri
        credentials = sub.digest.authorize("SUBSCRIBE", uri) if dialog.confirmed else None
        for _ in range(3):  # first try, then at most two challenges (e.g. a stale nonce)
            response = await self._transact(sub, dialog, uri, expires, credentials)
            if response.status_code == 423 and expires:
                expires = seconds(response.headers.get_first("min-expires"), expires)
                continue
            if response.status_code not in (401, 407):
                return response
            credentials = sub.digest.answer(response, "SUBSCRIBE", uri)
            if credentials is None:
                raise _Refused(f"cannot answer the {response.status_code} challenge")
        return response

    async def _transact(
        self,
        sub: DialogSubscription,
        dialog: _Dialog,
        uri: str,
        expires: int,
        credentials: tuple[str, str] | None,
    ) -> Response:
        target = await self._resolve(sub.pbx)
        kind = sub.pbx.transport
        local = self.transport.contact_address(kind, target, self.settings.advertise)
        dialog.cseq += 1
        branch = new_branch()
        to = f"<{sub.target_uri}>" + (f";tag={dialog.remote_tag}" if dialog.remote_tag else "")
        hostport = f"{host_in_uri(local[0])}:{local[1]}"
        contact = f"<sip:gateway@{hostport}" + (";transport=tcp>" if kind == "tcp" else ">")
        headers = [
            ("Via", f"SIP/2.0/{kind.upper()} {hostport};branch={branch};rport"),
            ("Max-Forwards", "70"),
            ("From", f"<sip:{sub.pbx.username}@{sub.target_uri.split('@', 1)[1]}>;tag={dialog.local_tag}"),
            ("To", to),
            ("Call-ID", dialog.call_id),
            ("CSeq", f"{dialog.cseq} SUBSCRIBE"),
            ("Contact", contact),
            ("Event", "dialog"),
            ("Accept", "application/dialog-info+xml"),
            ("Expires", str(expires)),
            ("Allow", allowed_methods(self.settings)),
            ("User-Agent", USER_AGENT),
        ]
        if credentials is not None:
            headers.append(credentials)
        data = serialize(new_request("SUBSCRIBE", uri, headers))

        async def send() -> None:
            if kind == "tcp":
                await self.transport.send_tcp(data, target)
            else:
                self.transport.send_udp(data, target)

        return await self.client.request(branch, "SUBSCRIBE", send, reliable=kind == "tcp", target=target)

    async def _resolve(self, pbx: PbxSettings) -> tuple[str, int]:
        key = (pbx.host, pbx.port)
        if key not in self._resolved:
            self._resolved[key] = await resolve(pbx.host, pbx.port, pbx.transport)
        return self._resolved[key]

    def _forget_dialog(self, sub: DialogSubscription) -> None:
        if sub.dialog is not None:
            self._by_call_id.pop(sub.dialog.call_id, None)
            sub.dialog = None
        sub.active_since = None
        # The new dialog's first NOTIFY is full state anyway; a paced refresh
        # firing later would cut the restart delay short.
        self._paced_refresh_sent(sub)

    def _ask_full_state(self, sub: DialogSubscription) -> None:
        """Refresh to get full state (RFC 6665 §4.2.1.1), as soon as the pacer allows."""
        delay = sub.pacer.ask(time.monotonic())
        if delay is None:
            return  # one is already on its way
        if delay <= 0:
            sub.wake.set()
            return
        log.info("sip %s: full state asked for again; refreshing in %.1fs", sub.aor, delay)
        sub.paced_refresh = asyncio.get_running_loop().call_later(delay, sub.wake.set)

    def _paced_refresh_sent(self, sub: DialogSubscription) -> None:
        sub.pacer.sent()
        if sub.paced_refresh is not None:
            sub.paced_refresh.cancel()
            sub.paced_refresh = None

    # --- what the PBX tells us ---

    def on_connection_lost(self, peer: tuple[str, int]) -> None:
        for sub in self.subscriptions.values():
            if sub.pbx.transport == "tcp" and self._resolved.get((sub.pbx.host, sub.pbx.port)) == peer:
                log.warning("sip tcp connection to %s:%d lost; subscribing %s again", *peer, sub.aor)
                self._restart(sub, None, "the TCP connection to the PBX was lost")

    def on_notify_failed(self, request: Request, answered: str = "500") -> None:
        """A NOTIFY got an error answer elsewhere (a crash): its subscription is gone at the PBX."""
        sub = self._by_call_id.get(request.headers.get_first("call-id") or "")
        if sub is not None:
            log.warning("sip NOTIFY for %s answered %s; subscribing again", sub.aor, answered)
            self._restart(sub, None, f"a NOTIFY was answered {answered}, which ends it at the PBX")

    def _restart(self, sub: DialogSubscription, delay: float | None, reason: str) -> None:
        sub.next_delay = self._retrying(sub, reason, delay)
        sub.wake.set()

    async def on_notify(self, request: Request) -> tuple[Response, bool]:
        """The answer to a NOTIFY, and whether a retransmission may reuse it."""
        call_id = request.headers.get_first("call-id") or ""
        sub = self._by_call_id.get(call_id)
        if sub is None or sub.dialog is None:
            return make_response(request, 481, "DialogSubscription Does Not Exist"), True
        event = (request.headers.get_first("event") or "").split(";")[0].strip().lower()
        # A non-2xx answer without Retry-After makes the PBX drop the subscription
        # (RFC 6665 §4.2.2): start a new one rather than wait for silence.
        if event != "dialog":
            self._restart(sub, None, "a NOTIFY for another event package was answered 489")
            return make_response(request, 489, "Bad Event", extra=[("Allow-Events", "dialog")]), True
        state, params = subscription_state(request.headers.get_first("subscription-state"))
        if not state:
            self._restart(sub, None, "a NOTIFY without Subscription-State was answered 400")
            return make_response(request, 400, "Missing Subscription-State"), True
        async with sub.lock:
            if sub.dialog.remote_tag is None:
                sub.dialog.remote_tag = _tag_of(request.headers.get_first("from"))
            answer = make_response(request, 200, "OK")
            if request.body.strip():
                try:
                    info = parse_dialog_info(request.body)
                except DialogInfoError as exc:
                    # Answered 200 all the same: an error answer would end the
                    # subscription (RFC 6665 §4.2.2). The refresh brings full state.
                    log.warning("sip NOTIFY for %s: body refused (%s); asking for full state", sub.aor, exc)
                    if self.on_refused_body is not None:
                        self.on_refused_body()
                    if state != "terminated":
                        self._ask_full_state(sub)
                else:
                    result = await self.delivery.apply(sub.watch, info, int(time.time() * 1000), sub.aor)
                    if not result.resync:
                        sub.pacer.settled()
                    elif state != "terminated":
                        log.info("sip %s: version gap, asking for full state", sub.aor)
                        self._ask_full_state(sub)
        if state == "terminated":
            reason = params.get("reason") or "none given"
            log.info("sip subscription %s terminated by the PBX (reason=%s)", sub.aor, reason[:64])
            self._restart(sub, after_termination(params), f"terminated by the PBX (reason={reason[:64]})")
        return answer, True


class _Refused(Exception):
    pass


def _why(sub: DialogSubscription, now: float) -> str:
    """What /readyz says of a subscription that is not active."""
    if not sub.last_error:
        return sub.state.value
    if sub.state is State.RETRYING and sub.retry_at is not None:
        return f"{sub.last_error}; subscribing again in {max(0.0, sub.retry_at - now):.1f} s"
    if sub.state is State.SUBSCRIBING:
        return f"{sub.last_error}; subscribing again now"
    return sub.last_error


def _tag_of(address: str | None) -> str | None:
    if not address:
        return None
    try:
        return parse_address(address).tag
    except Exception:  # the library's parser may raise anything on garbage
        return None


def _uri_of(contact: str) -> str | None:
    try:
        value = contact.strip()
        if "<" in value:
            return value[value.index("<") + 1 : value.index(">")]
        return value.split(";")[0] or None
    except ValueError:
        return None
