"""What the widget looks like to everyone: the browser's language (English or
Brazilian Portuguese), the system's dark theme, form fields a low-vision user
can find, and numbers that stay whole in a narrow widget.
"""

from __future__ import annotations

import pytest
from playwright.async_api import Browser

from tests.support.browser import Simulator, open_simulator, shown
from tests.support.harness import Client, signal

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

# WCAG's contrast ratio between an element's border and the page behind it.
BORDER_CONTRAST = """
(selector) => {
  const rgb = (c) => c.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const border = lum(rgb(getComputedStyle(document.querySelector(selector)).borderTopColor));
  const back = lum(rgb(getComputedStyle(document.documentElement).backgroundColor));
  return (Math.max(border, back) + 0.05) / (Math.min(border, back) + 0.05);
}
"""


async def feed(sim: Simulator, *signals: dict[str, object]) -> None:
    for body in signals:
        response = await sim.gateway.ingest(body)
        assert response.status_code == 202, response.text


async def test_a_brazilian_browser_gets_the_page_in_brazilian_portuguese(
    browser: Browser, web_gateway: Client
) -> None:
    async with open_simulator(browser, web_gateway, locale="pt-BR") as sim:
        await sim.widget.get_by_role("button", name="Entrar").wait_for()
        assert await sim.widget_frame().evaluate("document.documentElement.lang") == "pt-BR"
        await sim.widget.get_by_label("Usuário").fill("alice")
        await sim.widget.get_by_label("Senha").fill("alice-password")
        await sim.widget.get_by_role("button", name="Entrar").click()
        await sim.logged_in()
        await feed(sim, signal("pt-1", "ringing"))
        card = await sim.card("Tocando")
        assert "Recebida" in await card.inner_text()
        await sim.screenshot("browser-pt-br-ringing.png")


async def test_an_english_browser_gets_english(browser: Browser, web_gateway: Client) -> None:
    async with open_simulator(browser, web_gateway, locale="en-GB") as sim:
        await sim.widget.get_by_role("button", name="Sign in").wait_for()
        assert await sim.widget_frame().evaluate("document.documentElement.lang") == "en"


async def test_the_dark_theme_follows_the_system(browser: Browser, web_gateway: Client) -> None:
    async with open_simulator(browser, web_gateway, color_scheme="dark") as sim:
        await sim.widget.get_by_role("button", name="Sign in").wait_for()
        frame = sim.widget_frame()
        background = await frame.evaluate("getComputedStyle(document.documentElement).backgroundColor")
        assert background == "rgb(22, 28, 34)"
        assert await sim.widget_frame().evaluate(BORDER_CONTRAST, "#login-name") >= 3
        await sim.screenshot("browser-dark-login.png")


async def test_input_borders_stand_out_at_least_three_to_one(simulator: Simulator) -> None:
    await simulator.widget.get_by_role("button", name="Sign in").wait_for()
    assert await simulator.widget_frame().evaluate(BORDER_CONTRAST, "#login-name") >= 3


async def test_at_240_px_a_number_never_breaks_mid_digits(simulator: Simulator) -> None:
    await simulator.log_in("alice")
    await simulator.logged_in()
    await simulator.page.evaluate(
        "document.querySelector('#hubspot-calling-extension-iframe').style.width = '240px'"
    )
    await simulator.widget_frame().wait_for_function("window.innerWidth <= 240")
    await feed(simulator, signal("narrow-1", "ringing", remoteName="Maria Aparecida dos Santos Oliveira"))
    card = await simulator.card("Maria Aparecida")
    number = card.locator(".call-number")
    await number.get_by_text(shown("+15555550199")).wait_for()
    # One line: as tall as one line of its own text.
    height, line = await number.evaluate(
        "(el) => [el.getBoundingClientRect().height, parseFloat(getComputedStyle(el).lineHeight)]"
    )
    assert height <= line * 1.2
    assert await simulator.widget_frame().evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )
    await simulator.screenshot("browser-240px.png")


@pytest.mark.parametrize(
    ("e164", "reads"),
    [
        ("+15555550199", "+1 555 555 0199"),
        ("+5511987654321", "+55 11 98765-4321"),
        ("+551133334444", "+55 11 3333-4444"),
        ("+442079460958", "+44 207 946 0958"),
        ("1001", "1001"),  # an extension is shown as it came
    ],
)
async def test_numbers_read_in_groups_that_never_split(simulator: Simulator, e164: str, reads: str) -> None:
    shown_text = await simulator.widget_frame().evaluate(
        "(n) => import('./js/format.js').then((m) => m.readableNumber(n))", e164
    )
    assert shown_text == reads.replace(" ", "\u00a0")
