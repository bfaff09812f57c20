"""Telephony sources: each turns what it hears into model signals.

A source plugs into the gateway through an installer, a function that takes
the ``Gateway`` and adds to it what the source needs: HTTP routes
(``gw.routes``), long-running components (``gw.components``), readiness
checks (``gw.readiness``) and directory listeners. The generic ingest
endpoint is part of the core HTTP service and needs no installer.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.runtime import Gateway

# "module:function" of each source's installer, in start-up order.
INSTALLERS: list[str] = [
    "gateway.sources.sip.service:install",
    "gateway.sources.webhooks.routes:install",
]


def install_sources(gw: Gateway) -> None:
    for spec in INSTALLERS:
        module, _, name = spec.partition(":")
        installer: Callable[[Gateway], None] = getattr(import_module(module), name)
        installer(gw)
