"""Telephony sources: each turns what it hears into model ``Signal``s for the tracker.

A source is given a ``SourceContext`` (``context``) and never touches the
broker or the web layer; ``gateway.assemble`` wires each one in.

- ``ingest``: the generic signal format of ``POST /api/ingest`` (pure);
- ``endstatus``: how a call ended at the SIP level, as an ``EndStatus`` (pure, shared);
- ``sip/``: dialog-event subscriptions and the PUBLISH receiver;
- ``webhooks/``: Twilio, Telnyx and Vonage;
- ``demo``: the scripted call of ``./dev run``.
"""
