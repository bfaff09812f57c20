"""The PUBLISH receiver (RFC 3903, ``Event: dialog``), as Kamailio/OpenSIPS ``pua_dialoginfo`` send it.

Any instance may receive any PUBLISH: entity tags validate themselves
(``publish_rules.PublicationRules``) and the call model lives in the broker.
What an instance keeps in memory is a cache that only sharpens what it
reports: per user an ``EntityWatch`` in publication mode (dialog versions),
and per publication the dialogs it described, so that a removal ends them,
and so does an expiry with the embedded memory broker (a single instance;
with Redis the refresh may have gone to another instance). A removal that
reaches an instance which never saw the publication's body ends nothing
there; the PBX's own ``terminated`` document (which pua_dialoginfo always
sends) still ends the call.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.sources.sip.adapter import Request, Response
from gateway.sources.sip.dialog_delivery import SignalDelivery
from gateway.sources.sip.dialog_watch import EntityWatch
from gateway.sources.sip.dialoginfo import DialogInfo, DialogInfoError, parse_dialog_info
from gateway.sources.sip.message_rules import make_response
from gateway.sources.sip.publish_rules import PublicationRules, PublishRequest, is_dialog_info
from gateway.tracker import CallTracker
from gateway.users.directory import Directory, User, normalise_aor

log = logging.getLogger("gateway.sip")

MAX_PUBLICATIONS = 10_000
MAX_WATCHES = 10_000


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


@dataclass
class _Publication:
    user_id: str
    expires_at: float
    dialog_ids: set[str] = field(default_factory=set)


class PublishServer:
    def __init__(
        self,
        rules: PublicationRules,
        directory: Callable[[], Directory],
        tracker: CallTracker,
        default_region: str,
        *,
        end_on_expiry: bool = True,
    ) -> None:
        self.rules = rules
        # Only a single instance (the embedded memory broker) knows that a
        # publication was not refreshed: with several behind a balancer the
        # refresh may have reached another one, and ending the calls here would
        # end live calls. There the PBX's terminated documents and the call
        # model's TTL end them instead.
        self.end_on_expiry = end_on_expiry
        self.directory = directory
        self.delivery = SignalDelivery(tracker)
        self.default_region = default_region
        self._watches: OrderedDict[str, EntityWatch] = OrderedDict()
        self._publications: OrderedDict[str, _Publication] = OrderedDict()

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

    def _watch(self, user: User) -> EntityWatch:
        watch = self._watches.get(user.id)
        if watch is None:
            watch = EntityWatch(
                user.id,
                "sip",
                self.default_region,
                mode="publication",
                local_number=user.own_number,
                known_number=functools.partial(self._number_of, user.tenant),
            )
            self._watches[user.id] = watch
            while len(self._watches) > MAX_WATCHES:
                self._watches.popitem(last=False)
        self._watches.move_to_end(user.id)
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
        decision = self.rules.decide(
            PublishRequest(
                entity=entity,
                event=request.headers.get_first("event"),
                content_type=content_type,
                body=request.body,
                sip_if_match=request.headers.get_first("sip-if-match"),
                expires=request.headers.get_first("expires"),
                ends_dialog=isinstance(info, DialogInfo)
                and any(d.state == "terminated" for d in info.dialogs),
            ),
            now_ms,
            os.urandom(16),
        )
        if not decision.accepted:
            log.info("sip PUBLISH for %s refused %d: %s", entity, decision.status, decision.detail)
            return make_response(
                request, decision.status, decision.reason, extra=list(decision.headers)
            ), True
        watch = self._watch(user)
        publication_id = decision.publication_id or ""
        if decision.has_state:
            if not isinstance(info, DialogInfo):
                log.warning("sip PUBLISH for %s refused: %s", entity, info or "no dialog-info body")
                return make_response(request, 400, "Bad dialog-info"), True
            await self.delivery.apply(watch, info, now_ms)
            self._remember(publication_id, user.id, decision.expires or 0).dialog_ids.update(
                d.id for d in info.dialogs
            )
        elif decision.kind == "refresh":
            self._remember(publication_id, user.id, decision.expires or 0)
        elif decision.kind == "remove":
            publication = self._publications.pop(publication_id, None)
            if publication is not None:
                await self.delivery.withdraw(watch, now_ms, publication.dialog_ids)
        return make_response(request, decision.status, decision.reason, extra=list(decision.headers)), True

    def _remember(self, publication_id: str, user_id: str, expires: int) -> _Publication:
        publication = self._publications.get(publication_id)
        if publication is None:
            publication = _Publication(user_id, 0.0)
            self._publications[publication_id] = publication
            while len(self._publications) > MAX_PUBLICATIONS:
                self._publications.popitem(last=False)
        publication.expires_at = time.monotonic() + expires
        return publication

    async def sweep(self) -> None:
        """End the dialogs of publications that expired without a refresh."""
        now = time.monotonic()
        now_ms = int(time.time() * 1000)
        for publication_id, publication in list(self._publications.items()):
            if publication.expires_at > now:
                continue
            del self._publications[publication_id]
            watch = self._watches.get(publication.user_id)
            if watch is not None and self.end_on_expiry:
                await self.delivery.withdraw(watch, now_ms, publication.dialog_ids)
