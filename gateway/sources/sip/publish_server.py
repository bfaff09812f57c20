"""The PUBLISH receiver (RFC 3903, ``Event: dialog``), as Kamailio/OpenSIPS ``pua_dialoginfo`` send it.

Any instance may receive any PUBLISH. Entity tags validate themselves
(``publish_rules.PublicationRules``: forged, altered, expired or another
entity's tags are refused without a look-up), and each accepted publication
has a record shared by all instances (``Coordination.save_publication``):
its current entity tag, its expiry, and the calls of the dialogs it
described. So a refresh or a removal is answered alike by every instance
(a tag that a refresh replaced gets 412, as RFC 3903 wants), a removal ends
the publication's calls whichever instance accepted them, and an expired
publication's calls are ended by the one instance that takes it from the
shared index. What an instance keeps in memory only sharpens what it
reports: per user an ``EntityWatch`` in publication mode (dialog versions).
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from gateway.model import Direction
from gateway.sources.sip.adapter import Request, Response
from gateway.sources.sip.coordination import Coordination
from gateway.sources.sip.dialog_delivery import SignalDelivery
from gateway.sources.sip.dialog_watch import EntityWatch, plain_call_id
from gateway.sources.sip.dialoginfo import DialogInfo, DialogInfoError, parse_dialog_info
from gateway.sources.sip.message_rules import make_response
from gateway.sources.sip.publish_rules import Decision, PublicationRules, PublishRequest, is_dialog_info
from gateway.tracker import CallTracker
from gateway.users.directory import Directory, User, normalise_aor

log = logging.getLogger("gateway.sip")

MAX_WATCHES = 10_000
SWEEP_BATCH = 500

# A dialog's call as recorded (JSON: [call id, "inbound" | "outbound"]).
RecordedCalls = dict[str, tuple[str, Direction]]


# Asked for every PUBLISH, with the few addresses a deployment's PBXes send from.
@functools.lru_cache(maxsize=1024)
def source_allowed(host: str, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    """Whether a packet's source address lies in one of the ``publish_from`` networks."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # A dual-stack socket shows IPv4 peers as ::ffff:a.b.c.d.
        address = address.ipv4_mapped
    return any(address in network for network in networks)


# One encoder: ``json.dumps`` with separators makes a new one on every call.
_compact = json.JSONEncoder(separators=(",", ":")).encode


def _record(etag: str, user_id: str, expires_ms: int, dialogs: dict[str, list[Any]]) -> str:
    return _compact({"etag": etag, "user": user_id, "expires_ms": expires_ms, "dialogs": dialogs})


def recorded_calls(record: dict[str, Any]) -> RecordedCalls:
    """The calls a publication record names, skipping entries that are not what we write."""
    calls: RecordedCalls = {}
    dialogs = record.get("dialogs")
    if not isinstance(dialogs, dict):
        return calls
    for dialog_id, entry in dialogs.items():
        if isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str):
            direction = Direction.OUTBOUND if entry[1] == Direction.OUTBOUND.value else Direction.INBOUND
            calls[str(dialog_id)] = (entry[0], direction)
    return calls


