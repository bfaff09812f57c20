"""Recordings in HubSpot: where each call's recording is, the links HubSpot plays, and telling it.

- ``settings``: the ``[recordings]`` table (link lifetime, per-tenant PBX URL templates)
  and the HubSpot client secret the signature check needs;
- ``location``: a recording's whereabouts and its stored form (pure);
- ``links``: the short-lived signed media links (pure);
- ``ranges``: HTTP Range requests against a file of known size (pure);
- ``store``: recordings kept per external call id over the broker, with a lifetime;
- ``media``: fetching the media from the provider with its credentials (httpx, streaming);
- ``announce``: telling HubSpot a recording is ready (the hook the outbox takes over);
- ``service``: what the web layer calls: recording callbacks in, authed URLs and media out.

The flow and the settings: docs/recordings.md.
"""
