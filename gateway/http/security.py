"""Headers every response carries: who may frame the app, and no sniffing."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class SecurityHeaders:
    def __init__(self, app: ASGIApp, frame_ancestors: tuple[str, ...]) -> None:
        self.app = app
        # Only HubSpot (and the configured simulator origins) may embed the
        # page; everything else is refused by the browser.
        ancestors = " ".join(("'self'", *frame_ancestors))
        self.headers = [
            (b"content-security-policy", f"frame-ancestors {ancestors}".encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def page_policy(sdk_origin: str = "") -> str:
    """The Content-Security-Policy of the iframe page and the simulator.

    Sent next to the middleware's ``frame-ancestors`` policy (a browser
    enforces every policy it gets). Scripts, styles and connections stay on
    the gateway's own origin: the page holds a session token, so nothing
    foreign may run beside it. ``sdk_origin`` is the CDN the SDK comes from
    when one is configured.
    """
    scripts = " ".join(("'self'", sdk_origin)).strip()
    return (
        "default-src 'none'; "
        f"script-src {scripts}; "
        "style-src 'self'; "
        "img-src 'self' data:; "
        "connect-src 'self'; "
        # The simulator embeds the page from this same origin.
        "frame-src 'self'; "
        "base-uri 'none'; "
        "form-action 'none'"
    )
