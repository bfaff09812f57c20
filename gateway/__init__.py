"""Call event gateway: telephony in, HubSpot Calling Extensions SDK events out.

Data flows one way, and imports follow it (``tests/test_layers.py`` checks)::

    sources ──Signal──> tracker ──> model.advance ──> broker ──> http (SSE) ──> web/ page
    (sip, webhooks,     (the sources'  (pure)          (memory |
     ingest, demo)       only door)                     Redis)

- ``model`` (pure): calls, signals, SDK events, ``advance``;
- ``wire`` (pure): what the page and Redis receive: event JSON, snapshots, SSE frames, event ids;
- ``tracker``: signals through the model into the broker;
- ``sources/``: SIP, AMI, ESL, CPaaS webhooks, the ingest format; never the broker or the web;
- ``broker/``: call state, history and fan-out (memory or Redis);
- ``dial/``: click-to-dial routes (demo, SIP, CPaaS, AMI, ESL) behind one policy;
- ``hubspot/``: the HubSpot app's connection (OAuth, tokens, the API client);
  ``outbox/``: durable jobs; ``calllog/``: every call logged once; ``recordings/``: recordings in HubSpot;
- ``http/``: the Starlette web layer; ``standin/``: the HubSpot stand-in of ``./dev run``;
- ``users/``, ``auth/``, ``ops/``, ``config``, ``redisconn``, ``parsing``, ``jsontext``:
  what all of them stand on;
- ``runtime``: the ``Gateway`` the web layer serves from;
- ``assemble``: start-up, the one module that knows every part; ``cli``: the command line.
"""

__version__ = "0.1.0"
