"""Real Chromium (Debian's) driving the simulator and the iframe page.

One browser for the whole session (starting Chromium costs a second or
two); each test gets its own gateway and its own browser context, so
sessionStorage and the stream never leak between tests. The host side is
the simulator page itself: it records every postMessage that crossed in
``window.hostLog``, and the tests read that.
"""

from __future__ import annotations

import contextlib
import json
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Frame, FrameLocator, Locator, Page, async_playwright

from gateway.broker.memory import MemoryBroker
from gateway.wire import Envelope
from tests.support.harness import PASSWORDS, Client, make_settings, running_gateway

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# Alice's HubSpot identity in the test directory (tests/harness.py).
ALICE_PORTAL, ALICE_HUBSPOT_ID = 100, 501
TIMEOUT_MS = 10_000

Message = dict[str, Any]


def _have_chromium() -> bool:
    return Path(CHROMIUM).exists()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not _have_chromium():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


# Chromium, by default, refuses a cross-site frame its storage and
# unpartitioned cookies; this feature is what does it (found by trying), so
# turning it off gives a browser that allows them.
ALLOW_THIRD_PARTY_STORAGE = "--disable-features=TrackingProtection3pcd"


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser_allowing_storage() -> AsyncIterator[Browser]:
    """A second Chromium that grants third-party frames their storage."""
    if not _have_chromium():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    async with async_playwright() as pw:
        args = [*CHROMIUM_ARGS, ALLOW_THIRD_PARTY_STORAGE]
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest_asyncio.fixture(loop_scope="session")
async def web_gateway(tmp_path: Path) -> AsyncIterator[Client]:
    async with running_gateway(make_settings(tmp_path)) as client:
        yield client


@dataclass
class Simulator:
    """The simulator page with the calling page inside it."""

    page: Page
    context: BrowserContext
    gateway: Client

    @property
    def widget(self) -> FrameLocator:
        return self.page.frame_locator("#hubspot-calling-extension-iframe")

    def widget_frame(self) -> Frame:
        frame = self.page.frame(url=lambda url: not url.split("?")[0].endswith("/simulator"))
        assert frame is not None and frame is not self.page.main_frame
        return frame

    async def messages(self) -> list[Message]:
        log: list[Message] = await self.page.evaluate("window.hostLog")
        return log

    async def wait_for(
        self, direction: str, kind: str, count: int = 1, *, timeout_ms: float = TIMEOUT_MS
    ) -> list[Message]:
        """Waits until ``count`` messages of ``kind`` crossed; returns all of that kind."""
        await self.page.wait_for_function(
            "([dir, type, n]) => window.hostLog.filter(m => m.dir === dir && m.type === type).length >= n",
            arg=[direction, kind, count],
            timeout=timeout_ms,
        )
        return [m for m in await self.messages() if m["dir"] == direction and m["type"] == kind]

    async def dial(self, number: str) -> None:
        """What HubSpot's Call button does: DIAL_NUMBER with the number."""
        await self.page.get_by_label("Number", exact=True).fill(number)
        await self.page.get_by_role("button", name="DIAL_NUMBER").click()

    async def from_app(self, kind: str, count: int = 1, *, timeout_ms: float = TIMEOUT_MS) -> list[Message]:
        return await self.wait_for("in", kind, count, timeout_ms=timeout_ms)

    async def to_app(self, kind: str, count: int = 1) -> list[Message]:
        return await self.wait_for("out", kind, count)

    async def log_in(self, login: str = "alice", password: str | None = None) -> None:
        await self.widget.get_by_label("Login").fill(login)
        await self.widget.get_by_label("Password").fill(password or PASSWORDS[login])
        await self.widget.get_by_role("button", name="Sign in").click()

    async def logged_in(self) -> None:
        await self.from_app("LOGGED_IN")
        # The stream is open once the page says so; signals sent before that
        # would still arrive (history), but tests about order want it live.
        await self.widget.locator("#connection[data-state=open]").wait_for(timeout=TIMEOUT_MS)

    async def call_messages(self, external_call_id: str) -> list[Message]:
        return [
            m
            for m in await self.messages()
            if isinstance(m.get("data"), dict) and m["data"].get("externalCallId") == external_call_id
        ]

    async def open(self, url: str) -> None:
        await self.page.goto(url, timeout=TIMEOUT_MS)
        await self.from_app("SYNC_ACK")

    async def another_tab(self, url: str | None = None) -> Simulator:
        """The simulator in a second tab of the same browser (same cookies):
        the same URL unless ``url`` names another."""
        tab = Simulator(await self.context.new_page(), self.context, self.gateway)
        await tab.open(url or self.page.url)
        return tab

    async def card(self, text: str) -> Locator:
        """The widget's card of the open call that shows ``text``, once it shows."""
        card = self.widget.locator("#call-list > li", has_text=text)
        await card.wait_for()
        return card

    async def storage_granted(self) -> bool:
        """Whether the widget may use sessionStorage, as the browser decides."""
        granted: bool = await self.widget_frame().evaluate(
            "() => { try { sessionStorage.setItem('probe', '1'); return true; } catch { return false; } }"
        )
        return granted

    async def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        await self.page.screenshot(path=str(path), full_page=True)
        return path


