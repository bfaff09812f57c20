"""The log check every running gateway is under (tests/support/logcheck.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.support.harness import make_settings, running_gateway
from tests.support.logcheck import expect_log

log = logging.getLogger("gateway.test")


async def test_a_gateway_that_logged_an_undeclared_error_fails_the_test(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="unexpected traceback"):
        async with running_gateway(make_settings(tmp_path)):
            log.error("something broke")


async def test_a_gateway_that_logged_a_traceback_at_warning_fails_the_test(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="ZeroDivisionError"):
        async with running_gateway(make_settings(tmp_path)):
            try:
                1 / 0  # noqa: B018
            except ZeroDivisionError:
                log.warning("handled badly", exc_info=True)


async def test_a_declared_error_passes(tmp_path: Path) -> None:
    async with running_gateway(make_settings(tmp_path)):
        with expect_log("gateway", "something broke"):
            log.error("something broke")


async def test_a_declared_error_that_never_came_fails(tmp_path: Path) -> None:
    async with running_gateway(make_settings(tmp_path)):
        with pytest.raises(AssertionError, match="none came"), expect_log("gateway", "never"):
            pass


async def test_an_unhandled_exception_in_a_route_fails_the_test(tmp_path: Path) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("route crashed")

    # uvicorn logs it (to its own logger, which does not reach the root).
    with pytest.raises(AssertionError, match="route crashed"):
        async with running_gateway(make_settings(tmp_path)) as gw:
            gw.gateway.signer.verify = broken  # type: ignore[method-assign,assignment]
            response = await gw.http.get("/api/me", headers={"authorization": "Bearer x"})
            assert response.status_code == 500
