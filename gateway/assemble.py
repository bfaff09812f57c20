"""Start-up: from the settings to the running gateway and its web application.

The one module that knows every part. Each source is imported here by
name and wired by plain code: what it needs goes in through a
``SourceContext``; what it brings (a component to start, a readiness check,
a reaction to a users-file reload) is added to the ``Gateway`` here.
"""

from __future__ import annotations

import logging
import secrets

from starlette.applications import Starlette

from gateway.auth.tokens import TokenSigner
from gateway.broker import Broker, make_broker
from gateway.config import Settings
from gateway.dial.demo import DemoDialler
from gateway.dial.routes import Routes
from gateway.dial.service import DialService
from gateway.dial.settings import dial_settings
from gateway.dial.sip import SipDialler
from gateway.dial.telnyx_route import TelnyxDialler
from gateway.dial.twilio_route import TwilioDialler
from gateway.dial.vonage_route import VonageDialler, load_private_key
from gateway.http.app import create_app
from gateway.http.webhooks import TELNYX_PATH, TWILIO_PATH, VONAGE_PATH
from gateway.ops.metrics import Metrics
from gateway.runtime import Gateway
from gateway.sources.context import SourceContext
from gateway.sources.sip.service import SipService
from gateway.sources.sip.settings import sip_settings
from gateway.sources.webhooks.receiver import WebhookReceiver
from gateway.tracker import CallTracker
from gateway.users.directory import Directory
from gateway.users.reload import DirectoryWatcher

log = logging.getLogger("gateway")


def build_gateway(
    settings: Settings, directory: Directory | None = None, broker: Broker | None = None
) -> Gateway:
    if directory is None:
        directory = Directory.load(settings.users_file, settings.default_region)
    broker = broker or make_broker(settings)
    metrics = Metrics()
    metrics.gauge(
        "gateway_streams_open", "Open SSE streams in this process", [], lambda: {(): broker.stream_count()}
    )
    secret = settings.secret
    if not secret:
        # One process on the embedded broker: tokens need not outlive it.
        secret = secrets.token_urlsafe(32)
        log.warning("GATEWAY_SECRET not set: session tokens will not survive a restart")
    tracker = CallTracker(broker, metrics)
    # Sources read the users through the gateway, which swaps them on a reload.
    context = SourceContext(settings, tracker, metrics, directory=lambda: gw.directory)
    gw = Gateway(
        settings=settings,
        directory=directory,
        broker=broker,
        metrics=metrics,
        signer=TokenSigner(secret),
        tracker=tracker,
        webhooks=WebhookReceiver(context),
        dialling=DialService(
            tracker, Routes(), dial_settings(settings.extra, settings.default_region, settings.dev), metrics
        ),
    )
    gw.components.append(
        DirectoryWatcher(
            settings.users_file,
            settings.default_region,
            settings.users_reload_seconds,
            current=gw.current_directory,
            swap=gw.swap_directory,
        )
    )
    sip = _add_sip(gw, context)
    _add_dial_routes(gw, sip)
    return gw


def _add_dial_routes(gw: Gateway, sip: SipService | None) -> None:
    """The dialling routes this gateway offers; tenants choose one in ``[dial.<portal>]``."""
    gw.components.append(gw.dialling)  # its stop drops the placed dials' deadlines
    if sip is not None:
        gw.dialling.routes.register(
            SipDialler(sip.click_to_dial, sip.settings.pbx, gw.tracker, gw.current_directory)
        )
    if gw.settings.dev:
        demo = DemoDialler(gw.tracker)
        gw.dialling.routes.register(demo)
        gw.components.append(demo)
    # Each CPaaS route when its credentials are set (load_settings checks
    # that what it also needs, its webhooks and GATEWAY_PUBLIC_URL, is set).
    settings = gw.settings
    timeout = settings.dial_api_timeout_seconds
    routes: list[TwilioDialler | TelnyxDialler | VonageDialler] = []
    if settings.twilio_account_sid:
        routes.append(
            TwilioDialler(
                settings.twilio_account_sid,
                settings.twilio_auth_token,
                settings.twilio_api_url,
                settings.public_url + TWILIO_PATH,
                gw.current_directory,
                timeout,
            )
        )
    if settings.telnyx_api_key:
        telnyx = TelnyxDialler(
            settings.telnyx_api_key,
            settings.telnyx_connection_id,
            settings.telnyx_api_url,
            settings.public_url + TELNYX_PATH,
            gw.current_directory,
            gw.tracker,
            timeout,
        )
        gw.webhooks.on_user_answered("telnyx", telnyx.connect)
        routes.append(telnyx)
    if settings.vonage_application_id and settings.vonage_private_key_file:
        routes.append(
            VonageDialler(
                settings.vonage_application_id,
                load_private_key(settings.vonage_private_key_file),
                settings.vonage_api_url,
                settings.public_url + VONAGE_PATH,
                gw.current_directory,
                timeout,
            )
        )
    for route in routes:
        gw.dialling.routes.register(route)
        gw.components.append(route)


def _add_sip(gw: Gateway, context: SourceContext) -> SipService | None:
    """SIP is on when the settings file has a ``[sip]`` table with ``listen``."""
    settings = sip_settings(gw.settings.extra)
    if settings is None:
        return None
    service = SipService(context, settings)
    gw.components.append(service)
    gw.readiness["sip"] = service.readiness
    gw.directory_listeners.append(service.on_directory)
    gw.metrics.gauge(
        "gateway_sip_subscription_up",
        "1 while a user's dialog subscription is active, else 0",
        ["user", "aor", "tenant"],
        service.subscriber.health,
    )
    return service


def build_app(settings: Settings, gw: Gateway | None = None) -> Starlette:
    """The web application serving ``gw`` (by default a gateway built from ``settings``)."""
    return create_app(settings, gw or build_gateway(settings))
