"""Stand-ins of the outside services the gateway talks to, for tests and ``./dev run``.

Top layer, next to ``gateway.assemble``: a stand-in is served by the dev
gateway, never imported by the gateway's own code paths.
"""
