"""Telephony sources: each turns what it hears into model ``Signal``s for the tracker.

A source is given a ``SourceContext`` (``context``) and never touches the
broker or the web layer; ``gateway.assemble`` wires each one in.

- ``ingest``: the generic signal format of ``POST /api/ingest`` (pure);
- ``endstatus``: how a call ended at the SIP level, as an ``EndStatus`` (pure, shared);
- ``q850``: how a call leg ended by its Q.850 cause (pure, shared by the PBX sources);
- ``pbxcalls``: a PBX's channels to calls and signals per user (pure, shared by ``ami/`` and ``esl/``);
- ``pbxsettings``: what the PBX connection tables share (pure); ``pbxlink``: their connection
  life (sessions, back-off, dial-only sessions) and delivery;
- ``ownership_rules``: which live instance should hold a shared name (rendezvous hashing, pure);
  ``ownership``: heartbeats and leases, this instance's share (SIP AORs, PBX connections);
- ``pbxowner``: the PBX connections this instance holds (one live instance each);
- ``ami/``: Asterisk and FreePBX through the Manager Interface;
- ``sip/``: dialog-event subscriptions and the PUBLISH receiver;
- ``webhooks/``: Twilio, Telnyx and Vonage;
- ``demo``: the scripted call of ``./dev run``.
"""
