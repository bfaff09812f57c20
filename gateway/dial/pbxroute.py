"""What the PBX dialling routes (``ami_route``, ``esl_route``) share: one dial on the tenant's connection.

``PbxDialler.place``: the tenant's connection, the user's extension, the
protocol's request on it, its refusals; the result, later, ends a dial the
user's phone did not take. Each route says how its protocol asks and answers.
"""

from __future__ import annotations

import abc
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import ClassVar, Generic, Protocol, TypeVar

import phonenumbers

from gateway.dial.cpaas import TARGET_RING_SECONDS
from gateway.dial.routes import DialPlan, DialRefused, Placed, Refusal, no_phone
from gateway.model import EndStatus, Phase
from gateway.sources.pbxlink import NotConnected
from gateway.tracker import BrokerUnavailable, CallTracker
from gateway.users.directory import Directory, User


class _Settings(Protocol):
    @property
    def ring_seconds(self) -> float: ...


class _Link(Protocol):
    @property
    def pbx(self) -> _Settings: ...

    def give_up(self, dial_id: str) -> None: ...


LinkT = TypeVar("LinkT", bound=_Link)
RequestT = TypeVar("RequestT")
ResultT = TypeVar("ResultT")
AnswerT = TypeVar("AnswerT")


def dialled_as(number: str, form: str) -> str:
    """The target as the dialplan expects it: ``e164`` (+12125550100), ``digits`` (12125550100), national."""
    if form == "digits":
        return number.removeprefix("+")
    if form == "national":
        parsed = phonenumbers.parse(number)
        national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
        return "".join(c for c in national if c.isdigit())
    return number


NO_EXTENSION = (
    "you have no extension on the PBX for the gateway to ring first; "
    "ask your administrator to add your phone's SIP address to your user"
)


def user_extension(directory: Directory, plan: DialPlan) -> str:
    user = directory.by_id(plan.user_id)
    extension = user.pbx_extension if user else None
    if extension is None:
        raise DialRefused(no_phone(NO_EXTENSION))
    return extension


class PbxDialler(abc.ABC, Generic[LinkT, RequestT, ResultT, AnswerT]):
    """A route through the tenant's PBX connection; subclasses give the protocol's parts."""

    name: ClassVar[str]
    match_seconds = 0.0  # the call's own id names the dial
    chooses_caller_id = True  # the originate sets it
    # Without one the dialplan gives the call its own (the outbound route's, the trunk's).
    needs_caller_id = False
    link: ClassVar[str]  # what is configured per tenant, for a refusal: "an AMI connection"
    peer: ClassVar[str]  # who refuses, in a refusal: "the PBX"
    log: ClassVar[logging.Logger]

    def __init__(
        self,
        connections: Mapping[int, LinkT],
        tracker: CallTracker,
        directory: Callable[[], Directory],
        accept_seconds: float,
    ) -> None:
        self.connections = connections
        self.tracker = tracker
        self.directory = directory
        # How long the PBX may take to accept a dial (GATEWAY_DIAL_API_TIMEOUT_SECONDS).
        self.accept_seconds = accept_seconds

    @property
    def ring_seconds(self) -> float:
        longest = max((c.pbx.ring_seconds for c in self.connections.values()), default=30.0)
        return longest + TARGET_RING_SECONDS

    @abc.abstractmethod
    def request(self, plan: DialPlan, extension: str, connection: LinkT) -> tuple[RequestT, str]:
        """The protocol's request for the dial and the reference it gets."""

    @abc.abstractmethod
    async def send(
        self, connection: LinkT, request: RequestT, on_result: Callable[[ResultT], Awaitable[None]]
    ) -> AnswerT: ...

    @abc.abstractmethod
    def refused(self, answer: AnswerT) -> str | None:
        """Why the PBX refused the request (None: it took it)."""

    @abc.abstractmethod
    async def result(self, plan: DialPlan, result: ResultT) -> None:
        """The request's result: ``end`` the dial when the user's phone did not take it."""

    def unconfigured(self, tenant: int) -> Refusal:
        return Refusal(409, "route-unavailable", f"no {self.link} is configured for HubSpot portal {tenant}")

    def refusal_for(self, user: User) -> Refusal | None:
        if user.tenant not in self.connections:
            return self.unconfigured(user.tenant)
        return no_phone(NO_EXTENSION) if user.pbx_extension is None else None

    async def place(self, plan: DialPlan) -> Placed:
        connection = self.connections.get(plan.tenant)
        if connection is None:
            raise DialRefused(self.unconfigured(plan.tenant))
        request, reference = self.request(plan, user_extension(self.directory(), plan), connection)

        async def on_result(result: ResultT) -> None:
            await self.result(plan, result)

        try:
            answer = await self.send(connection, request, on_result)
        except NotConnected:
            raise DialRefused.by_route(f"{self.peer} is not connected right now", status=503) from None
        except TimeoutError:
            # The PBX may still place it: the user was told it failed, so that call is hung up.
            connection.give_up(plan.call_id)
            raise DialRefused.by_route(f"{self.peer} did not accept the call in time", status=504) from None
        reason = self.refused(answer)
        if reason is not None:
            raise DialRefused.by_route(f"{self.peer} refused the call ({reason})")
        return Placed(reference=reference)

    async def end(self, plan: DialPlan, status: EndStatus) -> None:
        try:
            await self.tracker.end_unanswered(plan.signal(Phase.ENDED, int(time.time() * 1000), status))
        except BrokerUnavailable as exc:
            self.log.warning(
                "%s dial %s: not ended now (%s); its deadline will", self.name, plan.call_key, exc
            )

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None
