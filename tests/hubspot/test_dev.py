"""``./dev run``: the gateway serves the HubSpot stand-in and has its demo portal connected."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from gateway.assemble import build_app, build_gateway
from gateway.http.server import server_config
from gateway.hubspot.crm import CONTACT
from gateway.standin.dev import DEMO_CALLER, DEMO_PORTAL, MOUNT
from tests.support.harness import make_settings, signal
from tests.support.hubspot import dev_gateway, page_once_logged
from tests.support.servers import free_port, serve


async def test_the_dev_gateway_logs_calls_in_its_own_stand_in(tmp_path: Path) -> None:
    port = free_port()  # the stand-in's address is the gateway's own: known before start
    settings = replace(make_settings(tmp_path), dev=True, port=port)
    gw = build_gateway(settings)
    config = server_config(
        build_app(settings, gw), settings, host="127.0.0.1", port=port, log_level="warning"
    )
    async with serve(config):
        service = gw.hubspot
        assert service is not None
        [status] = service.connections.statuses()
        assert (status.portal_id, status.state) == (DEMO_PORTAL, "connected")
        [record] = await service.crm.find_records_by_phone(DEMO_PORTAL, DEMO_CALLER)
        assert record.object_type_id == CONTACT
        engagement = await service.crm.create_call(
            DEMO_PORTAL, {"hs_timestamp": "2026-12-02T10:00:00Z", "hs_call_title": "Demo call"}, [record]
        )
        page = await service.http.get(f"http://127.0.0.1:{port}/dev/hubspot/")
        assert f"call {engagement}" in page.text and "Dana Caller" in page.text


async def test_the_dev_page_shows_a_call_logged_with_no_widget_its_path_properties_and_record(
    tmp_path: Path,
) -> None:
    async with dev_gateway(tmp_path) as (client, clock):
        call = [
            signal("d1", "ringing", **{"from": DEMO_CALLER}),
            signal("d1", "answered"),
            signal("d1", "ended"),
        ]
        assert (await client.ingest({"signals": call})).status_code == 202
        page = await page_once_logged(client, clock, "logged by: gateway")
    assert "attached to: contact" in page and "Dana Caller" in page
    for shown in (
        "<td>hs_call_external_id</td><td>ingest:d1</td>",
        "<td>hs_call_from_number</td><td>+15555550123</td>",
        "<td>hs_call_direction</td><td>INBOUND</td>",
        "<td>hs_call_status</td><td>COMPLETED</td>",
        "<td>hs_call_source</td><td>INTEGRATIONS_PLATFORM</td>",
    ):
        assert shown in page


async def test_the_dev_page_shows_a_call_the_widget_logged_and_the_gateway_completed(
    tmp_path: Path,
) -> None:
    async with dev_gateway(tmp_path) as (client, clock):
        assert (await client.ingest({"signals": [signal("d2", "ringing")]})).status_code == 202
        # What the simulator does for the widget's incomingCall, as HubSpot would.
        made = await client.http.post(
            MOUNT + "/sdk/engagements", json={"externalCallId": "ingest:d2", "portalId": DEMO_PORTAL}
        )
        assert made.status_code == 201
        engagement = made.json()["engagementId"]
        token = await client.login("alice")
        reported = await client.http.post(
            "/api/calls/ingest:d2/engagement",
            json={"engagementId": engagement},
            headers={"authorization": f"Bearer {token}"},
        )
        assert reported.status_code == 200, reported.text
        assert (await client.ingest({"signals": [signal("d2", "ended")]})).status_code == 202
        page = await page_once_logged(client, clock, "updated by the gateway")
    assert f"call {engagement} (portal {DEMO_PORTAL})" in page
    assert "logged by: widget (created by HubSpot for the calling widget), updated by the gateway" in page
    assert "<td>hs_call_external_id</td><td>ingest:d2</td>" in page
