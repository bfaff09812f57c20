"""Click-to-dial: HubSpot's DIAL_NUMBER becomes a call placed by a route and tracked as one call.

- ``policy.py`` (pure): a tenant's dial policy; a request becomes a plan or a refusal.
- ``ratelimit.py``: the per-user dial limit (its window is kept by the broker).
- ``routes.py`` (pure): the ``Dialler`` protocol routes implement, ``Placed``,
  ``DialRefused``, and the registry of routes by name.
- ``settings.py`` (pure): the ``[dial]`` table of the settings file, validated.
- ``service.py``: the dial service: policy, idempotency, the call created in
  the model first, then the route; logged and counted.
- ``watchdog.py``: the deadline of each placed dial (shared by the instances on Redis): a call no telephony
  ended by then, and nobody answered, ends CANCELED.
- ``sip.py``: the SIP route: the user's phone, asked by REFER, calls the number
  (the SIP work is ``gateway.sources.sip.click_to_dial``).
- ``demo.py``: the demo route of ``./dev run`` (plays the call, no telephony).
- ``ami_route.py``, ``esl_route.py``: the PBX routes: Asterisk ``Originate`` and
  FreeSWITCH ``bgapi originate`` over the tenant's connection (``gateway.sources.ami``, ``esl``);
  ``pbxroute.py``: what they share (the tenant's connection, the refusals, ending a dial not taken);
- ``cpaas.py``: what the CPaaS routes share (the user's phone, one provider
  request, its refusals); ``twilio_route.py``, ``telnyx_route.py``,
  ``vonage_route.py``: the routes through each provider's REST API.

How joining, the interface and the policy fit together: docs/dialling.md.
"""
