"""The HTTP side: Starlette routes, SSE, auth, health and metrics."""
