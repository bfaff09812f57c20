"""The web layer (Starlette), and only that: routes read the ``Gateway`` from the app's state.

- ``app``: the application: routes, exception handlers, lifespan;
- ``errors``: ``ApiError`` and the one place refusals (and 503s) are answered;
- ``bodies``: size-capped bodies and JSON objects;
- ``sessions``: login, refresh, ``/api/me``, stream tickets;
- ``stream``: the SSE stream; ``calls``: engagement ids, dial; ``ingest``: signed signals;
- ``webhooks``: the CPaaS webhook routes; ``ops``: health, readiness, metrics;
- ``web``: the iframe page, the simulator and the SDK; ``security``: response headers;
- ``server``: how uvicorn serves the app (for the command and the tests), with a cap on request heads.
"""
