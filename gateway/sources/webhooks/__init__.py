"""CPaaS webhooks: Twilio, Telnyx and Vonage call events.

Pure, one module per provider: ``twilio``, ``telnyx``, ``vonage`` (verify
the provider's signature, read its payload into ``CallEvent``s), and
``common`` (what they share: the event, payload checks, finding the user),
``dialled`` (the tag of a call the gateway dialled, and what each of its
two legs means for that call).

``receiver`` drives them for one delivery (signature, payload, direction,
user, tracker), with no web framework; ``gateway.http.webhooks`` serves it.
"""
