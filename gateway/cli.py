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
from gateway.config import ConfigError, Settings, load_settings
from gateway.ops.gcpacer import CollectorPacer
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

    settings = _settings(args)
    banner = ""
    if settings.dev:
        settings, password = _dev_bootstrap(settings)
        base = f"http://{settings.host}:{settings.port}"
        banner = (
            f"\n  gateway (embedded {settings.broker_kind} broker) on {base}\n"
            f"  simulator:      {base}/simulator\n"
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
    app = build_app(settings, gw)
    if banner:
        print(banner, flush=True)
    config = server_config(app, settings)
    _Server(config, app.state.gateway.broker).run()
    return 0


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--dev", action="store_true", help="demo user, ingest secret, banner")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--users-file")
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
