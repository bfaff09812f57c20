"""The two PBX kinds as the shared connection tests see them (tests/sources/test_pbx_connection.py).

A ``PbxKind`` gives what differs between AMI and the event socket for a
behaviour both connections have: its stand-in, the scripts of a call, its
words for a login and a refused one, the bytes that break its framing.
What a test does with them, and what it asserts, is the same for both.
"""

from __future__ import annotations

import abc
from typing import Any, Generic, TypeVar

from tests.support import ami_calls, esl_calls
from tests.support.fake_ami import FakeAmi, Fields
from tests.support.fake_esl import FakeEsl, Headers

Script = list[Fields] | list[Headers]
PbxT = TypeVar("PbxT", FakeAmi, FakeEsl)


class PbxKind(abc.ABC, Generic[PbxT]):
    name: str  # the source, in metrics and settings
    caller: str  # the number the scripts' inbound calls come from
    logger: str
    # The ERROR line of a refused login (a regular expression).
    refused: str
    # Bytes that are two malformed messages (a block that is not the
    # protocol's, an event without what it needs), then nothing pending.
    garbage: bytes
    # Bytes past the framing's limits: the connection cannot go on.
    oversized: bytes
    secret: str  # the setting that holds the tenant's secret
    # The settings under which the secret itself crosses the wire.
    plain: dict[str, Any]

    def __repr__(self) -> str:
        return self.name

    @abc.abstractmethod
    def stand_in(self) -> PbxT: ...

    @abc.abstractmethod
    def answered(self) -> Script:
        """Alice's inbound call, answered and hung up: its last two events end it."""

    @abc.abstractmethod
    def busy(self) -> Script:
        """An inbound call to alice that ends busy (``callEnded:BUSY``)."""

    @abc.abstractmethod
    def busy_after_ringing(self) -> tuple[Script, Script]:
        """``busy()`` in two: until alice's phone rings, the rest."""

    @abc.abstractmethod
    def cancelled(self) -> Script:
        """An inbound call to alice the caller gives up (``callEnded:MISSED``)."""

    @abc.abstractmethod
    def secrets_sent(self, pbx: PbxT) -> list[str]:
        """The secrets the gateway gave the stand-in."""


class Ami(PbxKind[FakeAmi]):
    name = "ami"
    caller = ami_calls.CALLER
    logger = "gateway.ami"
    refused = "refused the login of 'hubspot': Authentication failed"
    garbage = b"this is not ami\r\n\x00\xff\r\n\r\nEvent: Newchannel\r\nLinkedid: a b\r\n\r\n"
    oversized = b"Event: " + b"x" * 100_000
    secret = "secret"
    plain = {"auth": "plain"}

    def stand_in(self) -> FakeAmi:
        return FakeAmi()

    def answered(self) -> Script:
        return ami_calls.inbound_answered()

    def busy(self) -> Script:
        return ami_calls.inbound_unanswered("BUSY", "17")

    def busy_after_ringing(self) -> tuple[Script, Script]:
        script = self.busy()
        return script[:-3], script[-3:]

    def cancelled(self) -> Script:
        return ami_calls.inbound_unanswered("CANCEL", "16")

    def secrets_sent(self, pbx: FakeAmi) -> list[str]:
        return [a["Secret"] for a in pbx.actions if a.get("Action") == "Login" and "Secret" in a]


class Esl(PbxKind[FakeEsl]):
    name = "esl"
    caller = esl_calls.CALLER
    logger = "gateway.esl"
    refused = r"refused the password \(-ERR invalid\)"
    garbage = b"not esl at all\n\nContent-Type: text/event-plain\nContent-Length: 9\n\nno: name\n"
    oversized = b"X: " + b"y" * 100_000
    secret = "password"
    plain: dict[str, Any] = {}

    def stand_in(self) -> FakeEsl:
        return FakeEsl()

    def answered(self) -> Script:
        return esl_calls.inbound_answered()

    def busy(self) -> Script:
        return esl_calls.inbound_unanswered("USER_BUSY")

    def busy_after_ringing(self) -> tuple[Script, Script]:
        script = self.busy()
        return script[:-2], script[-2:]

    def cancelled(self) -> Script:
        return esl_calls.inbound_unanswered("ORIGINATOR_CANCEL")

    def secrets_sent(self, pbx: FakeEsl) -> list[str]:
        return [line.removeprefix("auth ") for line in pbx.commands if line.startswith("auth ")]


KINDS: list[PbxKind[Any]] = [Ami(), Esl()]
