"""A user without the phone their route rings first: one reason on every route, and no call made.

The CPaaS routes ring the user's number, the PBX routes their extension
(through the AMI and ESL stand-ins; tests/sip/test_click_to_dial_kamailio.py
has the SIP route's AOR, through Kamailio). Whichever is missing, the user
reads what to ask for, the refusal is counted as ``no-phone``, and nothing
was created, counted against the rate, or sent to the telephony. The
same for a portal whose PBX link is not configured (``route-unavailable``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.broker.memory import MemoryBroker
from gateway.dial.ami_route import AmiDialler
from gateway.dial.routes import Dialler, DialRefused, Refusal, Routes
from gateway.dial.service import DialService
from gateway.dial.settings import DialSettings, TenantDial
from gateway.dial.twilio_route import TwilioDialler
from gateway.ops.metrics import Metrics
from gateway.tracker import CallTracker
from gateway.users.directory import Directory, User
from tests.support import harness
from tests.support.fake_ami import FakeAmi
from tests.support.fake_esl import FakeEsl
from tests.support.harness import make_settings, signal
from tests.support.pbx_rig import TARGET, rig
from tests.support.servers import write_users

NO_EXTENSION = (
    "you have no extension on the PBX for the gateway to ring first; "
    "ask your administrator to add your phone's SIP address to your user"
)


async def refused(
    tmp_path: Path, user: User, route: Callable[[CallTracker, Directory], Dialler]
) -> tuple[str, Refusal]:
    """Dial as ``user`` through ``route``, which must refuse: the metrics after, and the refusal."""
    metrics = Metrics()
    tracker = CallTracker(MemoryBroker(make_settings(tmp_path)), metrics)
    dialler = route(tracker, Directory([user]))
    routes = Routes()
    routes.register(dialler)
    service = DialService(tracker, routes, DialSettings({100: TenantDial(dialler.name)}), metrics)
    with pytest.raises(DialRefused) as refusal:
        await service.dial(user, TARGET)
    return metrics.render().decode(), refusal.value.refusal


async def test_a_cpaas_user_without_a_number_is_refused_no_phone_before_any_call(tmp_path: Path) -> None:
    carol = User("carol", "carol", 100, "x", aors=("sip:1003@pbx.test",))
    # Never asked: its API address is a closed port.
    rendered, refusal = await refused(
        tmp_path,
        carol,
        lambda tracker, directory: TwilioDialler(
            "AC1", "token", "http://127.0.0.1:9", "", lambda: directory, 5.0
        ),
    )
    assert (refusal.status, refusal.reason, refusal.message) == (
        409,
        "no-phone",
        "you have no phone number of your own for the gateway to ring first; "
        "ask your administrator to add your mobile number to your user",
    )
    assert 'gateway_dials_total{outcome="no-phone",route="twilio"} 1.0' in rendered
    # Refused before the call existed: no dialled call ended FAILED.
    assert "gateway_dial_ends_total{" not in rendered


async def test_a_portal_without_its_pbx_link_is_refused_route_unavailable_before_any_call(
    tmp_path: Path,
) -> None:
    alice = User("alice", "alice", 100, "x", aors=("sip:1001@pbx.test",), numbers=("+15555550101",))
    rendered, refusal = await refused(
        tmp_path, alice, lambda tracker, directory: AmiDialler({}, tracker, lambda: directory, 5.0)
    )
    assert (refusal.status, refusal.reason, refusal.message) == (
        409,
        "route-unavailable",
        "no AMI connection is configured for HubSpot portal 100",
    )
    assert "gateway_dial_ends_total{" not in rendered


@pytest.mark.parametrize("route", ["ami", "esl"])
async def test_a_pbx_user_without_an_extension_is_refused_no_phone_and_nothing_reaches_the_pbx(
    tmp_path: Path, route: str
) -> None:
    alice = {**harness.test_users()[0], "aors": ["sip:alice@pbx.test"]}
    write_users(tmp_path / "users.json", [alice, *harness.test_users()[1:]])
    pbx = FakeAmi() if route == "ami" else FakeEsl()
    async with rig(tmp_path, pbx, dial=True) as r:
        response = await r.dial()
        marked = await r.gw.ingest(signal("marker", "ringing", **{"from": "+15555550177"}))
        assert marked.status_code < 300, marked.text
        first = (await r.stream.next(timeout=30)).json
    assert (response.status_code, response.json()["error"]) == (409, NO_EXTENSION)
    # No call of the dial came before the marker, and no originate was sent.
    assert first["type"] == "incomingCall" and first["payload"]["fromNumber"] == "+15555550177", first
    sent = pbx.actions if isinstance(pbx, FakeAmi) else pbx.commands
    assert not [s for s in sent if "riginate" in str(s)]
