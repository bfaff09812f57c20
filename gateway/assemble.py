"""Start-up: from the settings to the running gateway and its web application.

The one module that knows every part. Each source is imported here by
name and wired by plain code: what it needs goes in through a
``SourceContext``; what it brings (a component to start, a readiness check,
a reaction to a users-file reload) is added to the ``Gateway`` here.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

from starlette.applications import Starlette

from gateway.auth.logins import LoginGuard
from gateway.auth.tokens import TokenSigner
from gateway.broker import Broker, make_broker
from gateway.broker.coordination import LocalCoordination
from gateway.broker.redis_coordination import RedisCoordination
from gateway.calllog.service import CallLogger, make_store
from gateway.calllog.settings import CallLogSettings, calllog_settings
from gateway.config import Settings
from gateway.dial.ami_route import AmiDialler
from gateway.dial.demo import DemoDialler
from gateway.dial.esl_route import EslDialler
from gateway.dial.routes import Routes
from gateway.dial.service import DialService
from gateway.dial.settings import dial_settings
from gateway.dial.sip import SipDialler
from gateway.dial.telnyx_route import TelnyxDialler
from gateway.dial.twilio_route import TwilioDialler
from gateway.dial.vonage_route import VonageDialler, load_private_key
from gateway.http import admin
from gateway.http.app import create_app
from gateway.http.webhooks import TELNYX_PATH, TWILIO_PATH, VONAGE_PATH
from gateway.hubspot.cipher import TokenCipher
from gateway.hubspot.crm import CallRecords
from gateway.hubspot.ratelimit import Pacer
from gateway.hubspot.redis_pacer import RedisPacer
from gateway.hubspot.redis_store import RedisTokenStore
from gateway.hubspot.service import HubSpotService
from gateway.hubspot.settings import hubspot_settings
from gateway.hubspot.store import FileTokenStore, TokenStore
from gateway.ops.metrics import Metrics
from gateway.ops.status import StatusBoard
from gateway.outbox.redis import RedisStore
from gateway.outbox.store import JobStore
from gateway.recordings.announce import DirectAnnouncer
from gateway.recordings.links import LinkSigner
from gateway.recordings.media import MediaFetcher, ProviderAccess
from gateway.recordings.service import RecordingService
from gateway.recordings.settings import recording_settings
from gateway.recordings.store import RecordingStore
from gateway.runtime import Gateway
from gateway.sources.ami.client import AmiConnection
from gateway.sources.ami.settings import ami_settings
from gateway.sources.context import SourceContext
from gateway.sources.esl.client import EslConnection
from gateway.sources.esl.settings import esl_settings
from gateway.sources.pbxowner import DEFAULT_HEARTBEAT_SECONDS, DEFAULT_TTL_SECONDS, PbxOwner
from gateway.sources.sip.coordination import Coordination
from gateway.sources.sip.service import SipService
from gateway.sources.sip.settings import sip_settings
from gateway.sources.webhooks.receiver import WebhookReceiver
from gateway.standin import dev as dev_standin
from gateway.tracker import CallTracker
from gateway.users.directory import Directory
from gateway.users.reload import DirectoryWatcher

log = logging.getLogger("gateway")


def build_gateway(
    settings: Settings,
    directory: Directory | None = None,
    broker: Broker | None = None,
    call_records: CallRecords | None = None,
) -> Gateway:
    """The running parts. ``call_records`` is HubSpot's CRM as the call logger needs it
    (the HubSpot client; a test's stand-in): with a ``[hubspot]`` table, ended calls are
    logged through it."""
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
            tracker,
            Routes(),
            dial_settings(settings.extra, settings.default_region, settings.dev),
            metrics,
            deadlines=dial_deadlines(settings),
        ),
        logins=LoginGuard(broker.login_throttle()),
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
    # Several instances on one Redis share the AORs, the PUBLISH state and
    # the PBX connections through one set of leases (docs/scaling.md).
    # Only a gateway with SIP or PBX tables shares anything through them.
    extra, redis_url = gw.settings.extra, gw.settings.redis_url
    sharing = bool(sip_settings(extra) or ami_settings(extra) or esl_settings(extra))
    coordination = (
        RedisCoordination(redis_url, gw.settings.key_prefix) if redis_url and sharing else LocalCoordination()
    )
    sip = _add_sip(gw, context, coordination)
    pbx = _add_pbx(gw, context, coordination, sip)
    _add_dial_routes(gw, sip)
    _add_hubspot(gw)
    # The call logger and the recordings write through the gateway's own
    # HubSpot client unless given another.
    records = call_records or (gw.hubspot.crm if gw.hubspot is not None else None)
    _add_call_logging(gw, records)
    _add_pbx_dial_routes(gw, pbx)
    _add_recordings(gw, secret, records)
    _add_status(gw)
    return gw


def dial_deadlines(settings: Settings) -> JobStore | None:
    """On Redis, placed dials' deadlines are jobs every instance shares (docs/dialling.md)."""
    if not settings.redis_url:
        return None
    return RedisStore(settings.redis_url, f"{settings.key_prefix}:dial", done_seconds=3600)


def _add_status(gw: Gateway) -> None:
    """This instance's status record for the operator page (docs/operations.md#the-operator-page)."""
    gw.status_board = StatusBoard(
        lambda: admin.local_status(gw),
        lambda: admin.metric_totals(gw.metrics),
        gw.settings.redis_url,
        gw.settings.key_prefix,
    )
    gw.components.append(gw.status_board)


def hubspot_secrets(settings: Settings) -> dict[str, str]:
    return {
        "client_secret": settings.hubspot_client_secret,
        "token_key": settings.hubspot_token_key,
        "developer_api_key": settings.hubspot_developer_api_key,
    }


def hubspot_token_store(settings: Settings, key: str, tokens_file: Path) -> TokenStore:
    cipher = TokenCipher(key)
    if settings.redis_url:
        return RedisTokenStore(settings.redis_url, settings.key_prefix, cipher)
    return FileTokenStore(tokens_file, cipher)


def _add_hubspot(gw: Gateway) -> None:
    """The HubSpot app's connection with ``[hubspot]``; in dev mode without it, the stand-in."""
    settings = gw.settings
    hubspot = hubspot_settings(settings.extra, hubspot_secrets(settings))
    if hubspot is not None:
        service = HubSpotService(
            hubspot,
            hubspot_token_store(settings, hubspot.token_key, hubspot.tokens_file),
            RedisPacer(settings.redis_url, settings.key_prefix) if settings.redis_url else Pacer(),
        )
        gw.components.append(service)
    elif settings.dev:
        service, standin = dev_standin.dev_hubspot(settings)
        gw.mounts[dev_standin.MOUNT] = standin.app()
        gw.components.extend([service, dev_standin.DemoPortal(service, standin)])
    else:
        return
    gw.hubspot = service
    gw.readiness["hubspot"] = service.readiness
    gw.metrics.gauge(
        "gateway_hubspot_portals", "Connected HubSpot portals by state", ["state"], service.portal_gauge
    )


def _add_call_logging(gw: Gateway, records: CallRecords | None) -> None:
    """Server-side call logging: on with a ``[hubspot]`` table and a HubSpot client."""
    settings = calllog_settings(gw.settings.extra)
    if settings is None and gw.settings.dev and gw.hubspot is not None:
        # ./dev run: calls are logged in the HubSpot stand-in (gateway.standin.dev).
        settings = CallLogSettings(
            app_id=str(gw.hubspot.settings.app_id), outbox_file=dev_standin.fresh_outbox_file(gw.settings)
        )
    if settings is None:
        return
    if records is None:
        log.warning("[hubspot] is set but no HubSpot client was given: calls are logged by the widget only")
        return
    gw.call_logger = CallLogger(
        settings,
        make_store(gw.settings, settings),
        gw.tracker,
        records,
        gw.current_directory,
        gw.metrics,
    )
    gw.components.append(gw.call_logger)
    if gw.hubspot is not None:
        # A (re)install runs the calls parked for want of a portal at once.
        outbox = gw.call_logger.outbox
        gw.hubspot.connections.connected_listeners.append(lambda _portal: outbox.wake_parked())


PbxConnection = AmiConnection | EslConnection


def _add_pbx(
    gw: Gateway, context: SourceContext, coordination: Coordination, sip: SipService | None
) -> list[PbxConnection]:
    """One management connection per ``[ami.<portal>]`` and ``[esl.<portal>]`` table (docs/pbx.md).

    Each runs on the one live instance that holds its lease (``PbxOwner``,
    docs/pbx.md#several-instances), with SIP's ownership timings.
    """
    extra = gw.settings.extra
    # The legs in progress are recorded in the coordination, for the next holder.
    connections: list[PbxConnection] = [
        AmiConnection(pbx, context, legs=coordination) for pbx in ami_settings(extra).values()
    ]
    connections += [EslConnection(pbx, context, legs=coordination) for pbx in esl_settings(extra).values()]
    timings = sip.settings if sip is not None else None
    owner = PbxOwner(
        connections,
        coordination,
        timings.owner_heartbeat_seconds if timings else DEFAULT_HEARTBEAT_SECONDS,
        timings.owner_ttl_seconds if timings else DEFAULT_TTL_SECONDS,
        # The SIP service closes the shared coordination when there is one; added
        # after it, the owner stops before it.
        close=None if sip is not None else coordination.close,
    )
    if connections:
        gw.components.append(owner)
        gw.readiness["pbx"] = owner.readiness
        gw.metrics.gauge(
            "gateway_pbx_connected",
            "1 while this instance is logged in to a PBX's management interface, else 0",
            ["source", "tenant"],
            lambda: {(c.book.source, str(c.pbx.tenant)): float(c.connected.is_set()) for c in connections},
        )
    return connections


def _add_pbx_dial_routes(gw: Gateway, pbx: list[PbxConnection]) -> None:
    """The ``ami`` and ``esl`` dialling routes, over the tenants' connections (docs/pbx.md#click-to-dial)."""
    ami = {c.pbx.tenant: c for c in pbx if isinstance(c, AmiConnection)}
    esl = {c.pbx.tenant: c for c in pbx if isinstance(c, EslConnection)}
    timeout = gw.settings.dial_api_timeout_seconds
    if ami:
        gw.dialling.routes.register(AmiDialler(ami, gw.tracker, gw.current_directory, timeout))
    if esl:
        gw.dialling.routes.register(EslDialler(esl, gw.tracker, gw.current_directory, timeout))


def _add_recordings(gw: Gateway, secret: str, records: CallRecords | None) -> None:
    """Recordings in HubSpot (docs/recordings.md); HubSpot is told of them when it is connected."""
    settings = gw.settings
    table = recording_settings(settings.extra)
    access = ProviderAccess(
        twilio_account_sid=settings.twilio_account_sid,
        twilio_auth_token=settings.twilio_auth_token,
        twilio_api_url=settings.twilio_api_url,
        telnyx_api_key=settings.telnyx_api_key,
        telnyx_api_url=settings.telnyx_api_url,
        vonage_application_id=settings.vonage_application_id,
        vonage_key=load_private_key(settings.vonage_private_key_file)
        if settings.vonage_private_key_file
        else None,
        vonage_api_url=settings.vonage_api_url,
    )
    gw.recordings = RecordingService(
        settings,
        table,
        RecordingStore(gw.broker, table.keep_seconds),
        MediaFetcher(access, table, settings.dial_api_timeout_seconds),
        LinkSigner.from_secret(secret),
        gw.tracker,
        gw.current_directory,
        gw.metrics,
    )
    gw.components.append(gw.recordings)
    if records is not None:
        gw.recordings.records = records
        gw.recordings.announcer = DirectAnnouncer(records)
    if gw.call_logger is not None:
        # With the call logger, HubSpot is told through its durable outbox, and
        # the engagements it makes reach the recordings waiting for them.
        gw.recordings.announcer = gw.call_logger.jobs
        gw.call_logger.jobs.engagement_listeners.append(gw.recordings.on_engagement)
        gw.recordings.logged_leg = gw.call_logger.jobs.logged_leg


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
        twilio = TwilioDialler(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            settings.twilio_api_url,
            settings.public_url + TWILIO_PATH,
            gw.current_directory,
            timeout,
        )
        gw.webhooks.on_dial_over("twilio", twilio.hang_up)
        routes.append(twilio)
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
        vonage = VonageDialler(
            settings.vonage_application_id,
            load_private_key(settings.vonage_private_key_file),
            settings.vonage_api_url,
            settings.public_url + VONAGE_PATH,
            gw.current_directory,
            timeout,
        )
        gw.webhooks.on_dial_over("vonage", vonage.hang_up)
        routes.append(vonage)
    for route in routes:
        gw.dialling.routes.register(route)
        gw.components.append(route)


def _add_sip(gw: Gateway, context: SourceContext, coordination: Coordination) -> SipService | None:
    """SIP is on when the settings file has a ``[sip]`` table with ``listen``."""
    settings = sip_settings(gw.settings.extra)
    if settings is None:
        return None
    service = SipService(context, settings, coordination)
    gw.components.append(service)
    gw.readiness["sip"] = service.readiness
    gw.directory_listeners.append(service.on_directory)
    gw.status_parts["sip"] = service.subscriber.status
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