class PublishServer:
    def __init__(
        self,
        rules: PublicationRules,
        directory: Callable[[], Directory],
        tracker: CallTracker,
        default_region: str,
        coordination: Coordination,
    ) -> None:
        self.rules = rules
        self.directory = directory
        self.coordination = coordination
        self.delivery = SignalDelivery(tracker, coordination)
        self.default_region = default_region
        self._watches: OrderedDict[str, EntityWatch] = OrderedDict()

    def _user(self, request: Request) -> tuple[User, str] | None:
        directory = self.directory()
        for candidate in (request.uri, request.headers.get_first("to") or ""):
            user = directory.by_aor(candidate)
            aor = normalise_aor(candidate)
            if user is not None and aor is not None:
                return user, aor
        return None

    def _number_of(self, tenant: int, identity: str) -> str | None:
        """The number of the gateway user a remote identity names (a call between two users)."""
        return self.directory().number_of(identity, tenant)

    def _watch(self, user_id: str) -> EntityWatch:
        watch = self._watches.get(user_id)
        if watch is None:
            user = self.directory().by_id(user_id)
            watch = EntityWatch(
                user_id,
                "sip",
                self.default_region,
                mode="publication",
                local_number=user.own_number if user else None,
                known_number=functools.partial(self._number_of, user.tenant) if user else None,
            )
            self._watches[user_id] = watch
            while len(self._watches) > MAX_WATCHES:
                self._watches.popitem(last=False)
        self._watches.move_to_end(user_id)
        return watch

    async def on_publish(self, request: Request) -> tuple[Response, bool]:
        found = self._user(request)
        if found is None:
            log.info("sip PUBLISH for %s: no such user", request.uri[:200])
            return make_response(request, 404, "Not Found"), True
        user, entity = found
        now_ms = int(time.time() * 1000)
        content_type = request.headers.get_first("content-type")
        # Read before deciding: whether the document ends a dialog decides
        # whether a short interval is acceptable (publish_rules).
        info: DialogInfo | DialogInfoError | None = None
        if request.body.strip() and is_dialog_info(content_type):
            try:
                info = parse_dialog_info(request.body)
            except DialogInfoError as exc:
                info = exc
        if_match = request.headers.get_first("sip-if-match")
        decision = self.rules.decide(
            PublishRequest(
                entity=entity,
                event=request.headers.get_first("event"),
                content_type=content_type,
                body=request.body,
                sip_if_match=if_match,
                expires=request.headers.get_first("expires"),
                ends_dialog=isinstance(info, DialogInfo)
                and any(d.state == "terminated" for d in info.dialogs),
            ),
            now_ms,
            os.urandom(16),
        )
        if not decision.accepted:
            log.info("sip PUBLISH for %s refused %d: %s", entity, decision.status, decision.detail)
            return self._answer(request, decision)
        if decision.has_state and not isinstance(info, DialogInfo):
            log.warning("sip PUBLISH for %s refused: %s", entity, info or "no dialog-info body")
            return make_response(request, 400, "Bad dialog-info"), True
        publication_id = decision.publication_id or ""
        expected = None if decision.kind == "initial" else (if_match or "").strip()
        if decision.kind == "remove":
            held = await self.coordination.remove_publication(entity, publication_id, expected or "")
            if held is None:
                return self._stale(request, entity)
            await self._end(json.loads(held), now_ms)
            return self._answer(request, decision)
        watch = self._watch(user.id)
        expires_ms = now_ms + 1000 * (decision.expires or 0)
        etag = decision.etag or ""
        # What is known before applying: a dialog's call-id (pua_dialoginfo
        # always sends one). Stored first, so that a stale tag changes nothing.
        dialogs = _dialogs_before(info) if isinstance(info, DialogInfo) else {}
        record = _record(etag, user.id, expires_ms, dialogs)
        if not await self.coordination.save_publication(entity, publication_id, expected, record, expires_ms):
            return self._stale(request, entity)
        if isinstance(info, DialogInfo):
            await self.delivery.apply(watch, info, now_ms, entity)
            settled = _dialogs_after(watch, info, dialogs)
            if settled != dialogs:
                record = _record(etag, user.id, expires_ms, settled)
                await self.coordination.save_publication(entity, publication_id, etag, record, expires_ms)
        return self._answer(request, decision)

    @staticmethod
    def _answer(request: Request, decision: Decision) -> tuple[Response, bool]:
        return make_response(request, decision.status, decision.reason, extra=list(decision.headers)), True

    @staticmethod
    def _stale(request: Request, entity: str) -> tuple[Response, bool]:
        log.info("sip PUBLISH for %s refused 412: not the publication's current entity tag", entity)
        return make_response(request, 412, "Conditional Request Failed"), True

    async def _end(self, record: dict[str, Any], now_ms: int) -> None:
        """End the calls of a publication that was removed or expired."""
        user_id = record.get("user")
        calls = recorded_calls(record)
        if not isinstance(user_id, str) or not calls:
            return
        watch = self._watch(user_id)
        await self.delivery.deliver(watch, watch.withdraw_recorded(now_ms, calls))

    async def sweep(self, now_ms: int | None = None) -> None:
        """End the calls of publications expired (by ``now_ms``) without a refresh, each by one instance."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        for held in await self.coordination.take_expired_publications(now_ms, SWEEP_BATCH):
            record = json.loads(held)
            log.info("sip: a publication of %s expired without a refresh", record.get("user"))
            await self._end(record, now_ms)


def _dialogs_before(info: DialogInfo) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for dialog in info.dialogs:
        if dialog.call_id and dialog.state != "terminated":
            direction = Direction.OUTBOUND if dialog.direction == "initiator" else Direction.INBOUND
            out[dialog.id] = [plain_call_id(dialog.call_id), direction.value]
    return out


def _dialogs_after(
    watch: EntityWatch, info: DialogInfo, before: dict[str, list[Any]]
) -> dict[str, list[Any]]:
    """The dialogs as the watch settled them (ids made or agreed on for dialogs without a call-id)."""
    out = dict(before)
    for dialog in info.dialogs:
        call = watch.call_of(dialog.id)
        if call is not None:
            out[dialog.id] = [call[0], call[1].value]
    return out
