"""The operator page ``/admin`` and its JSON form ``/admin/status.json``.

One credential, ``GATEWAY_ADMIN_TOKEN``, sent as HTTP Basic (any user name,
the token as password: the browser asks once and keeps it for the origin)
or as ``Authorization: Bearer``; why in docs/operations.md#the-operator-page.
Failures are throttled like logins. The page is server-rendered HTML with
no script; it reloads itself every five seconds.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time
from html import escape
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from gateway.http.errors import ApiError
from gateway.http.sessions import gateway_of
from gateway.ops.metrics import Metrics
from gateway.runtime import Gateway

# The throttle's name for the admin credential: no user's login has a colon first.
_THROTTLE_LOGIN = ":admin"
_REALM = 'Basic realm="gateway admin", charset="UTF-8"'
_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def metric_totals(metrics: Metrics) -> dict[str, float]:
    """The counters the page shows as rates: signals in, SDK events out, refusals."""

    def total(counter: Any) -> float:
        return float(sum(s.value for m in counter.collect() for s in m.samples if s.name.endswith("_total")))

    return {
        "signals": total(metrics.signals),
        "events": total(metrics.events),
        "refused": total(metrics.rejected),
    }


def local_status(gw: Gateway) -> dict[str, Any]:
    """What only this instance knows, for its status record."""
    parts = {name: part() for name, part in gw.status_parts.items()}
    return {"streams": gw.broker.stream_counts(), **parts}


def _presented(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return decoded.partition(":")[2]
    return None


async def _authorize(request: Request, gw: Gateway) -> None:
    expected = gw.settings.admin_token
    if not expected:
        raise ApiError(403, "the operator page is off: set GATEWAY_ADMIN_TOKEN", "admin-off")
    presented = _presented(request)
    if presented is None:
        raise ApiError(401, "the admin credential is required", "no-credential", {"www-authenticate": _REALM})
    client = request.client.host if request.client else "unknown"
    wait = await gw.logins.admit(_THROTTLE_LOGIN, client)
    if wait > 0:
        raise ApiError(429, f"too many failed tries; try again in {int(wait) + 1} s", "throttled")
    if not hmac.compare_digest(presented.encode(), expected.encode()):
        raise ApiError(401, "wrong admin credential", "bad-credential", {"www-authenticate": _REALM})
    await gw.logins.succeeded(_THROTTLE_LOGIN, client)


async def status(gw: Gateway) -> dict[str, Any]:
    """Everything the page shows, over every live instance."""
    try:
        return await _status(gw)
    except Exception as exc:  # Redis or the outbox's store cannot be read: said, not a traceback
        raise ApiError(503, f"status unavailable: {type(exc).__name__}: {exc}", "status-down") from exc


async def _status(gw: Gateway) -> dict[str, Any]:
    board = gw.status_board
    instances = await board.records() if board is not None else []
    streams: dict[str, dict[str, Any]] = {}
    subscriptions: list[dict[str, Any]] = []
    live: set[str] = set()
    for record in instances:
        for user, count in record.get("streams", {}).items():
            entry = streams.setdefault(user, {"total": 0, "byInstance": {}})
            entry["total"] += count
            entry["byInstance"][record["id"]] = count
        sip = record.get("sip")
        if sip:
            live.update(sip.get("live", []))
            for sub in sip.get("subscriptions", []):
                subscriptions.append({**sub, "owner": record["id"], "ownerSip": sip.get("instance")})
    subscriptions.sort(key=lambda s: (s["aor"], s["owner"]))
    out: dict[str, Any] = {
        "instance": board.instance_id if board is not None else None,
        "instances": instances,
        "sipLive": sorted(live),
        "subscriptions": subscriptions,
        "streams": dict(sorted(streams.items())),
        "hubspot": None,
        "outbox": None,
    }
    if gw.hubspot is not None:
        out["hubspot"] = {
            "portals": [
                {"portalId": s.portal_id, "state": s.state, "expiresAt": s.expires_at, "reason": s.reason}
                for s in gw.hubspot.connections.statuses()
            ]
        }
    if gw.call_logger is not None:
        store = gw.call_logger.outbox.store
        stats = await store.stats()
        now = time.time()
        out["outbox"] = {
            "depth": stats.depth,
            "oldestAgeSeconds": None if stats.oldest_created_at is None else now - stats.oldest_created_at,
            "dead": stats.dead,
            "deadLetters": [
                {
                    "key": d.key,
                    "kind": d.kind,
                    "reason": d.reason,
                    "attempts": d.attempts,
                    "buriedAt": d.buried_at,
                }
                for d in await store.dead_letters(50)
            ],
        }
    return out


async def status_json(request: Request) -> JSONResponse:
    gw = gateway_of(request)
    await _authorize(request, gw)
    return JSONResponse(await status(gw), headers={"cache-control": "no-store"})


async def page(request: Request) -> HTMLResponse:
    gw = gateway_of(request)
    await _authorize(request, gw)
    body = render(await status(gw), time.time())
    return HTMLResponse(body, headers={"cache-control": "no-store", "content-security-policy": _POLICY})


# -- the page ---------------------------------------------------------------------


def _table(caption: str, test_id: str, head: list[str], rows: list[list[Any]], empty: str) -> str:
    if not rows:
        return f'<section data-testid="{test_id}"><h2>{escape(caption)}</h2><p>{escape(empty)}</p></section>'
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return (
        f'<section data-testid="{test_id}"><h2>{escape(caption)}</h2>'
        f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table></section>"
    )


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def render(data: dict[str, Any], now: float) -> str:
    me = data["instance"]
    instances = [
        [
            r["id"] + (" (this one)" if r["id"] == me else ""),
            (r.get("sip") or {}).get("instance", "-"),
            _age(now - r["startedAt"]),
            _age(now - r["seenAt"]),
            sum(r.get("streams", {}).values()),
            f"{r.get('perMinute', {}).get('signals', 0):.1f}",
            f"{r.get('perMinute', {}).get('events', 0):.1f}",
            f"{r.get('perMinute', {}).get('refused', 0):.1f}",
        ]
        for r in data["instances"]
    ]
    live = ", ".join(data["sipLive"]) or "-"
    sections = [
        _table(
            "Instances",
            "instances",
            [
                "instance",
                "SIP id",
                "up",
                "last report",
                "streams",
                "signals/min",
                "events/min",
                "refused/min",
            ],
            instances,
            "none",
        ),
        f'<p data-testid="sip-live">Live in the SIP coordination: {escape(live)}</p>',
        _table(
            "SIP subscriptions",
            "subscriptions",
            ["AOR", "user", "owner", "state", "detail"],
            [[s["aor"], s["user"], s["owner"], s["state"], s["detail"]] for s in data["subscriptions"]],
            "no SIP subscriptions",
        ),
        _table(
            "Open streams",
            "streams",
            ["user", "streams", "by instance"],
            [
                [user, s["total"], ", ".join(f"{i}: {n}" for i, n in sorted(s["byInstance"].items()))]
                for user, s in data["streams"].items()
            ],
            "no open streams",
        ),
    ]
    hubspot = data["hubspot"]
    sections.append(
        _table(
            "HubSpot portals",
            "portals",
            ["portal", "state", "token expires in", "reason"],
            [
                [p["portalId"], p["state"], _age(p["expiresAt"] - now), p["reason"]]
                for p in hubspot["portals"]
            ],
            "no portal connected",
        )
        if hubspot is not None
        else _table("HubSpot portals", "portals", [], [], "HubSpot is not configured")
    )
    outbox = data["outbox"]
    if outbox is None:
        sections.append('<section data-testid="outbox"><h2>Outbox</h2><p>no call logging</p></section>')
    else:
        oldest = outbox["oldestAgeSeconds"]
        summary = (
            f'<p data-testid="outbox-summary">{outbox["depth"]} waiting or running; '
            f"oldest {'-' if oldest is None else _age(oldest)}; {outbox['dead']} dead letters</p>"
        )
        letters = _table(
            "Dead letters",
            "dead-letters",
            ["job", "kind", "reason", "attempts", "buried"],
            [
                [d["key"], d["kind"], d["reason"], d["attempts"], _age(now - d["buriedAt"]) + " ago"]
                for d in outbox["deadLetters"]
            ],
            "none",
        )
        sections.append(f'<section data-testid="outbox"><h2>Outbox</h2>{summary}{letters}</section>')
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta http-equiv="refresh" content="5">'
        "<title>Gateway admin</title>"
        '<link rel="stylesheet" href="/css/admin.css"></head><body>'
        f"<h1>Call event gateway</h1><p>served by instance {escape(str(me))}</p>"
        + "".join(sections)
        + "</body></html>"
    )


routes = [
    Route("/admin", page, methods=["GET"]),
    Route("/admin/status.json", status_json, methods=["GET"]),
]
