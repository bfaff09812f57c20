"""The gateway's own connection to HubSpot: OAuth, the CRM and calling APIs.

An edge like the dialler: what to send is decided elsewhere (``gateway.calllog``),
this package only speaks HubSpot's HTTP API and keeps the portals' tokens.
"""
