"""Who may do what: passwords, tokens, login throttling, ingest signatures.

All pure apart from ``logins``, which runs the password check off the event
loop, and ``throttle``'s in-process store, which reads the clock.

- ``passwords``: scrypt hashes;
- ``tokens``: signed session tokens and stream tickets;
- ``throttle``: the failed-login rule and its in-process store;
- ``logins``: the throttles and the KDF slots in front of the password check;
- ``ingest_signature``: the HMAC signature of ``POST /api/ingest``.
"""
