"""The CPaaS providers the dial loop tests run against, one parameter each."""

from __future__ import annotations

import pytest

from tests.support.dial_loop import PROVIDERS


@pytest.fixture(params=sorted(PROVIDERS))
def provider(request: pytest.FixtureRequest) -> str:
    return str(request.param)
