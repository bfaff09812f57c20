"""Benchmarks: `./dev bench [sip | redis-path | sse-compare]` runs one and prints its figures."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_client(main: Coroutine[Any, Any, T]) -> T:
    """Run a benchmark's client on uvloop, as the gateway runs (asyncio where uvloop is missing)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover (uvloop is a dependency off Windows)
        return asyncio.run(main)
    return uvloop.run(main)