@contextlib.asynccontextmanager
async def open_simulator(
    browser: Browser,
    gateway: Client,
    portal_id: int = ALICE_PORTAL,
    user_id: int | None = ALICE_HUBSPOT_ID,
    init_script: str | None = None,
    cross_site: bool = False,
    query: str = "",
    **context_options: Any,
) -> AsyncIterator[Simulator]:
    """The simulator page for one test, once the SYNC handshake is done.

    ``init_script`` runs in every frame before the page's own scripts;
    ``cross_site`` serves the widget from the gateway's other loopback name,
    another site, as HubSpot embeds it; ``query`` is added to the simulator's
    URL; ``context_options`` (locale, color_scheme) go to the browser context.
    """
    # A fresh context per test: its own sessionStorage, so no session leaks.
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, **context_options)
    context.set_default_timeout(TIMEOUT_MS)
    if init_script:
        await context.add_init_script(init_script)
    try:
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        ids = f"portalId={portal_id}" + (f"&userId={user_id}" if user_id is not None else "")
        if cross_site:
            ids += "&crossSite=1"
        sim = Simulator(page, context, gateway)
        await sim.open(f"{gateway.base_url}/simulator?{ids}{query}")
        yield sim
        assert not errors, f"uncaught errors in the page: {errors}"
    finally:
        await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def simulator(browser: Browser, web_gateway: Client) -> AsyncIterator[Simulator]:
    async with open_simulator(browser, web_gateway) as sim:
        yield sim


async def push_raw_event(gateway: Client, login: str, data: dict[str, Any]) -> str:
    """Puts ``data`` on the user's stream as the next event, bypassing the
    call model, as a broker that lost its state or a newer gateway would send
    it (the embedded broker only); returns its id."""
    broker = gateway.gateway.broker
    user = gateway.gateway.directory.by_login(login)
    assert isinstance(broker, MemoryBroker) and user is not None
    broker._seq += 1
    envelope = Envelope(f"{broker._epoch}-{broker._seq}", json.dumps(data))
    broker._history.setdefault(user.id, deque(maxlen=broker.history_size)).append(envelope)
    broker._deliver(user.id, envelope)
    return envelope.id


def shown(number: str) -> str:
    """A NANP number as the page shows it: grouped, with no-break spaces."""
    digits = number.removeprefix("+1")
    return "\u00a0".join(["+1", digits[:3], digits[3:6], digits[6:]])


# The widget's resizing, and HubSpot's answer to callCompleted (it comes
# after CALL_COMPLETED, whenever the simulator sends it: tests of the wrap-up
# await it by name).
_NOT_ABOUT_THE_CALL = {"RESIZE_WIDGET", "UPDATE_ENGAGEMENT_SUCCEEDED", "UPDATE_ENGAGEMENT_FAILED"}


def calls_only(messages: list[Message]) -> list[Message]:
    """What crossed about a call, from the click or the ring to CALL_COMPLETED."""
    return [m for m in messages if m["type"] not in _NOT_ABOUT_THE_CALL]
