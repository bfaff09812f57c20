"""The ``gateway`` command: run the service, manage users, send a test signal."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import secrets
import socket
import sys
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path
from types import FrameType

import uvicorn

from gateway.auth.ingest_signature import sign
from gateway.auth.passwords import hash_password
from gateway.broker import Broker
from gateway.calllog.service import make_store
from gateway.calllog.settings import calllog_settings
from gateway.config import ConfigError, Settings, load_settings
from gateway.http.recordings import AUTHED_PATH
from gateway.hubspot.settings import HubSpotSettings, hubspot_settings
from gateway.ops import workers
from gateway.ops.gcpacer import CollectorPacer
from gateway.outbox.store import StoreUnavailable
from gateway.users.directory import Directory, DirectoryError, User

DEMO_LOGIN = "demo"


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    for name in ("host", "port", "users_file"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = Path(value) if name == "users_file" else value
    if getattr(args, "dev", False):
        overrides["dev"] = True
    return load_settings(overrides=overrides)


def _read_password(args: argparse.Namespace) -> str:
    if getattr(args, "password_stdin", False):
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise DirectoryError("the passwords differ")
    if len(password) < 8:
        raise DirectoryError("a password needs at least 8 characters")
    return password


def _dev_bootstrap(settings: Settings) -> tuple[Settings, str]:
    """The embedded default: a demo user with a fresh password, an ingest secret."""
    directory = Directory.load(settings.users_file, settings.default_region)
    password = secrets.token_urlsafe(9)
    demo = directory.by_login(DEMO_LOGIN)
    if demo is None:
        demo = User(
            id=DEMO_LOGIN,
            login=DEMO_LOGIN,
            tenant=1,
            password_hash=hash_password(password),
            hubspot_user_id=None,
            display_name="Demo User",
            aors=("sip:1001@pbx.example.com",),
            numbers=("+15555550100",),
        )
        directory.add(demo)
    else:
        directory.replace(replace(demo, password_hash=hash_password(password)))
    directory.save(settings.users_file)
    if not settings.ingest_secret:
        settings = replace(settings, ingest_secret=secrets.token_urlsafe(24))
    return settings, password


def cmd_serve(args: argparse.Namespace) -> int:
    from gateway.assemble import build_app, build_gateway
    from gateway.http.server import server_config
    from gateway.sources.sip.service import SipService

    settings = _settings(args)
    if args.workers != 1 and args.worker is None:
        return _supervise(args, settings)
    banner = ""
    if settings.dev:
        settings, password = _dev_bootstrap(settings)
        base = f"http://{settings.host}:{settings.port}"
        banner = (
            f"\n  gateway (embedded {settings.broker_kind} broker) on {base}\n"
            f"  simulator:      {base}/simulator\n"
            f"  HubSpot:        {base}/dev/hubspot/ (stand-in: the calls logged there)\n"
            f"  demo user:      {DEMO_LOGIN} / {password}\n"
            f"  ingest secret:  {settings.ingest_secret}\n"
            f"  send a call:    GATEWAY_INGEST_SECRET={settings.ingest_secret} "
            f"{sys.argv[0]} signal --url {base} --user {DEMO_LOGIN} --call demo-1 --phase ringing "
            f"--direction inbound --from +15555550123\n"
        )
    gw = build_gateway(settings)
    if settings.gc_freeze_seconds:
        # Only the serving process paces its collector: it owns the whole heap.
        gw.components.append(CollectorPacer(settings.gc_freeze_seconds, settings.gc_full_seconds))
    sockets = None
    if args.worker is not None:
        if args.supervisor is not None:
            workers.end_with(args.supervisor)
        sockets = [workers.shared_socket(settings.host, settings.port)]
        if args.worker_http_port:
            # This worker's own port: /metrics and /readyz of this one worker, for scraping.
            sockets.append(workers.own_socket(settings.host, args.worker_http_port + args.worker - 1))
        for component in gw.components:
            if isinstance(component, SipService):
                base = args.worker_sip_port
                component.transport.share(base + args.worker - 1 if base else 0)
    app = build_app(settings, gw)
    if banner:
        print(banner, flush=True)
    config = server_config(app, settings)
    _Server(config, app.state.gateway.broker).run(sockets=sockets)
    return 0


def _supervise(args: argparse.Namespace, settings: Settings) -> int:
    """``--workers N``: N worker processes on the same ports (docs/operations.md#workers)."""
    from gateway.sources.sip.settings import sip_settings

    try:
        if args.workers < 1:
            raise workers.Refused(f"--workers {args.workers}: at least 1")
        if sys.platform != "linux":
            raise workers.Refused("--workers: Linux only (SO_REUSEPORT's spreading, pidfds)")
        if args.dev:
            raise workers.Refused("--workers: not with --dev, which runs one process")
        if not settings.redis_url:
            raise workers.Refused(
                f"--workers {args.workers} needs GATEWAY_REDIS_URL: the embedded broker is per process"
            )
        listeners = [("tcp", settings.host, settings.port)]
        if args.worker_http_port:
            listeners += [("tcp", settings.host, args.worker_http_port + n) for n in range(args.workers)]
        sip = sip_settings(settings.extra)
        for address in sip.listen if sip is not None else ():
            listeners.append((address.kind, address.host, address.port))
            if args.worker_sip_port:
                listeners += [
                    (address.kind, address.host, args.worker_sip_port + n) for n in range(args.workers)
                ]
        workers.check_ports(listeners)
    except workers.Refused as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    argv = ["serve"]
    for option in ("host", "port", "users_file", "worker_http_port", "worker_sip_port"):
        value = getattr(args, option)
        if value is not None:
            argv += ["--" + option.replace("_", "-"), str(value)]
    return workers.Supervisor(argv, args.workers).run()


class _Server(uvicorn.Server):
    """Ends the event streams first on SIGTERM/SIGINT.

    Streams never finish by themselves, so a plain graceful shutdown would
    wait its full timeout; ended at once, their browsers reconnect to
    another instance and resume from history.
    """

    def __init__(self, config: uvicorn.Config, broker: Broker) -> None:
        super().__init__(config)
        self._broker = broker

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._loop.call_soon_threadsafe(self._broker.close_streams, "shutdown")
        super().handle_exit(sig, frame)


def cmd_users(args: argparse.Namespace) -> int:
    settings = _settings(args)
    path = settings.users_file
    directory = Directory.load(path, settings.default_region)
    if args.action == "list":
        for user in directory:
            print(
                f"{user.login}\ttenant={user.tenant}\thubspot={user.hubspot_user_id or '-'}"
                f"\taors={','.join(user.aors) or '-'}\tnumbers={','.join(user.numbers) or '-'}"
                f"\textension={user.extension or '-'}"
            )
        return 0
    if args.action == "add":
        entry = {
            "id": args.id or args.login,
            "login": args.login,
            "tenant": args.tenant,
            "password_hash": hash_password(_read_password(args)),
            "hubspot_user_id": args.hubspot_user_id,
            "display_name": args.name or "",
            "aors": args.aor or [],
            "numbers": args.number or [],
            "extension": args.extension or "",
        }
        directory.add(User.from_json(entry, settings.default_region))
    elif args.action == "remove":
        directory.remove(args.login)
    elif args.action == "passwd":
        user = directory.by_login(args.login)
        if user is None:
            raise DirectoryError(f"no user {args.login}")
        directory.replace(replace(user, password_hash=hash_password(_read_password(args))))
    directory.save(path)
    print(f"{args.action}: {args.login} ({path})")
    return 0


def cmd_signal(args: argparse.Namespace) -> int:
    """Send one signed signal to a gateway, as an in-house script would."""
    secret = os.environ.get("GATEWAY_INGEST_SECRET", "")
    if not secret:
        raise ConfigError(["GATEWAY_INGEST_SECRET: needed to sign the request"])
    signal: dict[str, object] = {
        "callId": args.call,
        "user": args.user,
        "direction": args.direction,
        "phase": args.phase,
    }
    for key, value in (("from", args.from_), ("to", args.to), ("endStatus", args.end_status)):
        if value:
            signal[key] = value
    if not args.url.startswith(("http://", "https://")):
        raise ConfigError([f"--url {args.url}: must be an http(s) URL"])
    body = json.dumps(signal).encode()
    now = int(time.time())
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        args.url.rstrip("/") + "/api/ingest",
        data=body,
        method="POST",
        headers={
            "content-type": "application/json",
            "x-gateway-timestamp": str(now),
            "x-gateway-signature": sign(secret, now, body),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            print(response.read().decode())
    except urllib.error.HTTPError as exc:
        print(f"{exc.code}: {exc.read().decode()}", file=sys.stderr)
        return 1
    except OSError as exc:  # refused, unreachable, timed out
        print(f"gateway: cannot reach {args.url}: {getattr(exc, 'reason', exc)}", file=sys.stderr)
        return 1
    return 0


def _hubspot_settings(settings: Settings) -> HubSpotSettings:
    from gateway.assemble import hubspot_secrets

    hubspot = hubspot_settings(settings.extra, hubspot_secrets(settings))
    if hubspot is None:
        raise ConfigError(
            ["[hubspot]: no such table in the settings file (GATEWAY_CONFIG): see docs/hubspot.md"]
        )
    return hubspot


async def _hubspot_status(settings: Settings) -> int:
    from gateway.assemble import hubspot_token_store
    from gateway.hubspot.service import describe_expiry

    hubspot = _hubspot_settings(settings)
    store = hubspot_token_store(settings, hubspot.token_key, hubspot.tokens_file)
    try:
        portals = await store.load()
    finally:
        await store.close()
    if not portals:
        print("no HubSpot portal connected: an admin opens /hubspot/install")
        return 0
    now = time.time()
    for tokens in sorted(portals.values(), key=lambda t: t.portal_id):
        state = tokens.state(now, hubspot.refresh_margin_seconds)
        reason = f"\t{tokens.broken}" if tokens.broken else ""
        expiry = describe_expiry(tokens.expires_at, now)
        print(f"portal {tokens.portal_id}\t{state}\ttoken expires {expiry}{reason}")
    return 0


async def _hubspot_calling(settings: Settings, args: argparse.Namespace) -> int:
    from gateway.hubspot.calling_settings import FIELDS, CallingSettings, parse_assignments
    from gateway.hubspot.client import http_client

    hubspot = _hubspot_settings(settings)
    async with http_client(hubspot.timeout_seconds) as http:
        calling = CallingSettings(hubspot.api_base, hubspot.app_id, hubspot.developer_api_key, http)
        answer: dict[str, object] | None
        if args.command_hubspot == "recording-settings":
            if args.action == "set":
                url = args.url or authed_recording_url(settings.public_url)
                if url is None:
                    print(
                        "give the URL, or set GATEWAY_PUBLIC_URL to register this gateway's", file=sys.stderr
                    )
                    return 2
                answer = await calling.set_recording(url)
            else:
                answer = await calling.show_recording()
        elif args.action == "set":
            answer = await calling.set(parse_assignments(args.values, FIELDS))
        elif args.action == "ready":
            answer = await calling.ready()
        else:
            answer = await calling.show()
    print(json.dumps(answer, indent=2, sort_keys=True) if answer is not None else "nothing set yet")
    return 0


def authed_recording_url(public_url: str) -> str | None:
    """This gateway's ``urlToRetrieveAuthedRecording`` (docs/recordings.md), None without a public URL."""
    if not public_url:
        return None
    return public_url.rstrip("/") + AUTHED_PATH.replace("{external_id:path}", "%s")


def cmd_hubspot(args: argparse.Namespace) -> int:
    """The HubSpot app: its portals' state, its calling and recording settings at HubSpot."""
    from gateway.hubspot.errors import HubSpotError

    settings = _settings(args)
    try:
        if args.command_hubspot == "status":
            return asyncio.run(_hubspot_status(settings))
        return asyncio.run(_hubspot_calling(settings, args))
    except HubSpotError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:  # a NAME=VALUE that is not one
        print(f"gateway: {exc}", file=sys.stderr)
        return 2


def cmd_outbox(args: argparse.Namespace) -> int:
    """What the outbox holds for HubSpot: depth, the oldest job's age, and the dead letters."""
    settings = load_settings()
    calllog = calllog_settings(settings.extra)
    if calllog is None:
        raise ConfigError(["no [hubspot] table in the settings: the gateway keeps no outbox"])

    async def show() -> None:
        store = make_store(settings, calllog)
        try:
            stats = await store.stats()
            age = (
                ""
                if stats.oldest_created_at is None
                else f", oldest {time.time() - stats.oldest_created_at:.0f} s"
            )
            print(f"waiting or running: {stats.depth}{age}; dead letters: {stats.dead}")
            for dead in await store.dead_letters(args.limit):
                print(f"dead: {dead.key} after {dead.attempts} attempts: {dead.reason}")
        finally:
            await store.close()

    try:
        asyncio.run(show())
    except StoreUnavailable as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--dev", action="store_true", help="demo user, ingest secret, banner")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--users-file")
    serve.add_argument(
        "--workers", type=int, default=1, help="processes sharing the ports (needs GATEWAY_REDIS_URL)"
    )
    serve.add_argument(
        "--worker-http-port",
        type=int,
        metavar="BASE",
        help="with --workers: worker K also serves on BASE+K-1 alone (its own /metrics)",
    )
    serve.add_argument(
        "--worker-sip-port",
        type=int,
        metavar="BASE",
        help="with --workers: worker K's own SIP listeners on BASE+K-1 (default: ports the OS picks)",
    )
    # A worker of a supervisor (gateway.ops.workers): its number, and the supervisor's pid.
    serve.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    serve.add_argument("--supervisor", type=int, help=argparse.SUPPRESS)
    serve.set_defaults(func=cmd_serve)

    users = sub.add_parser("users", help="manage the user directory")
    users.add_argument("--users-file")
    actions = users.add_subparsers(dest="action", required=True)
    actions.add_parser("list")
    add = actions.add_parser("add")
    add.add_argument("login")
    add.add_argument("--tenant", type=int, required=True, help="HubSpot portal id")
    add.add_argument("--hubspot-user-id", type=int)
    add.add_argument("--id", help="stable user id (default: the login)")
    add.add_argument("--name", help="display name")
    add.add_argument("--aor", action="append", help="SIP address of record (repeatable)")
    add.add_argument("--number", action="append", help="phone number (repeatable)")
    add.add_argument("--extension", help="extension on the portal's PBX (AMI, event socket)")
    add.add_argument("--password-stdin", action="store_true")
    remove = actions.add_parser("remove")
    remove.add_argument("login")
    passwd = actions.add_parser("passwd")
    passwd.add_argument("login")
    passwd.add_argument("--password-stdin", action="store_true")
    users.set_defaults(func=cmd_users)

    signal = sub.add_parser("signal", help="send one signed signal to /api/ingest")
    signal.add_argument("--url", default="http://127.0.0.1:8080")
    signal.add_argument("--user", required=True, help="login of the user")
    signal.add_argument("--call", required=True, help="call id")
    signal.add_argument("--phase", required=True, choices=["ringing", "answered", "ended"])
    signal.add_argument("--direction", default="inbound", choices=["inbound", "outbound"])
    signal.add_argument("--from", dest="from_")
    signal.add_argument("--to")
    signal.add_argument("--end-status")
    signal.set_defaults(func=cmd_signal)

    hubspot = sub.add_parser("hubspot", help="the HubSpot app: portals, calling settings")
    hubspot_commands = hubspot.add_subparsers(dest="command_hubspot", required=True)
    hubspot_commands.add_parser("status", help="the connected portals and their tokens' expiry")
    calling = hubspot_commands.add_parser("settings", help="the app's calling settings at HubSpot")
    calling_actions = calling.add_subparsers(dest="action", required=True)
    calling_actions.add_parser("show")
    calling_set = calling_actions.add_parser(
        "set", help="NAME=VALUE ... (name, url, width, height, isReady, ...)"
    )
    calling_set.add_argument("values", nargs="+", metavar="NAME=VALUE")
    calling_actions.add_parser("ready", help="isReady=true")
    recording = hubspot_commands.add_parser("recording-settings", help="urlToRetrieveAuthedRecording")
    recording_actions = recording.add_subparsers(dest="action", required=True)
    recording_actions.add_parser("show")
    recording_set = recording_actions.add_parser("set")
    recording_set.add_argument(
        "url",
        nargs="?",
        help="the URL HubSpot fetches a recording's link from (%%s: the call id); "
        "default: this gateway's, under GATEWAY_PUBLIC_URL",
    )
    hubspot.set_defaults(func=cmd_hubspot)

    outbox = sub.add_parser("outbox", help="the jobs waiting for HubSpot, and the dead letters")
    outbox.add_argument("--limit", type=int, default=100, help="dead letters to list")
    outbox.set_defaults(func=cmd_outbox)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except (ConfigError, DirectoryError) as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
