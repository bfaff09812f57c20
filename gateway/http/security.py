"""Headers every response carries: who may frame the app, and no sniffing."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class SecurityHeaders:
    def __init__(self, app: ASGIApp, frame_ancestors: tuple[str, ...]) -> None:
        self.app = app
        # Only HubSpot (and the configured simulator origins) may embed the
        # page; everything else is refused by the browser.
        self.ancestors = " ".join(("'self'", *frame_ancestors))
        self.headers = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        # The simulator's cross-site switch frames the page from the gateway's
        # other loopback name (docs/page.md#local-hubspot-simulator).
        twin = loopback_twin(scope)
        ancestors = f"{self.ancestors} {twin}" if twin else self.ancestors
        policy = (b"content-security-policy", f"frame-ancestors {ancestors}".encode())

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), policy, *self.headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)


_LOOPBACK_TWINS = {"127.0.0.1": "localhost", "localhost": "127.0.0.1"}


def loopback_twin(scope: Scope) -> str:
    """For a request to 127.0.0.1 or localhost, the same port under the other
    name (another site to the browser, the same server); else ""."""
    host = ""
    for name, value in scope.get("headers", ()):
        if name == b"host":
            host = value.decode("latin-1")
            break
    name, _, port = host.partition(":")
    twin = _LOOPBACK_TWINS.get(name.lower())
    if twin is None or not (port.isdigit() or not port):
        return ""
    return f"{scope.get('scheme', 'http')}://{twin}{':' + port if port else ''}"


def page_policy(sdk_origin: str = "", frames: str = "") -> str:
    """The Content-Security-Policy of the iframe page and the simulator.

    Sent next to the middleware's ``frame-ancestors`` policy (a browser
    enforces every policy it gets). Scripts, styles and connections stay on
    the gateway's own origin: the page holds a session token, so nothing
    foreign may run beside it. ``sdk_origin`` is the CDN the SDK comes from
    when one is configured; ``frames`` another origin the simulator may frame.
    """
    scripts = " ".join(("'self'", sdk_origin)).strip()
    framed = " ".join(("'self'", frames)).strip()
    return (
        "default-src 'none'; "
        f"script-src {scripts}; "
        "style-src 'self'; "
        "img-src 'self' data:; "
        "connect-src 'self'; "
        # The simulator embeds the page from this same origin (or its twin).
        f"frame-src {framed}; "
        "base-uri 'none'; "
        "form-action 'none'"
    )
