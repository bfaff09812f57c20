"""The running gateway: what the web layer serves from, and what has a life of its own.

``gateway.assemble`` makes one ``Gateway`` from the settings; the web layer
(``gateway.http``) reads it from the application's state. Sources are given
a ``SourceContext`` instead, which holds what they need and nothing of the web.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.auth.logins import LoginGuard
from gateway.auth.tokens import TokenSigner
from gateway.broker.base import Broker
from gateway.calllog.service import CallLogger
from gateway.config import Settings
from gateway.dial.service import DialService
from gateway.hubspot.service import HubSpotService
from gateway.ops.metrics import Metrics
from gateway.ops.status import StatusBoard
from gateway.recordings.service import RecordingService
from gateway.sources.webhooks.receiver import WebhookReceiver
from gateway.tracker import CallTracker
from gateway.users.directory import Directory

log = logging.getLogger("gateway")

ReadinessCheck = Callable[[], Awaitable[tuple[bool, str]]]
DirectoryListener = Callable[[Directory, Directory], Awaitable[None]]


class Component(Protocol):
    """Something with a life of its own: a SIP listener, a file watcher."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class Gateway:
    settings: Settings
    directory: Directory
    broker: Broker
    metrics: Metrics
    signer: TokenSigner
    tracker: CallTracker
    webhooks: WebhookReceiver
    dialling: DialService
    logins: LoginGuard = field(default_factory=LoginGuard)
    # Started in order when the application starts, stopped in reverse.
    components: list[Component] = field(default_factory=list)
    readiness: dict[str, ReadinessCheck] = field(default_factory=dict)
    directory_listeners: list[DirectoryListener] = field(default_factory=list)
    # The HubSpot app's connection, when [hubspot] is set (or the stand-in in dev mode).
    hubspot: HubSpotService | None = None
    # Path -> ASGI application served under it (the dev mode's stand-ins).
    mounts: dict[str, Any] = field(default_factory=dict)
    # Logs ended calls in HubSpot itself (docs/call-logging.md); None without
    # a [hubspot] table and a HubSpot client.
    call_logger: CallLogger | None = None
    # Recordings in HubSpot (gateway.recordings); None only in gateways built by hand.
    recordings: RecordingService | None = None
    # What this instance tells the operator page (/admin), by part: e.g. "sip".
    status_parts: dict[str, Callable[[], Any]] = field(default_factory=dict)
    # This instance's status record and everyone's (gateway.ops.status).
    status_board: StatusBoard | None = None

    def current_directory(self) -> Directory:
        return self.directory

    async def swap_directory(self, new: Directory) -> None:
        old, self.directory = self.directory, new
        for user in old:
            if new.by_id(user.id) is None:
                self.broker.close_user_streams(user.id)
        for listener in self.directory_listeners:
            try:
                await listener(old, new)
            except Exception:
                log.exception("directory listener failed")
