"""The SIP click-to-dial rig: a gateway dialling through Debian's Kamailio, sipp as the phones.

``kamailio_gateway`` starts a gateway whose tenant 100 dials by REFER
through Kamailio (``tests/sip/kamailio/click_to_dial.cfg``: it challenges
the gateway's INVITE, routes extension 1001 to the user's phone and
numbers to the callee, and PUBLISHes every dialog to the gateway);
``kamailio_gateways`` two of them on one Redis, the one that dials not
the one Kamailio PUBLISHes to.
``phones`` plays the user's phone and the callee with sipp scenarios from
``tests/sip/sipp/``; ``reasonless_end`` is the dialog-event signal the
click-to-dial hold is about. Used by tests/sip/test_click_to_dial_kamailio.py
(through the API) and tests/browser/test_dial_sip.py (through the simulator).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from gateway.config import Settings
from gateway.model import Direction, Phase, Signal
from tests.support.harness import Client, make_settings, running_gateway
from tests.support.kamailio import Kamailio, Sipp
from tests.support.servers import free_port
from tests.support.sipkit import sip_address, sip_table

PASSWORD = "gateway-password"


def _kamailio(tmp_path: Path, defines: dict[str, str] | None = None) -> Kamailio:
    """Kamailio between the gateway and two sipp ports (the phone's, the callee's)."""
    phone = ("127.0.0.1", free_port(socket.SOCK_DGRAM))
    callee = ("127.0.0.1", free_port(socket.SOCK_DGRAM))
    return Kamailio(
        tmp_path,
        "click_to_dial",
        callee=callee,
        defines={"PHONE": f"sip:{phone[0]}:{phone[1]}", "PASSWORD": PASSWORD, **(defines or {})},
    )


def _settings(tmp_path: Path, kamailio: Kamailio, password: str, **overrides: Any) -> Settings:
    pbx = {
        "address": "{}:{}".format(*kamailio.address),
        "domain": "pbx.test",
        "username": "gateway",
        "password": password,
        "ring_seconds": 2,
    }
    # Dialog events come by PUBLISH here; the subscriptions Kamailio refuses retry slowly.
    table = {
        **sip_table(publish_from=["127.0.0.1"]),
        "retry_min_seconds": 30,
        "retry_max_seconds": 60,
        # RFC 3261's own T1: a loaded machine may keep sipp from answering the
        # REFER within the 3.2 s that the other SIP tests' short T1 allows.
        "t1_seconds": 0.5,
        "pbx": {"100": pbx},
    }
    extra: dict[str, Any] = {"sip": table, "dial": {"100": {"route": "sip"}}}
    return make_settings(tmp_path, extra=extra, **overrides)


@contextlib.asynccontextmanager
async def kamailio_gateway(
    tmp_path: Path, *, password: str = PASSWORD
) -> AsyncIterator[tuple[Client, Kamailio]]:
    """One gateway (embedded broker) dialling through Kamailio, which PUBLISHes to it."""
    kamailio = _kamailio(tmp_path)
    async with running_gateway(_settings(tmp_path, kamailio, password)) as gw:
        kamailio.gateway = sip_address(gw, "udp")
        async with kamailio:
            yield gw, kamailio


@contextlib.asynccontextmanager
async def kamailio_gateways(tmp_path: Path, redis_url: str) -> AsyncIterator[tuple[Client, Client, Kamailio]]:
    """Two gateways on one Redis: the first dials (its REFERs, its NOTIFYs), Kamailio PUBLISHes to the second.

    Kamailio holds the phone's final sipfrag half a second, so that the
    PUBLISH of the call's end is at the second gateway well before the
    first one knows why the call ended.
    """
    kamailio = _kamailio(tmp_path, {"SIPFRAG_DELAY_MS": "500"})
    settings = _settings(tmp_path, kamailio, PASSWORD, redis_url=redis_url)
    async with running_gateway(settings) as referring, running_gateway(settings) as publishing:
        kamailio.gateway = sip_address(publishing, "udp")
        async with kamailio:
            yield referring, publishing, kamailio


@contextlib.asynccontextmanager
async def phones(tmp_path: Path, kamailio: Kamailio, phone: str, callee: str | None) -> AsyncIterator[None]:
    """The user's phone and the callee listening; on leaving, both played their scenario to the end."""
    phone_port = int(kamailio.defines["PHONE"].rsplit(":", 1)[1])
    players = [Sipp(tmp_path, phone, phone_port)]
    if callee is not None:
        players.append(Sipp(tmp_path, callee, kamailio.callee[1]))
    try:
        for player in players:
            await player.start()
            await player.listening()
        yield
        for player in players:
            await player.finished()
    finally:
        for player in players:
            await player.stop()


def reasonless_end(**changes: object) -> Signal:
    """The end of alice's outbound call to +12125550100 as dialog events report it: no status, no code."""
    fields: dict[str, object] = {
        "source": "sip",
        "call_id": "c-1@pbx.test",
        "user_id": "alice",
        "direction": Direction.OUTBOUND,
        "phase": Phase.ENDED,
        "at_ms": 1_700_000_000_000,
        "from_number": "+15555550101",
        "to_number": "+12125550100",
        **changes,
    }
    return Signal(**fields)  # type: ignore[arg-type]
